"""Size of the pull-request comment (`plan --format markdown`) against fleet size.

For each N, a generated fleet (fleet.py) is committed to a throwaway git repository and
every server's first model gets a version bump and a label move; `tfsconf plan --base HEAD
--format markdown` then renders the comment, once untruncated (--comment-limit 0) and once
as CI posts it (GitHub's 65,536-character limit, full plan to a file).

    python benchmarks/bench_comment.py [--hosts 40 400 4000]

Prints, per N: the untruncated size, the posted size, whether it was truncated, how many
host sections the comment shows, and the time of the plan command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_plan import fleet_repo

LIMIT = 65_536


def plan(spec: Path, *extra: str) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tfsconf",
            "plan",
            str(spec.name),
            "--base",
            "HEAD",
            "--format",
            "markdown",
            *extra,
        ],
        cwd=spec.parent,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
        env={**os.environ, "NO_COLOR": "1"},
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 2:
        raise RuntimeError(f"plan exited {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout, elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[40, 400, 4000])
    args = parser.parse_args(argv)
    print(
        f"{'hosts':>6} {'full chars':>11} {'posted chars':>13} {'truncated':>9} "
        f"{'sections':>8} {'plan s':>7}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-comment-", dir="/dev/shm") as tmp:
        for hosts in args.hosts:
            spec = fleet_repo(Path(tmp), hosts)
            full, _ = plan(spec, "--comment-limit", "0")
            posted, elapsed = plan(spec, "--full-plan", str(Path(tmp) / f"full-{hosts}.md"))
            truncated = "Truncated:" in posted
            sections = posted.count("<details>")
            print(
                f"{hosts:>6} {len(full):>11,} {len(posted):>13,} {truncated!s:>9} "
                f"{sections:>8} {elapsed:>7.1f}"
            )
            if len(posted) > LIMIT:
                print(f"  ERROR: the posted comment is over {LIMIT} characters")
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
