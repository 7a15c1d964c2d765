"""Start-up of the commands people run most, as whole processes, against their dependencies.

Targets (issue 17, part 1):
- `tfsconf validate environments/production.yaml`: at most 1.5x `python -c "import pydantic, yaml"`;
- `tfsconf --help` and `tfsconf --version`: at most 1.3x `python -c "import typer"`.

Every command runs as a fresh process; rounds are interleaved so background load hits all of
them alike. Both CPU time (user + sys of the child, steadier on a shared machine) and wall
time are reported, as medians; the verdict uses CPU time. References that are not targets
show the floor any typer + pydantic program pays: importing typer, pydantic and yaml
together, and building and validating one pydantic model (`import pydantic` alone is lazy and
pays none of pydantic's model machinery). No assertions: the figures are for reading.

    .venv/bin/python benchmarks/bench_startup.py [--rounds 15] [--bytecode as-is]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bytecode import BYTECODE_HELP, MODES, child_env, describe

REPO = Path(__file__).resolve().parent.parent
ONE_MODEL = """\
import pydantic, typer, yaml
class Probe(pydantic.BaseModel):
    name: str
Probe.model_validate({"name": "x"})
"""


@dataclass
class Figures:
    argv: list[str]
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


def commands(spec: Path) -> dict[str, list[str]]:
    python = sys.executable  # the venv's python (not resolved: that would leave the venv)
    tfsconf = str(Path(python).parent / "tfsconf")
    return {
        "import pydantic, yaml": [python, "-c", "import pydantic, yaml"],
        "import typer": [python, "-c", "import typer"],
        "ref: import typer, pydantic, yaml": [python, "-c", "import typer, pydantic, yaml"],
        "ref: + one BaseModel validated": [python, "-c", ONE_MODEL],
        "tfsconf validate": [tfsconf, "validate", str(spec)],
        "tfsconf --help": [tfsconf, "--help"],
        "tfsconf --version": [tfsconf, "--version"],
    }


TARGETS = {
    "tfsconf validate": ("import pydantic, yaml", 1.5),
    "tfsconf --help": ("import typer", 1.3),
    "tfsconf --version": ("import typer", 1.3),
}


def run_once(figures: Figures, env: dict[str, str]) -> None:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        figures.argv, cwd=REPO, env=env, capture_output=True, timeout=120, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(figures.argv)} exited {done.returncode}:\n"
            f"{done.stderr.decode(errors='replace')}"
        )
    figures.wall.append(wall)
    figures.cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed runs per command")
    parser.add_argument("--spec", type=Path, default=REPO / "environments" / "production.yaml")
    parser.add_argument("--bytecode", choices=MODES, default="cached", help=BYTECODE_HELP)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    table = {label: Figures(cmd) for label, cmd in commands(args.spec.resolve()).items()}
    scratch = Path(tempfile.mkdtemp(prefix="tfsconf-bench-startup-", dir="/tmp"))
    try:
        env = child_env(args.bytecode, scratch / "pycache")
        for figures in table.values():  # untimed: bytecode and page cache warm, as for a user
            run_once(figures, env)
            figures.cpu.clear()
            figures.wall.clear()
        for _ in range(args.rounds):
            for figures in table.values():
                run_once(figures, env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.rounds} interleaved rounds of whole processes; {describe(args.bytecode)}")
    print(f"{'command':<36} {'CPU ms':>8} {'wall ms':>8}   (medians)")
    for label, figures in table.items():
        print(
            f"{label:<36} {statistics.median(figures.cpu) * 1000:>8.0f} "
            f"{statistics.median(figures.wall) * 1000:>8.0f}"
        )
    for label, (baseline, target) in TARGETS.items():
        ours, base = table[label], table[baseline]
        cpu = statistics.median(ours.cpu) / statistics.median(base.cpu)
        wall = statistics.median(ours.wall) / statistics.median(base.wall)
        verdict = "meets" if cpu <= target else "misses"
        print(
            f"{label}: {cpu:.2f}x `{baseline}` in CPU ({wall:.2f}x wall); {verdict} the "
            f"{target:g}x target"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
