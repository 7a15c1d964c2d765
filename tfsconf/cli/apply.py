"""`tfsconf apply`, `status` and `rollback`: each asks the API to prepare, shows what it will
do, asks, runs it, renders the report.

apply and rollback: exit 0 when every changed host applied (or nothing had to change), 1 on
any failure (a host rolled back, preflight refused, a stale plan, an error). status: 0 in
sync and healthy, 2 drift (the spec and the hosts differ, or a version is not AVAILABLE), 1
error. Progress goes to stderr; stdout carries the report (text table or --format json).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from tfsconf.cli.errors import ExitCode, handle_errors
from tfsconf.cli.options import (
    DEFAULT_FORKS,
    BreakLockOpt,
    ForceBreakLockOpt,
    ForksOpt,
    FormatOpt,
    HostVarsOpt,
    LimitOpt,
    SpecArg,
    YesOpt,
)


def _break_mode(break_lock: bool, force: bool) -> Literal["none", "dead", "force"]:
    return "force" if force else ("dead" if break_lock else "none")


def _emit_report(report: Any, output_format: str) -> ExitCode:
    """The closing report on stdout (text table or json); the exit code it means. What an
    aborted run left behind also goes to stderr, where the progress was."""
    from tfsconf import api
    from tfsconf.apply.report import render_report

    for line in report.left_behind:
        print(f"left behind: {line}", file=sys.stderr)
    if output_format == "json":
        print(json.dumps(api.report_json(report), indent=2, sort_keys=True))
    else:
        sys.stdout.write(render_report(report))
    return ExitCode.OK if report.ok else ExitCode.ERROR


def _note_limit(context: Any) -> None:
    if context.limit is None:
        return
    for term in context.limit.unmatched:
        print(f"warning: --limit: '{term}' matches no host or group", file=sys.stderr)
    hosts = sorted(context.limit.hosts)
    print(f"limited to {len(hosts)} host(s): {', '.join(hosts)}", file=sys.stderr)


def _progress() -> Any:
    """The live display on stderr (plain lines off a terminal); closed with `with`."""
    from tfsconf.apply.display import Progress

    return Progress(sys.stderr)


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
    yes: YesOpt = False,
    limit: LimitOpt = None,
    forks: ForksOpt = DEFAULT_FORKS,
    host_vars: HostVarsOpt = None,
    output_format: FormatOpt = "text",
    break_lock: BreakLockOpt = False,
    force_break_lock: ForceBreakLockOpt = False,
    health_timeout: Annotated[
        float | None,
        typer.Option(
            "--health-timeout",
            metavar="SECONDS",
            help="Overrides rollout.health_timeout_seconds.",
        ),
    ] = None,
    bwlimit: Annotated[
        int,
        typer.Option(
            "--bwlimit", metavar="BYTES_PER_S", min=0, help="Model sync bandwidth limit (0: none)."
        ),
    ] = 0,
    retries: Annotated[
        int, typer.Option("--retries", metavar="N", min=0, help="Model sync retries per file.")
    ] = 3,
) -> None:
    """Plan against the hosts' live state, show the plan, ask, then roll it out.

    \b
    Examples:
      tfsconf apply environments/production.yaml
      tfsconf apply environments/production.yaml --limit 'rank-a*,!rank-a9' --forks 30
      tfsconf plan environments/production.yaml --live --out plan.json
      tfsconf apply plan.json --yes
    """

    # long: most lines are the typer option declarations; the body is a short run().
    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api
        from tfsconf.apply.drift import render_repairs
        from tfsconf.apply.work import Options
        from tfsconf.errors import UserError
        from tfsconf.plan.render import render_text

        prepared = api.prepare_apply(target, host_vars=host_vars, limit=limit, forks=forks)
        _note_limit(prepared.context)
        if not prepared.saved:
            sys.stderr.write(render_text([prepared.plan], colour=False, diffs=True))
        sys.stderr.write(render_repairs(prepared.repairs))
        if prepared.saved and not yes:
            raise UserError("applying a saved plan needs --yes")
        if prepared.has_work and not yes and not _confirm("Apply this plan? [y/N]"):
            raise UserError("not applied (answer y, or pass --yes)")
        options = Options(health_timeout=health_timeout, sync_retries=retries, sync_bwlimit=bwlimit)
        with _progress() as progress:
            report = api.apply(
                prepared,
                options=options,
                break_mode=_break_mode(break_lock, force_break_lock),
                progress=progress,
            )
        return _emit_report(report, output_format)

    raise typer.Exit(run())


def status(
    spec: SpecArg,
    limit: LimitOpt = None,
    forks: ForksOpt = DEFAULT_FORKS,
    host_vars: HostVarsOpt = None,
    output_format: FormatOpt = "text",
) -> None:
    """Live state per host, server and model version, against the spec (drift).

    \b
    Example:
      tfsconf status environments/production.yaml --limit rank-a --format json
    """

    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api
        from tfsconf.apply.status import render_status

        result = api.status(spec, host_vars=host_vars, limit=limit, forks=forks)
        if output_format == "json":
            print(json.dumps(result, indent=2, sort_keys=True))
        else:
            sys.stdout.write(render_status(result))
        return ExitCode.OK if result["in_sync"] else ExitCode.CHANGES

    raise typer.Exit(run())


def rollback(
    spec: SpecArg,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            metavar="RELEASE",
            help="Release id to return to (as status shows it); default: each host's "
            "previous release.",
        ),
    ] = None,
    yes: YesOpt = False,
    limit: LimitOpt = None,
    forks: ForksOpt = DEFAULT_FORKS,
    host_vars: HostVarsOpt = None,
    output_format: FormatOpt = "text",
    break_lock: BreakLockOpt = False,
    force_break_lock: ForceBreakLockOpt = False,
) -> None:
    """Put hosts back on a release they ran before (default: the previous one).

    \b
    Example:
      tfsconf rollback environments/production.yaml --limit rank-a3 --to RELEASE
    """

    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api
        from tfsconf.errors import UserError

        prepared = api.prepare_rollback(spec, to=to, host_vars=host_vars, limit=limit, forks=forks)
        _note_limit(prepared.context)
        for host, why in sorted(prepared.skipped.items()):
            print(f"{host}: skipped ({why})", file=sys.stderr)
        for host, release in sorted(prepared.targets.items()):
            print(f"{host}: {prepared.current[host]} -> {release}", file=sys.stderr)
        if not yes and not _confirm("Roll back these hosts? [y/N]"):
            raise UserError("not rolled back (answer y, or pass --yes)")
        with _progress() as progress:
            report = api.rollback(
                prepared, break_mode=_break_mode(break_lock, force_break_lock), progress=progress
            )
        return _emit_report(report, output_format)

    raise typer.Exit(run())
