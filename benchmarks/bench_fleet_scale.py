"""Scale of the spec: validate, compile and plan --base of a 5,000-host fleet against 1,000.

Issue 17, part 3: report time and peak RSS of the 5,000-host fleet against 1,000 hosts;
growth must stay linear (5x the hosts: about 5x the time and at most 5x the memory above
the interpreter's own) and memory under 2 GiB; and `plan --base` of that fleet when every
host changed. Fleets come from fleet.py (50 hosts per group, 2 servers per group, 20 models
per server); each lives in a throwaway git repository whose working tree carries a change
that touches every host (bench_plan.FLEET_CHANGE: a version bump with its labels moved).

Everything is written on /dev/shm (compile output, plan's extraction of the base), so the
figures are the program's, not the disk's. Every command is a fresh process
(`python -m tfsconf ...`), its own wall time, CPU time and peak RSS taken from wait4().
Rounds are interleaved. No assertions: the figures are for reading.

    .venv/bin/python benchmarks/bench_fleet_scale.py [--rounds 2] [--hosts 1000 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_plan import fleet_repo

SHM = Path("/dev/shm")
MEMORY_LIMIT = 2 * 1024**3
EXIT_OK, EXIT_CHANGES = 0, 2


@dataclass
class Runs:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    """Peak resident set size, bytes."""


def run(argv: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...], runs: Runs) -> None:
    started = time.perf_counter()
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stderr is not None
        stderr = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{stderr.decode()}")
    runs.wall.append(wall)
    runs.cpu.append(usage.ru_utime + usage.ru_stime)
    runs.rss.append(usage.ru_maxrss * 1024)  # Linux: KiB


def plan_summary(python: str, spec: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [python, "-m", "tfsconf", "plan", str(spec), "--base", "HEAD", "--format", "json"],
        cwd=spec.parent.parent,
        env=env,
        capture_output=True,
        check=False,
        timeout=1800,
    )
    if done.returncode != EXIT_CHANGES:
        raise RuntimeError(f"plan exited {done.returncode}: {done.stderr.decode()}")
    plans = json.loads(done.stdout)["plans"]
    changes = [h["change"] for p in plans for h in p["hosts"]]
    counts = ", ".join(f"{changes.count(c)} {c}" for c in sorted(set(changes)))
    return f"hosts in the plan: {counts}; {len(done.stdout) / 2**20:.1f} MiB of JSON"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="timed runs per command and size")
    parser.add_argument("--hosts", type=int, nargs=2, default=(1000, 5000), metavar=("N", "M"))
    parser.add_argument("--keep", action="store_true", help="keep the /dev/shm directory")
    args = parser.parse_args(argv)
    if not SHM.is_dir():
        parser.error("/dev/shm is needed (the benchmark writes there)")
    python = sys.executable
    root = Path(tempfile.mkdtemp(prefix="tfsconf-fleet-scale-", dir=SHM))
    env = {**os.environ, "TMPDIR": str(root)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package runs: bytecode cached
    env["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
    sizes = tuple(args.hosts)
    table: dict[tuple[str, int], Runs] = {}
    try:
        specs = {n: fleet_repo(root, n) for n in sizes}
        commands = {
            "validate": lambda spec, out: ["validate", str(spec)],
            "compile": lambda spec, out: ["compile", str(spec), "--out", str(out)],
            "plan --base HEAD": lambda spec, out: ["plan", str(spec), "--base", "HEAD"],
        }
        ok = {"validate": (EXIT_OK,), "compile": (EXIT_OK,), "plan --base HEAD": (EXIT_CHANGES,)}
        for rnd in range(args.rounds + 1):  # round 0: untimed warm-up (bytecode, page cache)
            for n in sizes:
                for label, make in commands.items():
                    out = root / f"out-{n}-{rnd}"
                    runs = Runs() if rnd == 0 else table.setdefault((label, n), Runs())
                    argv = [python, "-m", "tfsconf", *make(specs[n], out)]
                    run(argv, env, specs[n].parent.parent, ok[label], runs)
                    shutil.rmtree(out, ignore_errors=True)
            print(f"round {rnd}/{args.rounds} done", file=sys.stderr)
        summary = plan_summary(python, specs[sizes[1]], env)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    small, large = sizes
    print(
        f"fleet of {small} vs {large} hosts (fleet.py: 50 hosts/group, 2 servers/group, 20 "
        f"models/server); {args.rounds} interleaved rounds, medians; output on /dev/shm"
    )
    print(
        f"{'command':<18} {'hosts':>6} {'wall s':>8} {'CPU s':>8} {'peak RSS MiB':>13}"
        f"   {'x time':>7} {'x CPU':>6} {'x RSS':>6}"
    )
    for label in ("validate", "compile", "plan --base HEAD"):
        base = table[(label, small)]
        for n in sizes:
            runs = table[(label, n)]
            wall, cpu = statistics.median(runs.wall), statistics.median(runs.cpu)
            rss = max(runs.rss)
            growth = ""
            if n == large:
                growth = (
                    f"   {wall / statistics.median(base.wall):>7.2f}"
                    f" {cpu / statistics.median(base.cpu):>6.2f} {rss / max(base.rss):>6.2f}"
                )
            print(f"{label:<18} {n:>6} {wall:>8.2f} {cpu:>8.2f} {rss / 2**20:>13.0f}{growth}")
    factor = large / small
    for label in ("validate", "compile", "plan --base HEAD"):
        ratio = statistics.median(table[(label, large)].cpu) / statistics.median(
            table[(label, small)].cpu
        )
        peak = max(table[(label, large)].rss)
        print(
            f"{label}: {factor:g}x the hosts took {ratio:.2f}x the CPU "
            f"({'linear or better' if ratio <= factor * 1.1 else 'MORE than linear'}); "
            f"peak RSS {peak / 2**20:.0f} MiB "
            f"({'under' if peak < MEMORY_LIMIT else 'OVER'} 2 GiB)"
        )
    print(f"plan --base of the {large}-host fleet: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
