"""`tfsconf plan --base` against `tfsconf compile` of the same spec, as whole processes.

For the production example (environments/production.yaml and its samples) and for a
generated fleet (fleet.py), a throwaway git repository is built in a temporary directory
(fixed identity and dates): the base commit holds the spec, and the working tree carries a
realistic change that touches every host (a model version bumped with its labels moved;
for production also mnist's latest count, so the vision hosts change too). Then, as fresh
processes (`python -m tfsconf ...`, stdout to /dev/null), interleaved round-robin:

    plan SPEC --base HEAD                 (text, the default format)
    plan SPEC --base HEAD --format json
    plan SPEC                             (no state: everything is new)
    compile SPEC --out DIR                (a fresh DIR each run, under the temporary root)
    compile SPEC --out /dev/shm/DIR       (when /dev/shm is another filesystem)

Target (from the issue): plan --base takes at most 2x the time of compile of the same
spec. Children get TMPDIR inside the temporary root, so plan's `git archive` extraction
lands on the same filesystem as compile's output. Wall times only, no assertions.

    .venv/bin/python benchmarks/bench_plan.py [--runs 5] [--hosts 500] [--profile]
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bytecode import BYTECODE_HELP, MODES, child_env, describe
from fleet import write_fleet

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 2.0
SHM = Path("/dev/shm")
PLAN_JSON = "plan --base HEAD --format json"
EXIT_OK, EXIT_CHANGES = 0, 2  # plan: 0 no changes, 2 changes, 1 error

# A fixed identity, fixed dates and no user or system git configuration: the base commit
# is the same on every machine, and nothing of the caller's setup (hooks, signing) runs.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "tfsconf bench",
    "GIT_AUTHOR_EMAIL": "bench@tfsconf.invalid",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "tfsconf bench",
    "GIT_COMMITTER_EMAIL": "bench@tfsconf.invalid",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}

# (old, new) text replacements: each old text must occur exactly once in the spec.
PRODUCTION_CHANGE = (
    # ctr: 1044 added, stable 1042 -> 1043, canary 1043 -> 1044, 1042 dropped (3 phases)
    ("versions: [1042, 1043]}", "versions: [1043, 1044]}"),
    ("labels: {stable: 1042, canary: 1043}", "labels: {stable: 1043, canary: 1044}"),
    # mnist is served by the vision hosts only: keep one more version there
    ("versions: {policy: latest, count: 2}", "versions: {policy: latest, count: 3}"),
)
# every server of the fleet serves model00 (first version 1000)
FLEET_CHANGE = (
    ("versions: [1000, 1001]}", "versions: [1001, 1002]}"),
    ("labels: {stable: 1000, canary: 1001}", "labels: {stable: 1001, canary: 1002}"),
)


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
        timeout=120,
    )


def make_repo(repo: Path, spec: Path, change: tuple[tuple[str, str], ...]) -> None:
    """Commit the spec's directory as it is, then apply `change` to the working tree."""
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    text = spec.read_text()
    for old, new in change:
        if text.count(old) != 1:
            raise RuntimeError(f"{spec}: expected {old!r} exactly once")
        text = text.replace(old, new)
    spec.write_text(text)


def production_repo(root: Path) -> Path:
    repo = root / "production-repo"
    (repo / "environments").mkdir(parents=True)
    spec = repo / "environments" / "production.yaml"
    shutil.copyfile(REPO / "environments" / "production.yaml", spec)
    shutil.copytree(REPO / "environments" / "samples", repo / "environments" / "samples")
    make_repo(repo, spec, PRODUCTION_CHANGE)
    return spec


def fleet_repo(root: Path, hosts: int) -> Path:
    repo = root / f"fleet{hosts}-repo"
    spec = write_fleet(repo / "environments", hosts=hosts)
    make_repo(repo, spec, FLEET_CHANGE)
    return spec


def run(argv: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=300,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr.decode(errors='replace')}"
        )
    return elapsed


@dataclass
class Command:
    label: str
    make_argv: Callable[[], list[str]]
    ok: tuple[int, ...] = (EXIT_OK,)
    out: Path | None = None
    """Where a compile writes; removed after each run so every run gets a fresh one."""
    times: list[float] = field(default_factory=list)


@dataclass
class Bench:
    name: str
    spec: Path
    scratch: Path
    """Outside the repository: for the warm-up's reference compile."""
    commands: list[Command]
    notes: list[str] = field(default_factory=list)


def bench_for(name: str, spec: Path, scratch: Path, out_roots: dict[str, Path]) -> Bench:
    python = [sys.executable, "-m", "tfsconf"]
    s = str(spec)
    commands = [
        Command(
            "plan --base HEAD", lambda: [*python, "plan", s, "--base", "HEAD"], (EXIT_CHANGES,)
        ),
        Command(
            PLAN_JSON,
            lambda: [*python, "plan", s, "--base", "HEAD", "--format", "json"],
            (EXIT_CHANGES,),
        ),
        Command("plan (no state)", lambda: [*python, "plan", s], (EXIT_CHANGES,)),
    ]
    for where, root in out_roots.items():
        out = root / f"{name.replace(' ', '')}-out"
        commands.append(
            Command(
                f"compile --out {where}",
                lambda out=out: [*python, "compile", s, "--out", str(out)],
                out=out,
            )
        )
    return Bench(name, spec, scratch, commands)


def run_command(command: Command, env: dict[str, str], cwd: Path) -> float:
    try:
        return run(command.make_argv(), env, cwd, command.ok)
    finally:
        if command.out is not None:
            shutil.rmtree(command.out, ignore_errors=True)


def warm_up(bench: Bench, env: dict[str, str]) -> None:
    """Untimed runs of every command (fills the bytecode and page caches), and a check
    that the change reaches every host; notes the sizes of what plan and compile write."""
    cwd = bench.spec.parent
    for command in bench.commands:
        run_command(command, env, cwd)
    reference = bench.scratch / "reference-out"
    argv = [sys.executable, "-m", "tfsconf", "compile", str(bench.spec), "--out", str(reference)]
    run(argv, env, cwd, (EXIT_OK,))
    hosts = sorted(p.name for p in (reference / "hosts").iterdir())
    files = [p for p in reference.rglob("*") if p.is_file()]
    compiled = sum(p.stat().st_size for p in files)
    shutil.rmtree(reference)
    outputs = {}
    for fmt in ("text", "json"):
        argv = [sys.executable, "-m", "tfsconf", "plan", str(bench.spec), "--base", "HEAD"]
        done = subprocess.run(
            [*argv, "--format", fmt], cwd=cwd, env=env, capture_output=True, check=False
        )
        if done.returncode != EXIT_CHANGES:
            raise RuntimeError(f"plan --base HEAD exited {done.returncode}, not 2 (changes)")
        outputs[fmt] = done.stdout
    planned = {
        host["name"] for plan in json.loads(outputs["json"])["plans"] for host in plan["hosts"]
    }
    if planned != set(hosts):
        raise RuntimeError(f"{bench.name}: the change reaches {len(planned)} of {len(hosts)} hosts")
    bench.notes.append(
        f"{len(hosts)} hosts, all changed; compile writes {len(files)} files, "
        f"{compiled / 1e6:.2f} MB; plan stdout: text {len(outputs['text']) / 1e6:.2f} MB, "
        f"json {len(outputs['json']) / 1e6:.2f} MB"
    )


def report(bench: Bench, runs: int) -> str:
    median = {c.label: statistics.median(c.times) for c in bench.commands}
    compiles = [c.label for c in bench.commands if c.label.startswith("compile")]
    # ratios against each compile: the first (same filesystem) is the target's; /dev/shm
    # shows the same without the disk, which a noisy or slow disk can dominate
    heads = "".join(f" {'x ' + label.removeprefix('compile --out '):>15}" for label in compiles)
    lines = [
        f"{bench.name}: {bench.spec.name}, median of {runs} (min)",
        *(f"  {note}" for note in bench.notes),
        f"  {'command':<34} {'median ms':>10} {'min ms':>8}{heads}",
    ]
    for command in bench.commands:
        ratios = "".join(f" {median[command.label] / median[label]:>14.2f}x" for label in compiles)
        lines.append(
            f"  {command.label:<34} {median[command.label] * 1000:>10.0f} "
            f"{min(command.times) * 1000:>8.0f}{ratios}"
        )
    for index, label in enumerate(compiles):
        ratio = {
            fmt: median[plan] / median[label]
            for fmt, plan in (("text", "plan --base HEAD"), ("json", PLAN_JSON))
        }
        met = all(value <= TARGET_RATIO for value in ratio.values())
        detail = ", ".join(f"{fmt} {value:.2f}x" for fmt, value in ratio.items())
        lines.append(
            f"  {'target' if index == 0 else '  also'}: plan --base <= {TARGET_RATIO:g}x "
            f"{label}: {'met' if met else 'missed'} ({detail}, medians)"
        )
    return "\n".join(lines)


def profile_plan(spec: Path, top: int) -> None:
    """cProfile of one in-process plan --base HEAD (modules imported beforehand)."""
    import cProfile
    import pstats

    from tfsconf import api
    from tfsconf.compile import build_bundle  # noqa: F401  (import outside the profile)
    from tfsconf.plan import gitbase, planner, render  # noqa: F401

    os.chdir(spec.parent)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    api.plan_environment(spec, api.state_source(spec, base="HEAD"))
    profiler.disable()
    elapsed = time.perf_counter() - started
    print(f"\ncProfile of api.plan_environment(--base HEAD), {spec} ({elapsed:.2f} s profiled):")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per command")
    parser.add_argument("--hosts", type=int, default=500, help="hosts in the generated fleet")
    parser.add_argument(
        "--tmp-root",
        type=Path,
        default=Path("/tmp"),
        help="where to make the temporary directory (repositories, compile output, TMPDIR)",
    )
    parser.add_argument("--bytecode", choices=MODES, default="cached", help=BYTECODE_HELP)
    parser.add_argument(
        "--profile",
        type=int,
        nargs="?",
        const=15,
        default=0,
        metavar="TOP",
        help="also cProfile one in-process plan --base of the fleet (top 15 cumulative)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.hosts < 1:
        parser.error("--runs and --hosts must be at least 1")
    root = Path(tempfile.mkdtemp(prefix="tfsconf-bench-plan-", dir=args.tmp_root))
    shm_root: Path | None = None
    try:
        env = child_env(args.bytecode, root / "pycache")
        (root / "tmp").mkdir()
        env.update(GIT_ENV, TMPDIR=str(root / "tmp"))
        out_roots = {"DIR": root}
        if SHM.is_dir() and os.stat(SHM).st_dev != os.stat(root).st_dev:
            shm_root = Path(tempfile.mkdtemp(prefix="tfsconf-bench-plan-", dir=SHM))
            out_roots["/dev/shm/DIR"] = shm_root
        benches = [
            bench_for("production", production_repo(root), root, out_roots),
            bench_for(f"fleet {args.hosts}", fleet_repo(root, args.hosts), root, out_roots),
        ]
        for bench in benches:
            warm_up(bench, env)
        for _ in range(args.runs):
            for bench in benches:
                for command in bench.commands:
                    command.times.append(run_command(command, env, bench.spec.parent))
        print(f"temporary root {root.parent}; {describe(args.bytecode)}; python -m tfsconf")
        for bench in benches:
            print()
            print(report(bench, args.runs))
        if args.profile:
            sys.stdout.flush()
            os.environ.update(GIT_ENV)
            profile_plan(benches[-1].spec, args.profile)
    finally:
        os.chdir(REPO)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        if shm_root is not None:
            shutil.rmtree(shm_root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
