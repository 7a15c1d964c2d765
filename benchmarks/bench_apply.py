"""A no-op `tfsconf apply` against `tfsconf plan --live` of the same, on the 3-host test bed.

Builds the bed (network namespaces with their own sshd, or --mode local), deploys one
model once, then times, as whole processes: `plan --live` (the baseline: it reads every
host's last-applied record through Ansible and plans) and `apply --yes` with nothing to
change (target: at most 1.5x the plan). Needs root (namespaces) and the venv.

    .venv/bin/python benchmarks/bench_apply.py [--mode ssh|local] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "warmup"))

from tests.apply.scenario import Scenario  # noqa: E402
from tests.apply.testbed import TestBed  # noqa: E402


def timed(scenario: Scenario, *args: str) -> tuple[float, int]:
    started = time.perf_counter()
    proc = scenario.tfsconf(*args)
    return time.perf_counter() - started, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["ssh", "local"], default="ssh")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from savedmodels import build_mixed_model

    with tempfile.TemporaryDirectory(prefix="bench-apply-") as tmp:
        base = Path(tmp)
        template = build_mixed_model(base / "template")
        bed = TestBed.create(base / "bed", args.mode, 3)
        try:
            scenario = Scenario(bed, base / "work", template)
            scenario.write_spec([1])
            first, code = timed(
                scenario,
                "apply",
                str(scenario.spec_path),
                "--yes",
                "--host-vars",
                str(scenario.host_vars_path),
            )
            if code != 0:
                print("first deploy failed", file=sys.stderr)
                return 1
            common = ["--host-vars", str(scenario.host_vars_path)]
            plans, applies = [], []
            for _ in range(args.runs):
                seconds, code = timed(scenario, "plan", str(scenario.spec_path), "--live", *common)
                assert code == 0, "plan --live should find no changes"
                plans.append(seconds)
                seconds, code = timed(scenario, "apply", str(scenario.spec_path), "--yes", *common)
                assert code == 0
                applies.append(seconds)
        finally:
            bed.close()
    plan_s, apply_s = statistics.median(plans), statistics.median(applies)
    print(f"test bed: 3 hosts ({args.mode}), {args.runs} runs each, medians")
    print(f"  first deploy (3 hosts, serial 1)     {first:7.2f} s")
    print(f"  plan --live (baseline)               {plan_s:7.2f} s   1.00x")
    print(
        f"  apply, nothing to change             {apply_s:7.2f} s   {apply_s / plan_s:.2f}x"
        "   (target <= 1.5x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
