"""`tfsconf compile` of a generated fleet, against the disk's floor for the same bytes.

The floor is a plain-Python subprocess that writes exactly the files compile writes (same
relative paths, same bytes, taken from a compiled tree and handed over as one pickle read
before writing) into a fresh staging directory with os.makedirs + open/write, then renames
it into place like compile does. So "compile / floor" is compile against writing its own
output. Targets (from the issue): compile(500) / floor(500) <= 1.5x and
compile(1000) / compile(500) <= 2.2x. Runs are whole processes, interleaved, into fresh
directories under a temporary root that is removed afterwards. No assertions.

    .venv/bin/python benchmarks/bench_compile.py [--repeat 5] [--phase-repeat 3]
"""

from __future__ import annotations

import argparse
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bytecode import BYTECODE_HELP, MODES, child_env, describe
from fleet import write_fleet

FLOOR_TARGET = 1.5
SCALING_TARGET = 2.2

# Interpreter start-up and the imports a compile pays before reading the spec.
STARTUP = {
    "python -c pass": "pass",
    "import cli + compile": "import tfsconf.cli.app, tfsconf.compile",
}

# The floor: no tfsconf, no pydantic; read the payload, write it, rename into place.
FLOOR_SCRIPT = """\
import os, pickle, sys, tempfile, time
payload, out = sys.argv[1], sys.argv[2]
with open(payload, "rb") as handle:
    files = pickle.load(handle)
started = time.perf_counter()
staging = tempfile.mkdtemp(prefix=".floor.new-", dir=os.path.dirname(out))
made = set()
for rel in sorted(files):
    parent = os.path.dirname(rel)
    if parent and parent not in made:
        os.makedirs(os.path.join(staging, parent), exist_ok=True)
        made.add(parent)
    with open(os.path.join(staging, rel), "wb") as handle:
        handle.write(files[rel])
os.chmod(staging, 0o755)
os.rename(staging, out)
print(time.perf_counter() - started)
"""


def read_tree(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as handle:
                files[os.path.relpath(full, root)] = handle.read()
    return files


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, timeout=300, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
        )
    return elapsed, done.stdout.decode()


class Fresh:
    """Hands out output paths that do not exist yet, removing each after its run."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.count = 0

    def run(self, make_argv: Callable[[Path], list[str]]) -> tuple[float, str]:
        self.count += 1
        out = self.root / f"out{self.count}"
        try:
            return timed(make_argv(out), self.env)
        finally:
            shutil.rmtree(out, ignore_errors=True)


def phase_split(spec: Path, out: Path, repeat: int) -> dict[str, list[float]]:
    """In-process time of each stage of a compile, the modules already imported."""
    import hashlib
    from pathlib import PurePosixPath

    from tfsconf.compile import build_bundle, write_bundle
    from tfsconf.resolve.resolve import resolve_environment
    from tfsconf.spec import model as s
    from tfsconf.spec.rules import Collector, check_references
    from tfsconf.spec.yamlload import load_yaml
    from tfsconf.validate.load import load_environment
    from tfsconf.validate.resolved import check_resolved

    phases: dict[str, list[float]] = {}

    def clock(name: str, started: float) -> float:
        now = time.perf_counter()
        phases.setdefault(name, []).append(now - started)
        return now

    for index in range(repeat):
        target = out / f"phase{index}"
        t = time.perf_counter()
        loaded = load_environment(spec)
        t = clock("load_environment (all of load+validate+resolve+rules)", t)
        bundle = build_bundle(loaded.resolved)
        t = clock("build_bundle", t)
        write_bundle(bundle, target)
        t = clock("write_bundle", t)
        shutil.rmtree(target)

        # the same load_environment, stage by stage (internal functions, as load.py calls them)
        t = time.perf_counter()
        raw = spec.read_bytes()
        data = load_yaml(raw.decode(), file=str(spec))
        t = clock("  yaml load (with positions)", t)
        env = s.Environment.model_validate(data.data)
        t = clock("  pydantic validate", t)
        collector = Collector(data.positions)
        check_references(env, collector, spec_dir=PurePosixPath(spec.resolve().parent))
        t = clock("  check_references", t)
        resolved = resolve_environment(
            env, spec_file=spec.resolve().as_posix(), spec_sha256=hashlib.sha256(raw).hexdigest()
        )
        t = clock("  resolve_environment", t)
        check_resolved(resolved, collector)
        clock("  check_resolved", t)
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command")
    parser.add_argument("--phase-repeat", type=int, default=3, help="in-process phase runs")
    parser.add_argument("--hosts", type=int, nargs=2, default=(500, 1000), metavar=("N", "2N"))
    parser.add_argument(
        "--tmp-root",
        type=Path,
        default=Path("/tmp"),
        help="where to make the temporary directory (e.g. /dev/shm to take the disk out)",
    )
    parser.add_argument("--bytecode", choices=MODES, default="cached", help=BYTECODE_HELP)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.phase_repeat < 1:
        parser.error("repeat counts must be at least 1")
    small, large = args.hosts
    tfsconf = str(Path(sys.executable).parent / "tfsconf")
    root = Path(tempfile.mkdtemp(prefix="tfsconf-bench-compile-", dir=args.tmp_root))
    try:
        env = child_env(args.bytecode, root / "pycache")
        specs = {n: write_fleet(root / f"fleet{n}", hosts=n) for n in (small, large)}
        floor_script = root / "floor.py"
        floor_script.write_text(FLOOR_SCRIPT)
        payloads: dict[int, Path] = {}
        file_counts: dict[int, tuple[int, int]] = {}
        for n, spec in specs.items():
            reference = root / f"reference{n}"
            # untimed warm-up; also fills the bytecode cache
            timed([tfsconf, "compile", str(spec), "--out", str(reference)], env)
            files = read_tree(reference)
            file_counts[n] = (len(files), sum(len(b) for b in files.values()))
            payloads[n] = root / f"payload{n}.pickle"
            payloads[n].write_bytes(pickle.dumps(files, protocol=pickle.HIGHEST_PROTOCOL))
            shutil.rmtree(reference)

        timed([sys.executable, str(floor_script), str(payloads[small]), str(root / "w")], env)
        shutil.rmtree(root / "w")
        fresh = Fresh(root, env)
        runs: dict[str, list[float]] = {}
        floor_write_only: list[float] = []
        for _ in range(args.repeat):
            for n, spec in specs.items():
                elapsed, _ = fresh.run(
                    lambda out, spec=spec: [tfsconf, "compile", str(spec), "--out", str(out)]
                )
                runs.setdefault(f"compile {n}", []).append(elapsed)
            elapsed, stdout = fresh.run(
                lambda out: [sys.executable, str(floor_script), str(payloads[small]), str(out)]
            )
            runs.setdefault(f"floor {small}", []).append(elapsed)
            floor_write_only.append(float(stdout.strip()))

        for _ in range(args.repeat):
            for label, code in STARTUP.items():
                elapsed, _ = timed([sys.executable, "-c", code], env)
                runs.setdefault(label, []).append(elapsed)
        phases = phase_split(specs[small], root, args.phase_repeat)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print(f"temporary root {args.tmp_root}; {describe(args.bytecode)}")
    for n, (count, size) in file_counts.items():
        print(f"fleet {n} hosts: {count} files, {size / 1e6:.1f} MB")
    print(f"\nwhole process, median of {args.repeat} (min):")
    median = {label: statistics.median(values) for label, values in runs.items()}
    for label, values in runs.items():
        print(f"  {label:<28} {median[label] * 1000:8.0f} ms  ({min(values) * 1000:.0f})")
        if label == f"floor {small}":
            write_only = statistics.median(floor_write_only)
            print(f"  {'  of which writing':<28} {write_only * 1000:8.0f} ms")
            overhead = median[f"compile {small}"] - median[label]
            print(f"  {f'compile {small} - floor {small}':<28} {overhead * 1000:8.0f} ms")
    floor_ratio = median[f"compile {small}"] / median[f"floor {small}"]
    scaling = median[f"compile {large}"] / median[f"compile {small}"]
    print("\nratios (medians):")
    for name, value, target in (
        (f"compile {small} / floor {small}", floor_ratio, FLOOR_TARGET),
        (f"compile {large} / compile {small}", scaling, SCALING_TARGET),
    ):
        verdict = "meets" if value <= target else "misses"
        print(f"  {name:<28} {value:6.2f}x  (target <= {target:g}x: {verdict})")
    print(f"\nin-process phases, {small} hosts, median of {args.phase_repeat}:")
    for name, values in phases.items():
        print(f"  {name:<56} {statistics.median(values) * 1000:8.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
