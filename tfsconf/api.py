"""The Python API: one function (or a prepare/run pair, where the command asks before it
acts) per command, which the CLI calls and then renders; tests call them in-process.

Nothing here prints or keeps state between calls: progress of a run on the hosts goes to
the `progress` callback the caller passes."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    from tfsconf.apply.record import HostRecord, LiveSource
    from tfsconf.apply.rollout import ApplyReport
    from tfsconf.apply.work import Options
    from tfsconf.contracts import HostWork
    from tfsconf.plan.model import Plan
    from tfsconf.plan.state import State, StateSource


def state_source(
    spec: Path | str, *, base: str | None = None, state_dir: Path | str | None = None
) -> StateSource:
    """Where the current state comes from: a git ref, a bundle directory, or nothing."""
    from tfsconf.errors import UserError
    from tfsconf.plan.gitbase import GitBaseSource
    from tfsconf.plan.state import BundleDirSource, NoState

    if base is not None and state_dir is not None:
        raise UserError("give either --base or --state, not both")
    if base is not None:
        return GitBaseSource(Path(spec), base)
    if state_dir is not None:
        return BundleDirSource(Path(state_dir))
    return NoState()


def plan_environment(spec: Path | str, source: StateSource) -> Plan:
    """Compile `spec` in memory and plan the change from the state `source` yields."""
    from tfsconf.plan.planner import make_plan

    loaded, desired = _desired_state(spec, str(spec))
    current = source.load()
    return make_plan(current, desired, loaded.resolved, spec=str(spec))


def _desired_state(spec: Path | str, shown: str) -> tuple[LoadedEnvironment, State]:
    """A spec loaded and compiled in memory, as the state it asks for."""
    from tfsconf.compile import build_bundle
    from tfsconf.plan.state import StateOrigin, state_from_bundle
    from tfsconf.validate.load import load_environment

    loaded = load_environment(spec)
    bundle = build_bundle(loaded.resolved)
    return loaded, state_from_bundle(bundle.files, StateOrigin("none"), shown)


def _from(workdir: Path | None, path: str) -> Path:
    return Path(path) if workdir is None else workdir / path


def source_of(plan: Plan, *, workdir: Path | None = None) -> StateSource:
    """The state source a saved plan was computed from, to read it again; relative paths
    are taken from `workdir`, the directory the plan was made in."""
    from tfsconf.errors import UserError
    from tfsconf.plan.gitbase import GitBaseSource
    from tfsconf.plan.state import BundleDirSource, NoState

    kind = plan.state.kind
    if kind == "base":
        return GitBaseSource(_from(workdir, plan.spec), plan.state.ref)
    if kind == "state":
        return BundleDirSource(_from(workdir, plan.state.ref))
    if kind == "none":
        return NoState(plan.state.detail)
    raise UserError(f"a plan against {kind} state can only be checked by apply")


def check_plan_fresh(
    plan: Plan, *, workdir: Path | None = None, current: State | None = None
) -> None:
    """Refuse a saved plan when the state it was computed from, or what its spec compiles
    to, has changed since (a stale plan). `current` is that state read again, for live
    plans (read by apply through Ansible)."""
    from tfsconf.errors import UserError
    from tfsconf.plan.planner import make_plan

    if current is None:
        current = source_of(plan, workdir=workdir).load()
    if current.fingerprint != plan.state_fingerprint:
        raise UserError(
            f"stale plan for {plan.environment}: {plan.state.describe()} changed since the "
            f"plan was made (state fingerprint {plan.state_fingerprint[:12]}, now "
            f"{current.fingerprint[:12]})",
            hint=f"plan again: tfsconf plan {plan.spec}",
        )
    loaded, desired = _desired_state(_from(workdir, plan.spec), plan.spec)
    if desired.fingerprint != plan.desired_fingerprint:
        raise UserError(
            f"stale plan for {plan.environment}: {plan.spec} compiles to something else "
            f"than when the plan was made (fingerprint {plan.desired_fingerprint[:12]}, "
            f"now {desired.fingerprint[:12]})",
            hint=f"plan again: tfsconf plan {plan.spec}",
        )
    # the inputs hold; the plan itself must be what they give (not edited by hand)
    # (where the state came from and the spec's own digest may differ: a moved ref, a comment)
    ignored = {"state", "spec_sha256"}
    again = make_plan(current, desired, loaded.resolved, spec=plan.spec).as_json()
    saved = plan.as_json()
    if {k: v for k, v in again.items() if k not in ignored} != {
        k: v for k, v in saved.items() if k not in ignored
    }:
        raise UserError(
            f"the saved plan for {plan.environment} is not what its spec and state give "
            "(edited after it was saved?)",
            hint=f"plan again: tfsconf plan {plan.spec}",
        )


def load_saved_plans(path: Path | str) -> tuple[tuple[Plan, ...], Path | None]:
    """The plans of a file saved by `plan --out`, and the directory they were made in."""
    from tfsconf.errors import UserError
    from tfsconf.plan.document import load_plan_document, saved_workdir

    try:
        data = json.loads(Path(path).read_bytes())
    except FileNotFoundError:
        raise UserError(f"{path}: no such plan file") from None
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read the plan: {exc}") from exc
    workdir = saved_workdir(data)
    return load_plan_document(data, str(path)), Path(workdir) if workdir else None


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
    from tfsconf.apply.drift import find_repairs
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
    repairs = find_repairs(
        context.loaded.resolved,
        context.source.records,
        context.source.on_host,
        skip={hp.name for hp in plan.hosts if hp.change != "remove"},
    )
    return PreparedApply(context, plan, repairs, saved=target.suffix == ".json")


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
    import time
    import uuid

    from tfsconf.apply.rollback import fetch_release_records, rollback_work
    from tfsconf.apply.rollout import ApplyReport, HostReport, locked_rollout
    from tfsconf.errors import UserError

    started = time.monotonic()
    context = prepared.context
    env = context.loaded.resolved
    records = context.source.records
    applied = {h: rec for h, rec in records.items() if rec is not None}
    report = ApplyReport(env.name, uuid.uuid4().hex[:12])
    groups = {h.name: h.group for h in env.hosts}
    for host in sorted(prepared.skipped):
        record = records.get(host)
        report.hosts.append(
            HostReport(host, groups[host], "unchanged", record.release if record else None)
        )

    def release_of(record: HostRecord | None) -> str | None:
        return record.release if record is not None else None

    def prepare(fresh: Mapping[str, HostRecord | None]) -> dict[str, HostWork]:
        moved = sorted(h for h in records if release_of(fresh.get(h)) != release_of(records[h]))
        if moved:
            raise UserError(
                "stale rollback: " + ", ".join(moved) + " changed since the rollback was "
                "shown; nothing was changed",
                hint="run rollback again and review it",
            )
        fetched = fetch_release_records(
            context.inventory, env.config_root, prepared.targets, forks=context.forks
        )
        return {h: rollback_work(env, applied[h], fetched[h]) for h in sorted(prepared.targets)}

    locked_rollout(
        env,
        context.inventory,
        report,
        prepare,
        break_mode=break_mode,
        known_locks=context.source.locks,
        progress=progress,
        forks=context.forks,
    )
    report.seconds = time.monotonic() - started
    return report


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
