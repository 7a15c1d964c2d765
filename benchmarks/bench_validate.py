"""Cold `tfsconf validate` as a whole process, against importing its two big dependencies.

Target (from the issue): validating environments/production.yaml takes at most 2x the time
of `python -c "import pydantic, yaml"`. Every command runs as a fresh process; runs are
interleaved round-robin so background load hits all of them alike. Wall times only, no
assertions: the figures are for reading.

    .venv/bin/python benchmarks/bench_validate.py [--repeat 15] [--bytecode as-is]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bytecode import BYTECODE_HELP, MODES, child_env, describe

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0
BASELINE = "import pydantic, yaml"
# For reference only: `import pydantic` is lazy, so the baseline pays none of what any
# program that defines and validates a model pays (pydantic.main, fields, schema
# generation, the plugin loader's importlib.metadata, a SchemaValidator).
ONE_MODEL = """\
import pydantic, yaml
class Probe(pydantic.BaseModel):
    name: str
Probe.model_validate({"name": "x"})
"""


def commands(spec: Path) -> dict[str, list[str]]:
    # sys.executable is the venv's python (not resolved: resolving would leave the venv)
    python = sys.executable
    console_script = str(Path(python).parent / "tfsconf")
    return {
        "import pydantic, yaml": [python, "-c", "import pydantic, yaml"],
        "+ one BaseModel validated": [python, "-c", ONE_MODEL],
        "tfsconf validate": [console_script, "validate", str(spec)],
        "python -m tfsconf validate": [python, "-m", "tfsconf", "validate", str(spec)],
    }


def run_once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, timeout=120, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
        )
    return elapsed


def measure(cmds: dict[str, list[str]], repeat: int, env: dict[str, str]) -> dict[str, list[float]]:
    for argv in cmds.values():
        run_once(argv, env)  # untimed: bytecode and page cache warm, as for a user
    times: dict[str, list[float]] = {label: [] for label in cmds}
    for _ in range(repeat):
        for label, argv in cmds.items():
            times[label].append(run_once(argv, env))
    return times


def report(times: dict[str, list[float]], baseline: str) -> str:
    base = statistics.median(times[baseline])
    base_min = min(times[baseline])
    lines = [
        f"{'command':<28} {'median ms':>10} {'min ms':>8} {'x base (med)':>13} {'x base (min)':>13}"
    ]
    for label, values in times.items():
        median, fastest = statistics.median(values), min(values)
        lines.append(
            f"{label:<28} {median * 1000:>10.1f} {fastest * 1000:>8.1f} "
            f"{median / base:>13.2f} {fastest / base_min:>13.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs per command")
    parser.add_argument(
        "--spec",
        type=Path,
        default=REPO / "environments" / "production.yaml",
        help="spec to validate",
    )
    parser.add_argument("--bytecode", choices=MODES, default="cached", help=BYTECODE_HELP)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    cmds = commands(args.spec.resolve())
    scratch = Path(tempfile.mkdtemp(prefix="tfsconf-bench-validate-", dir="/tmp"))
    try:
        times = measure(cmds, args.repeat, child_env(args.bytecode, scratch / "pycache"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    baseline = BASELINE
    print(f"validate {args.spec}: {args.repeat} cold runs each, interleaved")
    print(describe(args.bytecode))
    print(report(times, baseline))
    for label in cmds:
        if label.startswith("tfsconf") or label.startswith("python -m"):
            ratio = statistics.median(times[label]) / statistics.median(times[baseline])
            verdict = "meets" if ratio <= TARGET_RATIO else "misses"
            versus_model = statistics.median(times[label]) / statistics.median(
                times["+ one BaseModel validated"]
            )
            print(
                f"{label}: {ratio:.2f}x the baseline; {verdict} the {TARGET_RATIO:g}x target "
                f"({versus_model:.2f}x the one-model reference)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
