"""apply: preflight on every changed host, then each host group in rollout steps, then the
host locks released; the report says per host what happened.

Ansible decides the steps inside a group (`serial`, `max_fail_percentage`); groups run one
after another, and a group with a failed host stops the apply (later groups untouched).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tfsconf.apply import ansible
from tfsconf.apply.drift import Drift, repair_work
from tfsconf.apply.interrupt import Aborted, Interrupt
from tfsconf.apply.lock import BreakMode, HostLocks, LockRefused
from tfsconf.apply.optional import unused_tags
from tfsconf.apply.record import HostRecord, check_state_unchanged
from tfsconf.apply.report import (
    ApplyReport,
    HostReport,
    mark_locked,
    mark_preflight_failed,
    mark_probe_failed,
    note_broken_locks,
)
from tfsconf.apply.work import Options, WorkBuilder, scratch_dir
from tfsconf.contracts import HostWork, probe_of, staging_of
from tfsconf.errors import UserError
from tfsconf.plan.model import Plan
from tfsconf.resolve import model as r


def apply_plan(
    plan: Plan,
    env: r.Environment,
    bundle_files: Mapping[str, bytes],
    image_refs: Mapping[str, str],
    records: Mapping[str, HostRecord | None],
    inventory: Mapping[str, Any],
    *,
    options: Options | None = None,
    break_mode: BreakMode = "none",
    known_locks: Mapping[str, Mapping[str, Any]] | None = None,
    repairs: Mapping[str, list[Drift]] | None = None,
    progress: Callable[[str, str, str], None] | None = None,
    forks: int | None = ansible.DEFAULT_FORKS,
) -> ApplyReport:
    """Lock every host, check that the live state is still the one `plan` was made from
    (else "stale plan", nothing changed), then roll the plan out, and the `repairs` of
    hosts that differ from their records, and release the locks."""
    # long: the steps of an apply in order (report, work closure, locked rollout, scratch
    #   cleanup); the `prepare` closure shares this frame's state with locked_rollout.
    started = time.monotonic()
    options = options or Options()
    run_id = uuid.uuid4().hex[:12]
    report = ApplyReport(env.name, run_id)
    groups = {h.name: h.group for h in env.hosts}
    targets = [hp for hp in plan.hosts if hp.change != "remove" and hp.name in groups]
    changing = {hp.name for hp in targets}
    repairs = {h: found for h, found in (repairs or {}).items() if h not in changing}
    for host in env.hosts:
        if host.name not in changing and host.name not in repairs:
            record = records.get(host.name)
            report.hosts.append(
                HostReport(host.name, host.group, "unchanged", record.release if record else None)
            )
    if not targets and not repairs:
        report.seconds = time.monotonic() - started
        return report
    scratch = scratch_dir()
    secrets: dict[str, str] = {}

    def prepare(fresh: Mapping[str, HostRecord | None]) -> dict[str, HostWork]:
        check_state_unchanged(plan, env, fresh)
        builder = WorkBuilder(plan, env, bundle_files, image_refs, fresh, options, scratch)
        work = {hp.name: builder.build(hp) for hp in targets}
        for host, found in sorted(repairs.items()):
            record = fresh.get(host)
            if record is not None:
                work[host] = repair_work(env, record, found, health_timeout=options.health_timeout)
        secrets.update(builder.secrets)
        return work

    try:
        locked_rollout(
            env,
            inventory,
            report,
            prepare,
            break_mode=break_mode,
            known_locks=known_locks,
            progress=progress,
            secrets=secrets,
            forks=forks,
            planned=records,
        )
        return report
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        report.seconds = time.monotonic() - started


def locked_rollout(
    env: r.Environment,
    inventory: Mapping[str, Any],
    report: ApplyReport,
    prepare: Callable[[Mapping[str, HostRecord | None]], Mapping[str, HostWork]],
    *,
    break_mode: BreakMode = "none",
    known_locks: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str, str, str], None] | None = None,
    forks: int | None = ansible.DEFAULT_FORKS,
    secrets: Mapping[str, str] | None = None,
    planned: Mapping[str, HostRecord | None] | None = None,
) -> None:
    """Lock every host, let `prepare` check the records read under the locks and say each
    host's work, roll it out, release the locks; SIGINT/SIGTERM stop it cleanly (a second
    one aborts). Apply and rollback both run through here. Fills `report`.

    `planned`: the records the caller's plan was made from. The work is then prepared
    from them before the locks are taken, and the lock probes the hosts that will change
    in the same call (their preflight). When the records read under the locks are those,
    that work and those probes stand, and the rollout runs no preflight play of its own;
    otherwise the work is prepared again from what the locks read (prepare's staleness
    check then decides) and the preflight play runs as before."""
    # long: lock, prepare, roll out and release under one signal guard and one
    #   try/except/finally; split up, the lock and interrupt state would cross helpers.
    groups = {h.name: h.group for h in env.hosts}
    interrupt = Interrupt()
    guard = (
        interrupt.installed()
        if threading.current_thread() is threading.main_thread()
        else contextlib.nullcontext(interrupt)
    )
    locks = HostLocks(
        env,
        inventory,
        report.run_id,
        break_mode=break_mode,
        known_locks=known_locks,
        progress=progress,
        cancel=interrupt.aborted,
        forks=forks,
    )
    aborted = False
    with guard:
        try:
            early = None
            if planned is not None:
                try:
                    early = prepare(planned)
                except UserError:  # prepared again under the locks, and raised there
                    early = None
            try:
                early_work = early or {}
                fresh = locks.acquire(
                    {h: probe_of(w) for h, w in early_work.items()},
                    {h: staging_of(w) for h, w in early_work.items()},
                )
            except LockRefused as exc:
                known = {h.host for h in report.hosts}
                report.hosts.extend(
                    HostReport(n, groups[n], "untouched") for n in sorted(groups) if n not in known
                )
                mark_locked(report, exc)
                return
            note_broken_locks(locks, progress)
            probed, staged = None, {}
            if early is not None and locks.probed is not None and dict(fresh) == planned:
                work, probed, staged = early, locks.probed, locks.staged
            else:
                work = prepare(fresh)
            if interrupt.stopping:
                report.interrupted, report.stage = interrupt.signal_name, "interrupted"
                report.hosts.extend(
                    HostReport(n, groups[n], "untouched", release=w["release"])
                    for n, w in sorted(work.items())
                )
                return
            unlocked = run_rollout(
                env,
                work,
                inventory,
                report,
                progress=progress,
                secrets=secrets,
                interrupt=interrupt,
                forks=forks,
                unlock=list(locks.held),
                probed=probed,
                staged=staged,
            )
            locks.released_by_rollout(unlocked)
        except Aborted as exc:
            aborted = True
            report.interrupted, report.stage = interrupt.signal_name, "aborted"
            for host in report.hosts:
                if host.host in exc.args[0]:
                    host.status = "aborted"
                    host.error = f"killed in the middle of: {exc.args[0][host.host]}"
            report.left_behind = [
                f"{h}: stopped in the middle of '{task}': its current link, running server "
                "and record may disagree (tfsconf status shows it)"
                for h, task in sorted(exc.args[0].items())
            ] + [
                f"the locks of run {report.run_id} stay on {', '.join(locks.held)}: "
                "`tfsconf apply --break-lock` takes them over (this run is dead) and converges"
            ]
        finally:
            if not aborted:
                locks.release()
                report.left_behind.extend(locks.lost_notes())
        if interrupt.stopping and not aborted:
            report.interrupted = interrupt.signal_name
            if report.stage != "lock":
                report.stage = "interrupted"


def run_rollout(
    env: r.Environment,
    work: Mapping[str, HostWork],
    inventory: Mapping[str, Any],
    report: ApplyReport,
    *,
    progress: Callable[[str, str, str], None] | None = None,
    forks: int | None = ansible.DEFAULT_FORKS,
    secrets: Mapping[str, str] | None = None,
    interrupt: Interrupt | None = None,
    unlock: Sequence[str] = (),
    probed: Mapping[str, list[str]] | None = None,
    staged: Mapping[str, bool] | None = None,
) -> list[str]:
    """Preflight every host of `work`, roll each group out in steps; fills `report` (apply
    and rollback share this: they differ only in what `work` says). The caller holds the
    host locks (HostLocks). After a first signal no new group starts; a second raises
    Aborted with the hosts in flight (host -> last task seen). `secrets` (source credentials)
    go to the rollout playbook only, apart from the work. The last group's run releases
    the locks of the `unlock` hosts it reaches; returns those hosts. `probed` (host -> its
    preflight problems, found by the lock) replaces the preflight play; `staged` (host ->
    whether it changed) names the hosts whose release the lock staged already."""
    # long: preflight then each group in order, with the `watch` and `play` closures sharing
    #   the in-flight hosts and the report; one linear sequence that reads best whole.
    interrupt = interrupt or Interrupt()
    staged = staged or {}
    in_flight: dict[str, str] = {}

    def watch(host: str, task: str, outcome: str) -> None:
        if not host and outcome == "play" and task == "rollout":
            report.stage = "rollout"  # the preflight play of the first run is behind
        if host and report.stage == "rollout":
            in_flight[host] = task
            if task in ("report applied", "report rolled back") and outcome != "started":
                in_flight.pop(host, None)  # this host is done: no longer in flight
        if progress is not None:
            progress(host, task, outcome)

    def play(
        book: str,
        extravars: Mapping[str, Any],
        limit: list[str],
        hidden: Mapping[str, Any] | None = None,
        skip_tags: Sequence[str] = (),
    ) -> ansible.RunResult | None:
        """The playbook's result; None when it died (killed, say): then each host it was
        working on is failed with the step it was in and how the playbook ended."""
        try:
            result = ansible.run(
                book,
                inventory=inventory,
                extravars=extravars,
                limit=limit,
                progress=watch,
                cancel=interrupt.aborted,
                secrets=hidden,
                forks=forks,
                skip_tags=skip_tags,
            )
        except UserError as exc:
            if interrupt.aborting:
                raise Aborted(dict(in_flight)) from None
            if report.stage != "rollout":
                raise
            hit = {h: t for h, t in in_flight.items() if h in limit} or dict.fromkeys(
                limit, "start"
            )
            for host, task in sorted(hit.items()):
                reports[host].status = "failed"
                reports[host].error = f"{task}: {exc}"
                if progress is not None:
                    progress(host, task, f"failed: {exc}")
            return None
        if interrupt.aborting:
            raise Aborted(dict(in_flight))
        return result

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
        "tfsconf_config_root": env.config_root,
        "tfsconf_controller_python": sys.executable,
        "tfsconf_stop_file": str(interrupt.stop_file),
    }
    names = sorted(work)
    report.stage = "preflight"
    # the first group's run probes every host of `work` first (rollout.yml's preflight
    # play): a host that fails there ends that run before any host changes; the last
    # group's run releases the locks at its end (rollout.yml's unlock play)
    preflight = names
    if probed is not None:
        if any(probed.get(name) for name in names):
            report.stage = "preflight"
            mark_probe_failed(probed, reports, progress)
            return []
        preflight = []
    steps = [(group, [n for n in names if groups[n] == group.name]) for group in env.groups]
    steps = [(group, members) for group, members in steps if members]
    unlocked: list[str] = []
    for number, (group, members) in enumerate(steps, 1):
        if interrupt.stopping:
            continue
        unlocking = list(unlock) if number == len(steps) else []
        result = play(
            "rollout.yml",
            {
                **common,
                "tfsconf_work": {n: work[n] for n in sorted({*members, *preflight})},
                "tfsconf_preflight_hosts": preflight,
                "tfsconf_probes": {n: probe_of(work[n]) for n in preflight},
                "tfsconf_rollout_hosts": members,
                "tfsconf_staged_hosts": sorted(n for n in members if n in staged),
                "tfsconf_unlock_hosts": unlocking,
                "tfsconf_serial": group.rollout.step,
                "tfsconf_max_fail_percentage": group.rollout.max_fail_percentage,
            },
            sorted({*members, *preflight, *unlocking}),
            {"tfsconf_secrets": dict(secrets)} if secrets else None,
            unused_tags(work, members, staged),
        )
        if result is None:
            return []
        unlocked = sorted(h for h in unlocking if result.results.get(h, {}).get("unlocked"))
        if preflight:
            preflight = []
            if report.stage == "preflight":  # the rollout play never started
                mark_preflight_failed(result, reports)
                return unlocked
        for name in members:
            in_flight.pop(name, None)
            out = result.results.get(name, {})
            stats = result.stats.get(name)
            # the stage the lock did counts as this host's change, as the stage task would
            reports[name].changed = (stats.changed if stats else 0) + int(staged.get(name, False))
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
            return unlocked
    report.stage = "interrupted" if interrupt.stopping else "done"
    return unlocked
