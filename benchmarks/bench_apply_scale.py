"""`tfsconf apply` at fleet scale on the test bed: N hosts, one server each, rollout step 25%.

For each N (default 3, 10, 30) the script builds a bed of N hosts (network namespaces with
their own sshd, or --mode local), a model of --model-mib MiB (a real SavedModel built with
TensorFlow plus a padding asset), and times, as whole `tfsconf` processes:
- the first deploy of version 1 (every host syncs the model: first-sync throughput);
- `plan --live` against a no-op `apply` (--runs each, medians; target apply <= 1.2x plan);
- a version bump 1 -> 2 by hot reload (target: <= 60 s at N = 30).
Each apply keeps its Ansible run directories (TFSCONF_KEEP_ANSIBLE_DIR); their job events
give the wall time of each playbook and of each task on each host, grouped as: connection
+ staging (the first task on a host opens its SSH connection), sync, reload, health gate,
smoke, record, other. It also samples the controller's memory: the summed RSS of the
tfsconf process and everything it starts (ansible-playbook, its forks, the agents).

Needs root (namespaces) and the dev venv. Prints figures; asserts nothing about time.

    .venv/bin/python benchmarks/bench_apply_scale.py [--sizes 3,10,30] [--mode ssh|local]
        [--model-mib 100] [--step 25%] [--runs 2] [--tmp-root /var/tmp] [--keep-runs DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "warmup"))

from tests.apply.scenario import TFSCONF, Scenario, publish_version  # noqa: E402
from tests.apply.testbed import TestBed  # noqa: E402
from tests.notf import without_tensorflow_env  # noqa: E402

MIB = 1024 * 1024
FIRST_TASK = "stop requested before this host"  # rollout.yml: each step (batch) starts with it
PAGE = os.sysconf("SC_PAGE_SIZE")

# task name (as in playbooks/rollout.yml and tasks/activate.yml) -> the step it belongs to
GROUPS = {
    "stage the release": "connect+stage",
    "sync model versions": "sync",
    "per-model batching into versions on the host": "sync",
    "switch current": "switch",
    "record the release": "record",
}


def group_of(task: str) -> str:
    if task in GROUPS:
        return GROUPS[task]
    for needle, group in (
        ("hot reload", "reload"),
        ("restart", "reload"),
        ("health gate", "health gate+smoke"),
    ):
        if needle in task:
            return group
    return "other"


class Sampler:
    """The peak summed RSS of a process and all its descendants, sampled every 50 ms, and
    their peak summed PSS every 0.5 s. Ansible's workers are forks that share most of their
    pages: RSS counts a shared page in every process, PSS divides it among them, so the
    PSS sum is the memory the tree really holds."""

    PSS_EVERY = 10
    """Samples between two PSS reads (smaps_rollup walks every mapping: dearer than statm)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.peak_procs = 0
        self.peak_pss = 0
        self.cpu = 0.0
        """CPU seconds (user + system) of the process and the descendants it reaped, set
        when it ended: tfsconf, ansible-playbook, its workers and their ssh clients. Not
        counted: the hosts' side (sshd, module runs, servers) and the ControlPersist SSH
        masters (daemons of their own)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = defaultdict(list)
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    @staticmethod
    def _pss(pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as handle:
                    for line in handle:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except (OSError, IndexError, ValueError):
                continue
        return total

    def _run(self) -> None:
        sample = 0
        while not self._stop.wait(0.05):
            total = 0
            pids = self._tree()
            sample += 1
            if sample % self.PSS_EVERY == 0:
                self.peak_pss = max(self.peak_pss, self._pss(pids))
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/statm") as handle:
                        total += int(handle.read().split()[1]) * PAGE
                except (OSError, IndexError, ValueError):
                    continue
            if total > self.peak:
                self.peak, self.peak_procs = total, len(pids)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_tfsconf(scenario: Scenario, keep: Path | None, *args: str) -> tuple[float, int, Sampler]:
    env = without_tensorflow_env()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        env["TFSCONF_KEEP_ANSIBLE_DIR"] = str(keep)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*TFSCONF, *args],
        cwd=scenario.workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = Sampler(proc.pid)
    out, err = proc.communicate(timeout=1800)
    sampler.stop()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler.cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode not in (0, 2):
        print(err[-3000:], file=sys.stderr)
    scenario.last_stderr = err
    del out
    return seconds, proc.returncode, sampler


def _when(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def events_of(run_dir: Path) -> list[dict[str, Any]]:
    events = []
    for path in run_dir.glob("artifacts/*/job_events/*.json"):
        try:
            events.append(json.loads(path.read_text()))
        except ValueError:
            continue
    return sorted(events, key=lambda e: e.get("counter", 0))


def task_walls(keep: Path) -> dict[str, tuple[float, float, int]]:
    """Per task name of the rollout run: the wall time the task held the play (its first
    host's start to its last host's end, summed over its steps), the hosts' summed seconds,
    and how many host runs it had. The first column is what the task cost the rollout."""
    spans: dict[tuple[str, str], list[float]] = {}
    per_host: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    names: dict[str, str] = {}
    for run_dir in sorted(keep.glob("rollout.yml-*")):
        started: dict[tuple[str, str], float] = {}
        batch = 0  # a task's span is taken per step (serial batch): it runs once in each
        for event in events_of(run_dir):
            kind, data = event.get("event"), event.get("event_data") or {}
            if kind == "playbook_on_play_start" or (
                kind == "playbook_on_task_start" and data.get("task") == FIRST_TASK
            ):
                batch += 1
            if "created" not in event or "task_uuid" not in data:
                continue
            at, uuid = _when(event["created"]), str(data["task_uuid"])
            task = str(data.get("task", ""))
            names[uuid] = task
            key = (str(data.get("host", "")), uuid)
            if kind == "runner_on_start":
                started[key] = at
            elif kind in ("runner_on_ok", "runner_on_failed") and key in started:
                per_host[task] += at - started[key]
                count[task] += 1
                span = spans.setdefault((f"{run_dir.name}/{batch}", uuid), [started[key], at])
                span[0], span[1] = min(span[0], started.pop(key)), max(span[1], at)
    walls: dict[str, float] = defaultdict(float)
    for (_run, uuid), (begin, end) in spans.items():
        walls[names[uuid]] += end - begin
    return {t: (walls[t], per_host[t], count[t]) for t in walls}


def breakdown(keep: Path) -> tuple[dict[str, float], dict[str, list[float]], list[float]]:
    """Per playbook: wall seconds; per group: each host's seconds in the rollout; the wall
    time of each rollout step (serial batch)."""
    playbooks: dict[str, float] = defaultdict(float)
    per_group: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    steps: list[float] = []
    for run_dir in sorted(keep.iterdir()):
        events = events_of(run_dir)
        if not events:
            continue
        name = run_dir.name.split("-tfsconf-ansible-")[0]
        times = [_when(e["created"]) for e in events if "created" in e]
        playbooks[name] += max(times) - min(times)
        if name != "rollout.yml":
            continue
        started: dict[tuple[str, str], float] = {}
        batch_start: float | None = None
        last = 0.0
        for event in events:
            kind = event.get("event")
            data = event.get("event_data") or {}
            at = _when(event["created"])
            if kind == "playbook_on_play_start" or (
                kind == "playbook_on_task_start" and data.get("task") == FIRST_TASK
            ):
                if batch_start is not None and last > batch_start:
                    steps.append(last - batch_start)
                batch_start = at
            key = (str(data.get("host", "")), str(data.get("task_uuid", "")))
            if kind == "runner_on_start":
                started[key] = at
            elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
                last = at
                if key in started and kind != "runner_on_skipped":
                    host = key[0]
                    per_group[group_of(str(data.get("task", "")))][host] += at - started.pop(key)
        if batch_start is not None and last > batch_start:
            steps.append(last - batch_start)
    groups = {g: list(hosts.values()) for g, hosts in per_group.items()}
    return dict(playbooks), groups, steps


def publish(scenario: Scenario, template: Path, version: int) -> None:
    """The version in the controller's source, hard-linked into each host's mount of it."""
    target = publish_version(template, scenario.source, version)
    for host in scenario.bed.hosts:
        mount = host.root / str(scenario.source).lstrip("/") / str(version)
        if not mount.exists():
            mount.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-al", str(target), str(mount)], check=True)


def make_template(base: Path, mib: int) -> Path:
    from savedmodels import build_mixed_model

    template = build_mixed_model(base / "template")
    assets = template / "assets"
    assets.mkdir(exist_ok=True)
    with (assets / "padding.bin").open("wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(MIB))
    return template


def size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def report_apply(label: str, keep: Path, seconds: float, sampler: Sampler, n: int) -> None:
    playbooks, groups, steps = breakdown(keep)
    print(
        f"  {label:<28} {seconds:7.2f} s   {seconds / n:6.2f} s/host   "
        f"controller peak {sampler.peak / MIB:6.0f} MiB in {sampler.peak_procs} processes"
    )
    print(f"      controller peak PSS {sampler.peak_pss / MIB:6.0f} MiB (shared pages divided)")
    print(
        f"      controller CPU {sampler.cpu:6.1f} core-s, {sampler.cpu / n:5.2f} per host "
        "(tfsconf, Ansible, ssh clients; not the hosts' side)"
    )
    shown = ", ".join(f"{k.removesuffix('.yml')} {v:.1f}" for k, v in playbooks.items())
    print(f"      playbooks (s): {shown}")
    if steps:
        print(
            f"      steps: {len(steps)}, each {statistics.mean(steps):.1f} s mean "
            f"({min(steps):.1f}-{max(steps):.1f})"
        )
    for group in ("connect+stage", "sync", "switch", "reload", "health gate+smoke", "record"):
        values = groups.get(group)
        if values:
            print(
                f"      per host {group:<14} {statistics.mean(values):6.2f} s mean, "
                f"{max(values):6.2f} s max"
            )
    other = groups.get("other")
    if other:
        print(f"      per host {'other tasks':<14} {statistics.mean(other):6.2f} s mean")
    walls = sorted(task_walls(keep).items(), key=lambda item: -item[1][0])
    print("      rollout tasks by wall time (s held the play, host-s summed, host runs):")
    for task, (wall, summed, runs) in walls[:12]:
        print(f"        {wall:7.1f} {summed:8.1f} {runs:4d}  {task[:60]}")


def bench(n: int, args: argparse.Namespace, template: Path, tmp: Path) -> None:
    base = tmp / f"n{n}"
    bed = TestBed.create(base / "bed", args.mode, n)
    try:
        scenario = Scenario(bed, base / "work", template)
        common = ["--host-vars", str(scenario.host_vars_path)]
        apply_args = ["apply", str(scenario.spec_path), "--yes", *common]
        scenario.publish = lambda version, **_: publish(scenario, template, version)  # type: ignore[method-assign]
        scenario.write_spec([1], step=args.step)
        print(
            f"N = {n} hosts ({args.mode}), model {size_of(template) / MIB:.0f} MiB, "
            f"step {args.step}"
        )
        keep = base / "keep-first"
        seconds, code, sampler = run_tfsconf(scenario, keep, *apply_args)
        if code != 0:
            raise SystemExit(f"first deploy failed: {scenario.last_stderr[-2000:]}")
        report_apply("first deploy (v1)", keep, seconds, sampler, n)
        syncs = breakdown(keep)[1].get("sync", [])
        if syncs:
            rate = size_of(template) / MIB / statistics.mean(syncs)
            print(f"      first sync: {rate:.0f} MiB/s per host (the sync tasks' own time)")

        plans, noops = [], []
        for i in range(args.runs):
            seconds, code, _ = run_tfsconf(
                scenario, None, "plan", str(scenario.spec_path), "--live", *common
            )
            if code != 0:
                raise SystemExit(f"plan --live found changes or failed (exit {code})")
            plans.append(seconds)
            keep = base / f"keep-noop-{i}"
            seconds, code, sampler = run_tfsconf(scenario, keep, *apply_args)
            if code != 0:
                raise SystemExit("no-op apply failed")
            noops.append(seconds)
        plan_s, noop_s = statistics.median(plans), statistics.median(noops)
        print(f"  {'plan --live':<28} {plan_s:7.2f} s   (median of {args.runs})")
        print(
            f"  {'apply, nothing to change':<28} {noop_s:7.2f} s   "
            f"{noop_s / plan_s:.2f}x plan --live (target <= 1.2x)"
        )

        scenario.write_spec([2], step=args.step)
        keep = base / "keep-bump"
        seconds, code, sampler = run_tfsconf(scenario, keep, *apply_args)
        if code != 0:
            raise SystemExit(f"version bump failed: {scenario.last_stderr[-2000:]}")
        report_apply("version bump 1 -> 2 (reload)", keep, seconds, sampler, n)
        kinds = {
            str(event.get("event_data", {}).get("task", ""))
            for run_dir in keep.glob("rollout.yml-*")
            for event in events_of(run_dir)
            if event.get("event") == "runner_on_ok"
        }
        reload = any("hot reload" in k for k in kinds)
        print(f"      activation: {'hot reload' if reload else 'NOT a hot reload'}")
        sys.stdout.flush()
    finally:
        bed.close()
        if args.keep_runs:
            for run in base.glob("keep-*"):
                shutil.copytree(run, args.keep_runs / f"n{n}-{run.name}", dirs_exist_ok=True)
        shutil.rmtree(base, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,10,30")
    parser.add_argument("--mode", choices=["ssh", "local"], default="ssh")
    parser.add_argument("--model-mib", type=int, default=100)
    parser.add_argument("--step", default="25%")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--tmp-root", type=Path, default=Path("/var/tmp"))
    parser.add_argument(
        "--keep-runs", type=Path, default=None, help="copy the Ansible run directories here"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-apply-scale-", dir=args.tmp_root) as name:
        tmp = Path(name)
        template = make_template(tmp, args.model_mib)
        for n in (int(s) for s in args.sizes.split(",")):
            bench(n, args, template, tmp)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
