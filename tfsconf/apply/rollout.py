"""apply: preflight on every changed host, then each host group in rollout steps, then the
host locks released; the report says per host what happened.

Ansible decides the steps inside a group (`serial`, `max_fail_percentage`); groups run one
after another, and a group with a failed host stops the apply (later groups untouched).
"""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tfsconf.apply import ansible
from tfsconf.apply.record import HostRecord, operator
from tfsconf.apply.work import Options, WorkBuilder, scratch_dir
from tfsconf.plan.model import Plan
from tfsconf.resolve import model as r

HostStatus = str
"""applied | rolled-back | failed | untouched (not reached) | unchanged (empty plan) |
preflight-failed | locked"""


@dataclass(slots=True)
class HostReport:
    host: str
    group: str
    status: HostStatus
    release: str | None = None
    changed: int = 0
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "group": self.group,
            "status": self.status,
            "release": self.release,
            "changed": self.changed,
            "error": self.error,
        }


@dataclass(slots=True)
class ApplyReport:
    environment: str
    run_id: str
    hosts: list[HostReport] = field(default_factory=list)
    stage: str = "done"
    """Where the apply ended: preflight, rollout or done."""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(h.status in ("applied", "unchanged") for h in self.hosts)

    @property
    def changed(self) -> int:
        return sum(h.changed for h in self.hosts)

    def as_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "run_id": self.run_id,
            "ok": self.ok,
            "stage": self.stage,
            "changed": self.changed,
            "seconds": round(self.seconds, 3),
            "hosts": [h.as_json() for h in self.hosts],
        }


class Progress:
    """Progress per host and step on stderr: plain lines, or on a terminal a live block of
    one line per host redrawn in place (failures are always kept as plain lines)."""

    def __init__(self, stream: Any = None, *, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.lines: dict[str, str] = {}
        self.drawn = 0

    def __call__(self, host: str, task: str, outcome: str) -> None:
        if outcome == "play":
            self._finish_block()
            self.stream.write(f"== {task}\n")
        elif outcome == "skipped":
            return
        elif not self.live:
            self.stream.write(f"  [{host}] {task}: {outcome}\n")
        else:
            if outcome.startswith(("failed", "unreachable")):
                self._finish_block()
                self.stream.write(f"  [{host}] {task}: {outcome}\n")
            self.lines[host] = f"  [{host}] {task}: {outcome}"
            self._redraw()
        self.stream.flush()

    def _redraw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}A")
        for host in sorted(self.lines):
            self.stream.write("\x1b[2K" + self.lines[host][:200] + "\n")
        self.drawn = len(self.lines)

    def _finish_block(self) -> None:
        self.lines.clear()
        self.drawn = 0


def _stderr_progress(host: str, task: str, outcome: str) -> None:
    _PROGRESS(host, task, outcome)


_PROGRESS = Progress()


def apply_plan(
    plan: Plan,
    env: r.Environment,
    bundle_files: Mapping[str, bytes],
    image_refs: Mapping[str, str],
    records: Mapping[str, HostRecord | None],
    inventory: Mapping[str, Any],
    *,
    options: Options | None = None,
    break_lock: bool = False,
    progress: Callable[[str, str, str], None] | None = _stderr_progress,
) -> ApplyReport:
    started = time.monotonic()
    options = options or Options()
    run_id = uuid.uuid4().hex[:12]
    report = ApplyReport(env.name, run_id)
    groups = {h.name: h.group for h in env.hosts}
    targets = [hp for hp in plan.hosts if hp.change != "remove" and hp.name in groups]
    changing = {hp.name for hp in targets}
    for host in env.hosts:
        if host.name not in changing:
            record = records.get(host.name)
            report.hosts.append(
                HostReport(host.name, host.group, "unchanged", record.release if record else None)
            )
    if not targets:
        report.seconds = time.monotonic() - started
        return report
    scratch = scratch_dir()
    try:
        builder = WorkBuilder(plan, env, bundle_files, image_refs, records, options, scratch)
        work = {hp.name: builder.build(hp) for hp in targets}
        run_rollout(
            env,
            work,
            inventory,
            report,
            break_lock=break_lock,
            progress=progress,
            secrets=builder.secrets,
        )
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        report.seconds = time.monotonic() - started


def run_rollout(
    env: r.Environment,
    work: Mapping[str, dict[str, Any]],
    inventory: Mapping[str, Any],
    report: ApplyReport,
    *,
    break_lock: bool = False,
    progress: Callable[[str, str, str], None] | None = _stderr_progress,
    secrets: Mapping[str, str] | None = None,
) -> None:
    """Preflight every host of `work`, roll each group out in steps, release the locks;
    fills `report` (apply and rollback share this: they differ only in what `work` says).
    `secrets` (source credentials) go to the rollout playbook only, apart from the work."""
    run_id = report.run_id
    groups = {h.name: h.group for h in env.hosts}
    reports = {
        name: HostReport(name, groups[name], "untouched", release=item["release"])
        for name, item in work.items()
    }
    report.hosts.extend(reports[name] for name in sorted(reports))
    common = {
        "tfsconf_work": dict(work),
        "tfsconf_run_id": run_id,
        "tfsconf_owner": operator(),
        "tfsconf_break_lock": break_lock,
        "tfsconf_config_root": env.config_root,
        "tfsconf_controller_python": sys.executable,
    }
    names = sorted(work)
    report.stage = "preflight"
    locked: list[str] = []
    try:
        pre = ansible.run(
            "preflight.yml", inventory=inventory, extravars=common, limit=names, progress=progress
        )
        failed = pre.failed_hosts()
        locked = [n for n in names if n not in failed]
        if failed or pre.status != "successful":
            for name in failed:
                failure = pre.first_failure(name)
                reports[name].status = "preflight-failed"
                reports[name].error = (
                    "unreachable: " if failure and failure.unreachable else ""
                ) + (failure.message if failure else "failed")
            return
        report.stage = "rollout"
        for group in env.groups:
            members = [n for n in names if groups[n] == group.name]
            if not members:
                continue
            result = ansible.run(
                "rollout.yml",
                inventory=inventory,
                extravars={
                    **common,
                    "tfsconf_work": {n: work[n] for n in members},
                    "tfsconf_serial": group.rollout.step,
                    "tfsconf_max_fail_percentage": group.rollout.max_fail_percentage,
                },
                limit=members,
                progress=progress,
                secrets={"tfsconf_secrets": dict(secrets)} if secrets else None,
            )
            for name in members:
                out = result.results.get(name, {})
                stats = result.stats.get(name)
                reports[name].changed = stats.changed if stats else 0
                status = str(out.get("status", ""))
                if status == "applied":
                    reports[name].status = "applied"
                elif status in ("rolled-back", "failed"):
                    reports[name].status = status
                    reports[name].error = str(out.get("error", ""))
                elif stats and (stats.failures or stats.unreachable):
                    failure = result.first_failure(name)
                    reports[name].status = "failed"
                    reports[name].error = failure.message if failure else "failed"
            if result.status != "successful" or any(
                reports[n].status not in ("applied", "untouched") for n in members
            ):
                return
        report.stage = "done"
    finally:
        if locked:
            ansible.run(
                "unlock.yml", inventory=inventory, extravars=common, limit=locked, progress=None
            )


def render_report(report: ApplyReport) -> str:
    rows = [("host", "group", "status", "changed", "release", "error")]
    for h in sorted(report.hosts, key=lambda h: (h.group, h.host)):
        rows.append((h.host, h.group, h.status, str(h.changed), h.release or "-", h.error))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) for i in range(5)] + [row[5]]
        lines.append("  ".join(cells).rstrip())
    counts: dict[str, int] = {}
    for h in report.hosts:
        counts[h.status] = counts.get(h.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    verdict = "Apply complete" if report.ok else f"Apply FAILED (stopped in {report.stage})"
    lines.append("")
    lines.append(f"{verdict}: {summary}; {report.changed} change(s) in {report.seconds:.1f} s.")
    return "\n".join(lines) + "\n"
