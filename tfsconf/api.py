"""The Python API: one function (or a prepare/run pair, where the command asks before it
acts) per command, which the CLI calls and then renders; tests call them in-process.

Nothing here prints or keeps state between calls: progress of a run on the hosts goes to
the `progress` callback the caller passes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

# saved plans and the state they came from, served from here (the CLI calls api.*)
from tfsconf.plan.saved import (
    check_plan_fresh,
    load_saved_plans,
    source_of,
    state_source,
)

__all__ = [
    "DEFAULT_FORKS",
    "REPORT_SCHEMA_VERSION",
    "CompileResult",
    "LiveContext",
    "PreparedApply",
    "PreparedRollback",
    "apply",
    "check_plan_fresh",
    "compile_environment",
    "json_schema",
    "live_context",
    "load_saved_plans",
    "plan_environment",
    "plan_live",
    "prepare_apply",
    "prepare_rollback",
    "report_json",
    "rollback",
    "source_of",
    "state_source",
    "status",
    "validate",
]

if TYPE_CHECKING:  # imported where used: `warmup` commands need no pydantic, validate no protobuf
    from tfsconf.compile import Bundle, Staleness
    from tfsconf.validate.load import LoadedEnvironment


def validate(spec: Path | str, *, root: Path | str | None = None) -> LoadedEnvironment:
    """Validate an environment file; raises SpecError listing every problem. Files the spec
    names must lie under `root` (default: the spec's directory)."""
    from tfsconf.validate.load import load_environment

    return load_environment(spec, root=root)


@dataclass(frozen=True, slots=True)
class CompileResult:
    loaded: LoadedEnvironment
    bundle: Bundle
    out: Path
    staleness: Staleness | None
    """Set by a --check run: how `out` differs from what the spec compiles to."""


def compile_environment(
    spec: Path | str, out: Path | str, *, check: bool = False, root: Path | str | None = None
) -> CompileResult:
    """Compile a spec into `out` (swapped in whole), or with check=True only compare."""
    from tfsconf.compile import build_bundle, check_bundle, write_bundle
    from tfsconf.validate.load import load_environment

    loaded = load_environment(spec, root=root)
    bundle = build_bundle(loaded.resolved)
    out_path = Path(out)
    if check:
        return CompileResult(loaded, bundle, out_path, check_bundle(bundle, out_path))
    write_bundle(bundle, out_path)
    return CompileResult(loaded, bundle, out_path, None)


def json_schema() -> str:
    """JSON Schema of the environment spec, for editors (yaml-language-server)."""
    from tfsconf.spec.json_schema import environment_schema

    return json.dumps(environment_schema(), indent=2, sort_keys=True) + "\n"


if TYPE_CHECKING:
    from tfsconf.apply.limit import Limit
    from tfsconf.apply.lock import BreakMode
    from tfsconf.apply.record import LiveSource
    from tfsconf.apply.report import ApplyReport
    from tfsconf.apply.work import Options
    from tfsconf.plan.model import Plan
    from tfsconf.plan.state import StateSource


def plan_environment(spec: Path | str, source: StateSource) -> Plan:
    """Compile `spec` in memory and plan the change from the state `source` yields."""
    from tfsconf.plan.planner import make_plan
    from tfsconf.plan.saved import desired_state

    loaded, desired = desired_state(spec, str(spec))
    current = source.load()
    return make_plan(current, desired, loaded.resolved, spec=str(spec))


# --- apply, status, rollback -------------------------------------------------------------

DEFAULT_FORKS: int | None = None
"""Hosts Ansible works on at once unless told otherwise: None is one per host of the run,
at most 50 (tfsconf.apply.ansible.MAX_FORKS)."""
REPORT_SCHEMA_VERSION = 1
"""Of the JSON documents apply, rollback and status print."""


@dataclass(slots=True)
class LiveContext:
    """A spec compiled in memory, with the inventory and live source of its hosts (only the
    hosts of `limit`, when given)."""

    spec: Path
    loaded: LoadedEnvironment
    bundle: Bundle
    inventory: dict[str, object]
    source: LiveSource
    limit: Limit | None = None
    forks: int | None = DEFAULT_FORKS


def live_context(
    spec: Path | str,
    *,
    host_vars: Path | str | None = None,
    limit: str | None = None,
    forks: int | None = DEFAULT_FORKS,
) -> LiveContext:
    """Load and compile `spec` for work on its hosts. `limit` is an Ansible host pattern
    (`--limit`): the environment is cut down to the hosts it selects, so nothing outside
    it is read, locked or changed."""
    from tfsconf.apply.inventory import build_inventory, load_host_vars
    from tfsconf.apply.limit import limit_environment, resolve_limit
    from tfsconf.apply.record import LiveSource
    from tfsconf.compile import build_bundle
    from tfsconf.validate.load import load_environment

    loaded = load_environment(spec)
    env = loaded.resolved
    chosen = resolve_limit(limit, env) if limit is not None else None
    if chosen is not None:
        env = limit_environment(env, chosen)
        loaded = replace(loaded, resolved=env)
    bundle = build_bundle(env)
    variables = load_host_vars(Path(host_vars) if host_vars is not None else None, env)
    inventory = build_inventory(env, variables)
    source = LiveSource(Path(spec), env, inventory, forks=forks)
    return LiveContext(Path(spec), loaded, bundle, inventory, source, chosen, forks)


def plan_live(context: LiveContext, shown: str) -> Plan:
    """Plan the spec against the hosts' last-applied records (read through Ansible)."""
    from tfsconf.plan.planner import make_plan
    from tfsconf.plan.state import StateOrigin, state_from_bundle

    current = context.source.load()
    desired = state_from_bundle(context.bundle.files, StateOrigin("none"), shown)
    return make_plan(current, desired, context.loaded.resolved, spec=shown)


@dataclass(frozen=True, slots=True)
class PreparedApply:
    """What apply will do, for the caller to show and confirm before `apply` runs it."""

    context: LiveContext
    plan: Plan
    repairs: dict[str, Any]
    """Hosts the plan leaves alone that differ from their records (hand edits)."""
    saved: bool
    """The plan came from a file saved by `plan --live --out`."""

    @property
    def has_work(self) -> bool:
        return self.plan.has_changes or bool(self.repairs)


def prepare_apply(
    target: Path | str,
    *,
    host_vars: Path | str | None = None,
    limit: str | None = None,
    forks: int | None = DEFAULT_FORKS,
) -> PreparedApply:
    """Plan `target` (a spec) against the hosts, or load `target` (a .json plan saved by
    `plan --live --out`) and check it is still fresh."""
    from tfsconf.errors import UserError

    target = Path(target)
    if target.suffix == ".json":
        if limit is not None:
            raise UserError(
                "--limit does not apply to a saved plan (it was made for every host)",
                hint="apply the spec with --limit instead",
            )
        plans, workdir = load_saved_plans(target)
        if len(plans) != 1:
            raise UserError(f"{target}: apply takes a plan of one environment")
        plan = plans[0]
        if plan.state.kind != "live":
            raise UserError(
                f"{target} was planned against {plan.state.describe()}, not the hosts: "
                "apply needs a plan made with `tfsconf plan --live`"
            )
        spec = Path(plan.spec) if workdir is None else workdir / plan.spec
        context = live_context(spec, host_vars=host_vars, forks=forks)
        check_plan_fresh(plan, workdir=workdir, current=context.source.load())
    else:
        context = live_context(target, host_vars=host_vars, limit=limit, forks=forks)
        plan = plan_live(context, str(target))
    return PreparedApply(context, plan, live_repairs(context, plan), saved=target.suffix == ".json")


def live_repairs(context: LiveContext, plan: Plan) -> dict[str, Any]:
    """host -> drifts, for the hosts `plan` leaves alone that differ from their records
    (hand-edited files, a server not serving what the record says): what apply repairs.
    `plan --live` shows them too."""
    from tfsconf.apply.drift import find_repairs

    return find_repairs(
        context.loaded.resolved,
        context.source.records,
        context.source.on_host,
        skip={hp.name for hp in plan.hosts if hp.change != "remove"},
        inventory=context.inventory,
    )


def apply(
    prepared: PreparedApply,
    *,
    options: Options | None = None,
    break_mode: BreakMode = "none",
    progress: Callable[[str, str, str], None] | None = None,
) -> ApplyReport:
    """Roll a prepared plan out (and repair hand-edited hosts). `progress` receives
    (host, task, outcome) as Ansible reports them; nothing is printed here."""
    from tfsconf.apply.rollout import apply_plan

    context = prepared.context
    return apply_plan(
        prepared.plan,
        context.loaded.resolved,
        context.bundle.files,
        context.bundle.image_refs,
        context.source.records,
        context.inventory,
        options=options,
        break_mode=break_mode,
        known_locks=context.source.locks,
        repairs=prepared.repairs,
        progress=progress,
        forks=context.forks,
    )


def status(
    spec: Path | str,
    *,
    host_vars: Path | str | None = None,
    limit: str | None = None,
    forks: int | None = DEFAULT_FORKS,
) -> dict[str, Any]:
    """Live state per host, server and model version against the spec; `in_sync` is false
    on drift or an unhealthy version."""
    from tfsconf.apply.status import collect_status

    context = live_context(spec, host_vars=host_vars, limit=limit, forks=forks)
    plan = plan_live(context, str(spec))
    result = collect_status(context, plan)
    return {"schema_version": REPORT_SCHEMA_VERSION, **result}


@dataclass(frozen=True, slots=True)
class PreparedRollback:
    """The hosts a rollback moves and to which release, for the caller to confirm."""

    context: LiveContext
    targets: dict[str, str]
    """host -> the release it goes back to."""
    skipped: dict[str, str]
    """host -> why it is left alone."""
    current: dict[str, str]
    """host -> the release it runs now (for every target)."""


def prepare_rollback(
    spec: Path | str,
    *,
    to: str | None = None,
    host_vars: Path | str | None = None,
    limit: str | None = None,
    forks: int | None = DEFAULT_FORKS,
) -> PreparedRollback:
    """Read the hosts' records and choose what each goes back to (`to`, or its previous
    release); raises when no host has anything to go back to."""
    from tfsconf.apply.rollback import choose_targets
    from tfsconf.errors import UserError

    context = live_context(spec, host_vars=host_vars, limit=limit, forks=forks)
    context.source.load()
    targets, skipped = choose_targets(context.source.records, to)
    if not targets:
        raise UserError(
            "nothing to roll back: " + "; ".join(f"{h}: {w}" for h, w in sorted(skipped.items()))
        )
    current = {
        h: rec.release
        for h, rec in context.source.records.items()
        if rec is not None and h in targets
    }
    return PreparedRollback(context, targets, skipped, current)


def rollback(
    prepared: PreparedRollback,
    *,
    break_mode: BreakMode = "none",
    progress: Callable[[str, str, str], None] | None = None,
) -> ApplyReport:
    """Put the prepared hosts back on their releases, under the host locks; refused as
    stale (nothing changed) when a host's record moved since `prepare_rollback`."""
    from tfsconf.apply.rollback import run_rollback

    context = prepared.context
    return run_rollback(
        context.loaded.resolved,
        context.inventory,
        context.source.records,
        prepared.targets,
        prepared.skipped,
        break_mode=break_mode,
        known_locks=context.source.locks,
        progress=progress,
        forks=context.forks,
    )


def report_json(report: ApplyReport) -> dict[str, Any]:
    """The JSON document of an apply or rollback report."""
    return {"schema_version": REPORT_SCHEMA_VERSION, **report.as_json()}


# --- models and warmup files ------------------------------------------------------------

_ELSEWHERE = {
    "generate_warmup": "tfsconf.warmup",
    "verify_warmup": "tfsconf.warmup",
    "check_model": "tfsconf.modelcheck",
}
"""Functions of the model and warmup commands, served from here too (imported on first
use: they need protobuf, and replaying warmup records needs TensorFlow)."""


def __getattr__(name: str) -> Any:
    if name in _ELSEWHERE:
        import importlib

        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
