"""The Python API; the CLI is a thin shell over these functions (tests call them directly)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tfsconf.validate.load import LoadedEnvironment, load_environment

if TYPE_CHECKING:  # compile pulls in protobuf and Jinja2; validate does not need them
    from tfsconf.compile import Bundle, Staleness


def validate(spec: Path | str, *, root: Path | str | None = None) -> LoadedEnvironment:
    """Validate an environment file; raises SpecError listing every problem. Files the spec
    names must lie under `root` (default: the spec's directory)."""
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
    from tfsconf.apply.record import LiveSource
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


# --- apply ------------------------------------------------------------------------------


@dataclass(slots=True)
class LiveContext:
    """A spec compiled in memory, with the inventory and live source of its hosts."""

    spec: Path
    loaded: LoadedEnvironment
    bundle: Bundle
    inventory: dict[str, object]
    source: LiveSource


def live_context(spec: Path | str, *, host_vars: Path | None = None) -> LiveContext:
    from tfsconf.apply.inventory import build_inventory, load_host_vars
    from tfsconf.apply.record import LiveSource
    from tfsconf.compile import build_bundle

    loaded = load_environment(spec)
    env = loaded.resolved
    bundle = build_bundle(env)
    inventory = build_inventory(env, load_host_vars(host_vars, env))
    return LiveContext(
        Path(spec), loaded, bundle, inventory, LiveSource(Path(spec), env, inventory)
    )


def plan_live(context: LiveContext, shown: str) -> Plan:
    """Plan the spec against the hosts' last-applied records (read through Ansible)."""
    from tfsconf.plan.planner import make_plan
    from tfsconf.plan.state import StateOrigin, state_from_bundle

    current = context.source.load()
    desired = state_from_bundle(context.bundle.files, StateOrigin("none"), shown)
    return make_plan(current, desired, context.loaded.resolved, spec=shown)
