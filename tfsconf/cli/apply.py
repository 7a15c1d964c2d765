"""`tfsconf apply` and `tfsconf status`.

apply: exit 0 when every changed host applied (or nothing had to change), 1 on any failure
(a host rolled back, preflight refused, a stale plan, an error). status: 0 in sync and
healthy, 2 drift (the spec and the hosts differ, or a version is not AVAILABLE), 1 error.
Progress goes to stderr; stdout carries the report (text table or --format json).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from tfsconf.cli.errors import EXIT_CHANGES, EXIT_ERROR, EXIT_OK, handle_errors

if TYPE_CHECKING:
    from tfsconf.apply.record import HostRecord
    from tfsconf.contracts import HostWork

HostVarsOpt = Annotated[
    Path | None,
    typer.Option(
        "--host-vars",
        metavar="FILE",
        help="YAML of host -> Ansible variables ('all' for every host): interpreter paths, "
        "bastions; the test bed's per-host root.",
    ),
]
BreakLockOpt = Annotated[
    bool,
    typer.Option(
        "--break-lock",
        help="Take over host locks left by an apply that died (refused while its owner is "
        "alive: its process runs on this machine, or it renewed its lease recently).",
    ),
]
ForceBreakLockOpt = Annotated[
    bool,
    typer.Option(
        "--force-break-lock",
        help="Take over host locks even when their owner looks alive (only when you know "
        "that apply is gone: its controller is unreachable, say).",
    ),
]


def _break_mode(break_lock: bool, force: bool) -> Literal["none", "dead", "force"]:
    return "force" if force else ("dead" if break_lock else "none")


ReportFormat = Annotated[
    Literal["text", "json"], typer.Option("--format", help="Report format: text or json.")
]


def _emit_report(report: Any, output_format: str) -> int:
    """The closing report on stdout (text table or json); the exit code it means."""
    from tfsconf.apply.rollout import render_report

    if output_format == "json":
        print(json.dumps(report.as_json(), indent=2, sort_keys=True))
    else:
        sys.stdout.write(render_report(report))
    return EXIT_OK if report.ok else EXIT_ERROR


def _release(record: Any) -> str | None:
    return record.release if record is not None else None


def _repairs(context: Any, plan: Any) -> dict[str, Any]:
    """Hosts the plan leaves alone that differ from their records (files edited on the
    host, a server not serving what the record says); shown on stderr as plan lines."""
    from tfsconf.apply.drift import find_repairs, render_repairs

    repairs = find_repairs(
        context.loaded.resolved,
        context.source.records,
        context.source.on_host,
        skip={hp.name for hp in plan.hosts if hp.change != "remove"},
    )
    sys.stderr.write(render_repairs(repairs))
    return repairs


def _confirm(prompt: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(prompt, end=" ", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def apply(
    target: Annotated[
        Path,
        typer.Argument(
            metavar="SPEC|PLAN", help="An environment spec, or a plan saved by plan --live --out."
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    host_vars: HostVarsOpt = None,
    output_format: ReportFormat = "text",
    break_lock: BreakLockOpt = False,
    force_break_lock: ForceBreakLockOpt = False,
    health_timeout: Annotated[
        float | None,
        typer.Option("--health-timeout", help="Seconds; overrides rollout.health_timeout_seconds."),
    ] = None,
    bwlimit: Annotated[
        int, typer.Option("--bwlimit", help="Model sync bandwidth limit, bytes/s (0: none).")
    ] = 0,
    retries: Annotated[int, typer.Option("--retries", help="Model sync retries per file.")] = 3,
) -> None:
    """Plan against the hosts' live state, show the plan, ask, then roll it out."""

    @handle_errors
    def run() -> int:
        from tfsconf import api
        from tfsconf.apply.rollout import apply_plan
        from tfsconf.apply.work import Options
        from tfsconf.errors import UserError
        from tfsconf.plan.render import render_text

        options = Options(health_timeout=health_timeout, sync_retries=retries, sync_bwlimit=bwlimit)
        if target.suffix == ".json":
            plans, workdir = api.load_saved_plans(target)
            if len(plans) != 1:
                raise UserError(f"{target}: apply takes a plan of one environment")
            plan = plans[0]
            if plan.state.kind != "live":
                raise UserError(
                    f"{target} was planned against {plan.state.describe()}, not the hosts: "
                    "apply needs a plan made with `tfsconf plan --live`"
                )
            spec = Path(plan.spec) if workdir is None else workdir / plan.spec
            context = api.live_context(spec, host_vars=host_vars)
            current = context.source.load()
            api.check_plan_fresh(plan, workdir=workdir, current=current)
            repairs = _repairs(context, plan)
            if not yes:
                raise UserError("applying a saved plan needs --yes")
        else:
            context = api.live_context(target, host_vars=host_vars)
            plan = api.plan_live(context, str(target))
            sys.stderr.write(render_text([plan], colour=False, diffs=True))
            repairs = _repairs(context, plan)
            if (plan.has_changes or repairs) and not yes and not _confirm("Apply this plan? [y/N]"):
                raise UserError("not applied (answer y, or pass --yes)")
        report = apply_plan(
            plan,
            context.loaded.resolved,
            context.bundle.files,
            context.bundle.image_refs,
            context.source.records,
            context.inventory,
            options=options,
            break_mode=_break_mode(break_lock, force_break_lock),
            known_locks=context.source.locks,
            repairs=repairs,
        )
        return _emit_report(report, output_format)

    raise typer.Exit(run())


def status(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="Environment spec.")],
    host_vars: HostVarsOpt = None,
    output_format: ReportFormat = "text",
) -> None:
    """Live state per host, server and model version, against the spec (drift)."""

    @handle_errors
    def run() -> int:
        from tfsconf import api
        from tfsconf.apply.status import collect_status, render_status

        context = api.live_context(spec, host_vars=host_vars)
        plan = api.plan_live(context, str(spec))
        result: dict[str, Any] = collect_status(context, plan)
        if output_format == "json":
            print(json.dumps(result, indent=2, sort_keys=True))
        else:
            sys.stdout.write(render_status(result))
        return EXIT_OK if result["in_sync"] else EXIT_CHANGES

    raise typer.Exit(run())


def rollback(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="Environment spec.")],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="RELEASE",
            help="Release id to return to (as status shows it); default: each host's "
            "previous release.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Roll back without asking.")] = False,
    host_vars: HostVarsOpt = None,
    output_format: ReportFormat = "text",
    break_lock: BreakLockOpt = False,
    force_break_lock: ForceBreakLockOpt = False,
) -> None:
    """Put hosts back on a release they ran before (default: the previous one)."""

    @handle_errors
    def run() -> int:
        import time
        import uuid

        from tfsconf import api
        from tfsconf.apply.rollback import choose_targets, fetch_release_records, rollback_work
        from tfsconf.apply.rollout import ApplyReport, HostReport, locked_rollout
        from tfsconf.errors import UserError

        started = time.monotonic()
        context = api.live_context(spec, host_vars=host_vars)
        context.source.load()
        records = context.source.records
        env = context.loaded.resolved
        targets, skipped = choose_targets(records, to)
        for host, why in sorted(skipped.items()):
            print(f"{host}: skipped ({why})", file=sys.stderr)
        if not targets:
            raise UserError(
                "nothing to roll back: "
                + "; ".join(f"{h}: {w}" for h, w in sorted(skipped.items()))
            )
        # choose_targets only picks hosts that have a record
        applied = {h: rec for h, rec in records.items() if rec is not None}
        for host, release in sorted(targets.items()):
            print(f"{host}: {applied[host].release} -> {release}", file=sys.stderr)
        if not yes and not _confirm("Roll back these hosts? [y/N]"):
            raise UserError("not rolled back (answer y, or pass --yes)")
        report = ApplyReport(env.name, uuid.uuid4().hex[:12])
        groups = {h.name: h.group for h in env.hosts}
        for host in sorted(skipped):
            record = records.get(host)
            report.hosts.append(
                HostReport(host, groups[host], "unchanged", record.release if record else None)
            )

        def prepare(fresh: Mapping[str, HostRecord | None]) -> dict[str, HostWork]:
            moved = sorted(h for h in records if _release(fresh.get(h)) != _release(records[h]))
            if moved:
                raise UserError(
                    "stale rollback: " + ", ".join(moved) + " changed since the rollback was "
                    "shown; nothing was changed",
                    hint="run rollback again and review it",
                )
            fetched = fetch_release_records(context.inventory, env.config_root, targets)
            return {h: rollback_work(env, applied[h], fetched[h]) for h in sorted(targets)}

        locked_rollout(
            env,
            context.inventory,
            report,
            prepare,
            break_mode=_break_mode(break_lock, force_break_lock),
            known_locks=context.source.locks,
        )
        report.seconds = time.monotonic() - started
        return _emit_report(report, output_format)

    raise typer.Exit(run())
