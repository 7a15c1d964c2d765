"""The worst hostile specs found, each validated by a whole `tfsconf validate` process.

Prints wall time and peak RSS (the child's ru_maxrss from wait4) per case beside the
limits from issue 12 (5 s, 500 MiB on the 2-core machine) and the exit code (1 expected
for every hostile case: a diagnostic, never a crash). Nothing is asserted; the figures are
for reading. Cases:

- flow_50mb: one 50 MB flow list of valid YAML (refused by size before parsing)
- flow_max: the largest flow list under the size limit (1 MiB, ~500k items; the composer
  stops at the value cap)
- hosts_max: the most hosts that fit under the size limit (~23,000), a valid group
  (every value composed, validated and resolved)
- block_list_4mb: a 4 MB block list (refused by size)
- alias_bomb: "billion laughs" in 1 KB
- deep: 900 nested brackets; deep_1m: 1,000,000 (libyaml refuses past 1000)
- long_scalar: one 1 MiB string value
- long_number: a 1 MiB integer; base60_1mb: a 1 MB base-60 integer (the size limit allows it)
- many_errors: every one of ~23,000 hosts has a bad address (one diagnostic each)
- production: environments/production.yaml, the baseline

    .venv/bin/python benchmarks/bench_hostile.py [--repeat 3] [--only NAME]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIMIT_SECONDS = 5.0
LIMIT_MIB = 500.0
MIB = 1024 * 1024
MAX_SPEC = MIB - 64  # just under tfsconf's size limit (1 MiB)

HEAD = (
    'environment: bench\ntfserving_version: "2.18.0"\n'
    "servers: [{name: s, group: g, gpu: 0, models: [m]}]\n"
    "models: [{name: m, base_path: /srv/tfserving/models/m, "
    "source: {kind: local, path: /mnt/m}}]\n"
)


def _flow(size: int) -> bytes:
    items = (size - 40) // 2
    return b"environment: x\nservers: [" + b"1," * items + b"1]\n"


def _hosts(size: int, address: str) -> bytes:
    lines = [HEAD, "host_groups:\n  g:\n    hosts:\n"]
    total = sum(len(x) for x in lines)
    index = 0
    while True:
        line = f"      - {{name: h{index}, address: {address.format(index % 250 + 1)}, gpus: 1}}\n"
        if total + len(line) > size:
            break
        lines.append(line)
        total += len(line)
        index += 1
    return "".join(lines).encode()


def _bomb() -> bytes:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return ("\n".join(lines) + "\n").encode()


CASES: dict[str, Callable[[], bytes]] = {
    "production": (REPO / "environments" / "production.yaml").read_bytes,
    "flow_50mb": lambda: _flow(50 * MIB),
    "block_list_4mb": lambda: b"environment: x\nservers:\n" + b"  - 1\n" * (4 * MIB // 6),
    "flow_max": lambda: _flow(MAX_SPEC),
    "hosts_max": lambda: _hosts(MAX_SPEC, "10.0.0.{}"),
    "many_errors": lambda: _hosts(MAX_SPEC, "bad_{}"),
    "alias_bomb": _bomb,
    "deep": lambda: b"environment: x\nservers: " + b"[" * 900 + b"]" * 900 + b"\n",
    "deep_1m": lambda: b"environment: x\nservers: " + b"[" * 1_000_000 + b"\n",
    "long_scalar": lambda: b"environment: " + b"x" * (MAX_SPEC - 20) + b"\n",
    "long_number": lambda: b"environment: " + b"7" * (MAX_SPEC - 20) + b"\n",
    "base60_1mb": lambda: b"environment: 1" + b":59" * (MAX_SPEC // 3 - 8) + b"\n",
}


def run_once(spec: Path) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in MiB, exit code) of one `tfsconf validate`
    process. Linux carries the pre-exec address space's peak into ru_maxrss, so this
    process must stay small: the specs are written by a child (see main)."""
    started = time.perf_counter()
    pid = os.posix_spawn(
        sys.executable,
        [sys.executable, "-m", "tfsconf", "validate", str(spec)],
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ],
    )
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    return elapsed, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", action="append", choices=sorted(CASES))
    parser.add_argument("--write", metavar="FILE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = args.only or list(CASES)
    if args.write:  # the child that writes one spec
        Path(args.write).write_bytes(CASES[names[0]]())
        return 0
    load = os.getloadavg()[0]
    print(
        f"limits: {LIMIT_SECONDS:.0f} s, {LIMIT_MIB:.0f} MiB per validate; "
        f"cpus={os.cpu_count()} load={load:.1f} (wall times grow with load; CPU s less so)"
    )
    print(
        f"{'case':<16}{'bytes':>10}{'wall s med':>12}{'wall s max':>12}{'cpu s max':>11}"
        f"{'peak MiB':>10}{'exit':>6}  within"
    )
    with tempfile.TemporaryDirectory(prefix="tfsconf-hostile-") as scratch:
        shutil.copytree(REPO / "environments" / "samples", Path(scratch) / "samples")
        for name in names:
            spec = Path(scratch) / f"{name}.yaml"
            writer = [sys.executable, __file__, "--only", name, "--write", str(spec)]
            _, status, _ = os.wait4(os.posix_spawn(sys.executable, writer, os.environ), 0)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"could not write the {name} spec")
            runs = [run_once(spec) for _ in range(args.repeat)]
            walls = [r[0] for r in runs]
            cpu = max(r[1] for r in runs)
            peak = max(r[2] for r in runs)
            codes = sorted({r[3] for r in runs})
            within = max(walls) <= LIMIT_SECONDS and peak <= LIMIT_MIB
            print(
                f"{name:<16}{spec.stat().st_size:>10}{statistics.median(walls):>12.2f}"
                f"{max(walls):>12.2f}{cpu:>11.2f}{peak:>10.0f}"
                f"{','.join(map(str, codes)):>6}  {'yes' if within else 'NO'}"
            )
            spec.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
