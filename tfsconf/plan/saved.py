"""Plans saved by `plan --out` and the state they were planned from: where that state is
read again, and the check that a saved plan is still fresh before it is used.

Imports are made where used: loading this module costs nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfsconf.plan.model import Plan
    from tfsconf.plan.state import State, StateSource
    from tfsconf.validate.load import LoadedEnvironment


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


def desired_state(spec: Path | str, shown: str) -> tuple[LoadedEnvironment, State]:
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
    loaded, desired = desired_state(_from(workdir, plan.spec), plan.spec)
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
