"""Mutation fuzzing of the bundled example specs, on demand (issue 12, section 7).

Runs N mutants of environments/*.yaml through validate and compile in-process (the same
engine as tests/spec/test_fuzz.py, tests/specfuzz.py) and prints the counts. A crash is
any exception other than a user error; an injection is an accepted mutant whose compiled
bundle has a value spilled over a line, a NUL byte, a malformed Dockerfile or unit line, a
models.config that ModelServerConfig does not parse or a JSON file that does not parse.
Exits 1 when any crash, injection or unlocated diagnostic is found; re-run one failing
case with its seed and case number (--seed S --first K --cases 1).

    .venv/bin/python benchmarks/fuzz_specs.py --cases 10000 --seed 1
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from specfuzz import SEPARATORS, Tally, Workdir, examples, run_case, run_sweep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=0, help="index of the first case")
    parser.add_argument("--show", type=int, default=5, help="failures to print in full")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="also every string value of every example with every payload (about 4,800)",
    )
    args = parser.parse_args(argv)

    bases = examples()
    names = sorted(bases)
    tally = Tally()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfsconf-fuzz-", dir="/dev/shm") as scratch:
        work = Workdir(Path(scratch))
        for index in range(args.first, args.first + args.cases):
            rng = random.Random(f"{args.seed}:{index}")
            name = names[index % len(names)]
            run_case(bases[name], rng, work, tally, f"seed={args.seed} case={index} ({name})")
            if (index - args.first + 1) % 1000 == 0:
                print(f"... {tally.line()}", file=sys.stderr)
        swept = run_sweep(SEPARATORS, work) if args.sweep else None
    elapsed = time.perf_counter() - started
    failures = [*tally.failures, *(swept.failures if swept else [])]
    for failure in failures[: args.show]:
        print(failure, end="\n\n")
    print(f"seed={args.seed} examples={','.join(names)} elapsed={elapsed:.1f}s")
    print(f"random: {tally.line()}")
    applied = ", ".join(f"{k}={v}" for k, v in sorted(tally.by_mutation.items()))
    print(f"mutations applied: {applied}")
    tallies = [tally]
    if swept is not None:
        print(f"sweep ({len(SEPARATORS)} payloads x every string value): {swept.line()}")
        tallies.append(swept)
    return 1 if any(t.crashes or t.injections or t.unlocated for t in tallies) else 0


if __name__ == "__main__":
    sys.exit(main())
