"""tfsconf_model_sync on a large version: first sync vs `cp -r`, and the unchanged re-run.

Builds a SavedModel-like version of --size bytes (default 1 GiB as 8 shards of random
bytes plus saved_model.pb and variables.index) under a temporary directory in --tmp-root,
writes its tfsconf manifest, then measures:

    cp -r SRC DST                  plain copy (page cache; writeback not waited for)
    cp -r SRC DST && sync          the same, durable
    module, first sync             through ansible-runner end to end, and the module's own
                                   `seconds` (hash + verify + fsync + rename)
    module, second sync            unchanged: stat only; target < 1 s per host

The source was just written, so every reader finds it in the page cache. `sync` runs
between steps so one step's writeback is not charged to the next. No assertions;
the temporary directory is removed at the end.

    .venv/bin/python benchmarks/bench_sync.py [--size 1G] [--files 8] [--tmp-root /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ansible_runner

from tfsconf.modelcheck.manifest import write_manifest

REPO = Path(__file__).resolve().parent.parent
INVENTORY = "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
MIB = 1024 * 1024
UNITS = {"K": 1024, "M": MIB, "G": 1024 * MIB}


def parse_size(text: str) -> int:
    unit = UNITS.get(text[-1:].upper(), 1)
    return int(float(text[:-1] if unit > 1 else text) * unit)


def build_source(version_dir: Path, size: int, files: int) -> int:
    """Random shards of size/files bytes each; returns the total bytes of the version."""
    (version_dir / "variables").mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(os.urandom(256 * 1024))
    (version_dir / "variables" / "variables.index").write_bytes(os.urandom(4096))
    shard = size // files
    for i in range(files):
        name = f"variables.data-{i:05d}-of-{files:05d}"
        with (version_dir / "variables" / name).open("wb") as out:
            left = shard
            while left:
                block = min(left, 16 * MIB)
                out.write(os.urandom(block))
                left -= block
    return sum(p.stat().st_size for p in version_dir.rglob("*") if p.is_file())


def run_module(work: Path, name: str, args: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """One ansible-playbook run of the module; (wall seconds, module result)."""
    private_dir = work / name
    (private_dir / "project").mkdir(parents=True)
    play = [{"hosts": "all", "gather_facts": False, "tasks": [{"tfsconf_model_sync": args}]}]
    (private_dir / "project" / "sync.yml").write_text(json.dumps(play))
    env = {
        "ANSIBLE_LIBRARY": str(REPO / "playbooks" / "library"),
        "ANSIBLE_MODULE_UTILS": str(REPO / "playbooks" / "module_utils"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    started = time.perf_counter()
    runner = ansible_runner.run(
        private_data_dir=str(private_dir),
        playbook="sync.yml",
        inventory=INVENTORY,
        envvars=env,
        quiet=True,
    )
    wall = time.perf_counter() - started
    result: dict[str, Any] = {}
    for event in runner.events:
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            result = event["event_data"]["res"]
    if runner.status != "successful":
        raise SystemExit(f"module run {name} failed: {result.get('msg', runner.status)}")
    return wall, result


def timed(command: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, shell=True, check=True)
    return time.perf_counter() - started


def rate(total: int, seconds: float) -> str:
    return f"{total / MIB / seconds:8.1f} MiB/s  ({seconds:6.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=1024 * MIB, help="e.g. 1G, 256M")
    parser.add_argument("--files", type=int, default=8, help="data shards")
    parser.add_argument("--tmp-root", type=Path, default=Path("/tmp"))
    parser.add_argument("--runs", type=int, default=3, help="unchanged re-runs to time")
    options = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-sync-", dir=options.tmp_root))
    try:
        source = work / "source"
        started = time.perf_counter()
        total = build_source(source / "1", options.size, options.files)
        print(f"built {total / MIB:.0f} MiB in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        write_manifest(source / "1")
        print(f"source manifest (tfsconf): {time.perf_counter() - started:.2f} s")
        subprocess.run(["sync"], check=True)

        cp_seconds = timed(f"cp -r {source / '1'} {work / 'cp-plain'}")
        subprocess.run(["sync"], check=True)
        cp_sync_seconds = timed(f"cp -r {source / '1'} {work / 'cp-sync'} && sync")
        shutil.rmtree(work / "cp-plain")
        shutil.rmtree(work / "cp-sync")
        subprocess.run(["sync"], check=True)

        args = {
            "base_path": str(work / "host" / "models" / "bench"),
            "version": 1,
            "source": {"kind": "local", "location": str(source)},
        }
        wall, first = run_module(work, "first", args)
        print()
        print(f"first sync of {total / MIB:.0f} MiB ({options.files + 2} files), page cache warm:")
        print(f"  cp -r                        {rate(total, cp_seconds)}")
        print(f"  cp -r && sync                {rate(total, cp_sync_seconds)}")
        print(
            f"  module (its own seconds)     {rate(total, first['seconds'])}"
            f"  {cp_seconds / first['seconds']:.0%} of cp -r"
        )
        print(f"  module via ansible-runner    {rate(total, wall)}")
        print()
        print("second (unchanged) sync:")
        for i in range(options.runs):
            wall, again = run_module(work, f"again-{i}", args)
            print(
                f"  run {i + 1}: ansible-runner end to end {wall:5.2f} s, "
                f"module {again['seconds'] * 1000:6.1f} ms, changed={again['changed']}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
