"""`tfsconf plan` and `tfsconf show`: exit 0 no changes, 2 changes, 1 any error.

stdout carries the plan and nothing else; warnings and notes go to stderr.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tfsconf.cli.errors import ExitCode, handle_errors
from tfsconf.cli.options import (
    GITHUB_COMMENT_LIMIT,
    ColourOpt,
    CommentLimitOpt,
    DiffOpt,
    FullPlanOpt,
    HostVarsOpt,
    PlanFormat,
    SpecsArg,
)


def _colour(choice: str) -> bool:
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()


def _render(
    plans: list[object],
    fmt: str,
    colour: str,
    diffs: bool,
    comment_limit: int = GITHUB_COMMENT_LIMIT,
    full_plan: Path | None = None,
) -> str:
    from tfsconf.atomic import write_atomically
    from tfsconf.plan import render
    from tfsconf.plan.model import Plan

    typed = [p for p in plans if isinstance(p, Plan)]
    if fmt == "json":
        return render.render_json(typed)
    if fmt == "markdown":
        if full_plan is not None:
            write_atomically(full_plan, [render.render_markdown(typed).encode()])
        return render.render_markdown(
            typed,
            max_chars=comment_limit or None,
            full_plan=str(full_plan) if full_plan is not None else None,
        )
    return render.render_text(typed, colour=_colour(colour), diffs=diffs)


def _exit(code: ExitCode) -> typer.Exit:
    # plan's contract is 0 / 2 / 1: a bug is reported with its traceback, but exits 1 too
    return typer.Exit(ExitCode.ERROR if code == ExitCode.INTERNAL else code)


def plan(
    specs: SpecsArg,
    base: Annotated[
        str | None,
        typer.Option(
            "--base", metavar="GIT_REF", help="Current state: the same spec at this git ref."
        ),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", metavar="DIR", help="Current state: a bundle compiled before."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Current state: the hosts' last-applied records (Ansible)."),
    ] = False,
    host_vars: HostVarsOpt = None,
    output_format: PlanFormat = "text",
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Also save the plan as JSON here (for apply)."),
    ] = None,
    colour: ColourOpt = "auto",
    diffs: DiffOpt = True,
    comment_limit: CommentLimitOpt = GITHUB_COMMENT_LIMIT,
    full_plan: FullPlanOpt = None,
) -> None:
    """Show what a change to an environment does to each host and server, and what it costs.

    Without --base or --state everything is new. Exit 0: no changes; 2: changes (with --live,
    hosts that differ from their records count: apply repairs them); 1: error.

    \b
    Examples:
      tfsconf plan environments/production.yaml --base origin/main
      tfsconf plan environments/*.yaml --base origin/main --format markdown
      tfsconf plan environments/production.yaml --live --out plan.json
    """

    # long: most lines are the typer option declarations; the body is a short run().
    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api
        from tfsconf.atomic import write_atomically
        from tfsconf.errors import UserError
        from tfsconf.plan.render import render_json

        if state is not None and len(specs) > 1:
            raise UserError("--state holds one environment: give one SPEC with it")
        if live and (base is not None or state is not None):
            raise UserError("give one of --base, --state or --live")
        plans = []
        repairs = ""  # hosts that differ from their records: apply repairs them too
        for spec in specs:
            if live:
                context = api.live_context(spec, host_vars=host_vars)
                plans.append(api.plan_live(context, str(spec)))
                repairs += _repairs_text(api.live_repairs(context, plans[-1]))
                continue
            source = api.state_source(spec, base=base, state_dir=state)
            plans.append(api.plan_environment(spec, source))
        text = _render(list(plans), output_format, colour, diffs, comment_limit, full_plan)
        if repairs and output_format == "json":
            sys.stderr.write(repairs)  # stdout stays the plan document
        elif repairs:
            text += f"\n```\n{repairs}```\n" if output_format == "markdown" else repairs
        if out is not None:
            saved = render_json(plans, workdir=str(Path.cwd()))
            write_atomically(out, [saved.encode()])
            print(f"plan saved to {out}", file=sys.stderr)
        sys.stdout.write(text)
        sys.stdout.flush()
        pending = repairs or any(p.has_changes for p in plans)
        return ExitCode.CHANGES if pending else ExitCode.OK

    raise _exit(run())


def _repairs_text(repairs: dict[str, Any]) -> str:
    from tfsconf.apply.drift import render_repairs

    return render_repairs(repairs)


def show(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="A plan saved by plan --out.")],
    output_format: PlanFormat = "text",
    colour: ColourOpt = "auto",
    diffs: DiffOpt = True,
    comment_limit: CommentLimitOpt = GITHUB_COMMENT_LIMIT,
    full_plan: FullPlanOpt = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check/--no-check",
            help="Refuse (exit 1) when the plan is stale: its state or its spec changed since.",
        ),
    ] = True,
) -> None:
    """Render a saved plan; by default first check it is not stale. Exit 0, 2 or 1 as plan."""

    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api

        plans, workdir = api.load_saved_plans(plan_file)
        if check:
            for saved in plans:
                api.check_plan_fresh(saved, workdir=workdir)
        text = _render(list(plans), output_format, colour, diffs, comment_limit, full_plan)
        sys.stdout.write(text)
        sys.stdout.flush()
        return ExitCode.CHANGES if any(p.has_changes for p in plans) else ExitCode.OK

    raise _exit(run())
