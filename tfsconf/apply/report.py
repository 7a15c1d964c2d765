"""The report of an apply or rollback: per host what happened, and where the run ended; as
JSON and as the table the CLI prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tfsconf.apply.ansible import RunResult
    from tfsconf.apply.lock import HostLocks, LockRefused

HostStatus = str
"""applied | rolled-back | failed | untouched (not reached) | unchanged (empty plan) |
preflight-failed | locked (another run holds its lock: nothing was changed anywhere)"""


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
    """Where the apply ended: lock, preflight, rollout, interrupted, aborted or done."""
    seconds: float = 0.0
    interrupted: str = ""
    """The signal that stopped the run (SIGINT, SIGTERM), if one did."""
    left_behind: list[str] = field(default_factory=list)
    """What the run leaves for the operator to look at: an aborted run's hosts in the middle
    of a task and its locks; a lock the heartbeat lost while the run went on."""

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(
            h.status in ("applied", "unchanged") for h in self.hosts
        )

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
            "interrupted": self.interrupted,
            "left_behind": list(self.left_behind),
        }


def render_report(report: ApplyReport) -> str:
    """The report as a table; an error several hosts share is written out once, on the
    first of them, and the others point at it."""
    rows = [("host", "group", "status", "changed", "release", "error")]
    first_with: dict[str, str] = {}
    for h in sorted(report.hosts, key=lambda h: (h.group, h.host)):
        error = h.error
        if error and error in first_with:
            error = f"(same error as {first_with[error]})"
        elif error:
            first_with[error] = h.host
        rows.append((h.host, h.group, h.status, str(h.changed), h.release or "-", error))
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
    if report.interrupted:
        verdict = f"Apply INTERRUPTED by {report.interrupted} (stopped in {report.stage})"
    lines.append("")
    lines.extend(f"left behind: {line}" for line in report.left_behind)
    lines.append(f"{verdict}: {summary}; {report.changed} change(s) in {report.seconds:.1f} s.")
    return "\n".join(lines) + "\n"


def mark_preflight_failed(result: RunResult, reports: Mapping[str, HostReport]) -> None:
    """The hosts the preflight play failed (any_errors_fatal: the run ended there)."""
    for name in result.failed_hosts():
        failure = result.first_failure(name)
        reports[name].status = "preflight-failed"
        reports[name].error = ("unreachable: " if failure and failure.unreachable else "") + (
            failure.message if failure else "failed"
        )


def mark_locked(report: ApplyReport, refused: LockRefused) -> None:
    """The report of a run that could not take every lock (nothing was changed)."""
    report.stage = "lock"
    for host in report.hosts:
        if host.host == refused.host:
            host.status, host.error = "locked", refused.reason


def note_broken_locks(locks: HostLocks, progress: Callable[[str, str, str], None] | None) -> None:
    """Tell the caller's progress display which locks this run took over."""
    from tfsconf.apply.lock import describe_lock

    for host, lock in sorted(locks.broken.items()):
        if progress is not None:
            progress(host, "lock", f"took over the lock of {describe_lock(lock)}")


def mark_probe_failed(
    probed: Mapping[str, list[str]],
    reports: Mapping[str, HostReport],
    progress: Callable[[str, str, str], None] | None,
) -> None:
    """The hosts whose preflight, run with their lock, found problems; shown as the
    preflight play's failures would be."""
    if progress is not None:
        progress("", "preflight", "play")
    for name, problems in sorted(probed.items()):
        if problems:
            reports[name].status = "preflight-failed"
            reports[name].error = "; ".join(problems)
            if progress is not None:
                progress(name, "probe the host (with its lock)", f"failed: {reports[name].error}")
