"""A saved plan file (tfsconf plan --out): the document of plans, read back and checked
once, so the renderers and apply can rely on what they find."""

from __future__ import annotations

from typing import cast

from tfsconf.errors import UserError
from tfsconf.plan.model import (
    ACTIVATIONS,
    DISRUPTION,
    PLAN_SCHEMA_VERSION,
    FileDiff,
    Plan,
)
from tfsconf.plan.schema import PlanDocument, PlanJSON


def load_plan_document(data: object, where: str) -> tuple[Plan, ...]:
    """Plans from a saved plan file's JSON; refuses other files and other schema versions."""
    if not isinstance(data, dict) or data.get("generator") != "tfsconf" or "plans" not in data:
        raise UserError(f"{where}: not a plan saved by tfsconf plan --out")
    if data.get("schema_version") != PLAN_SCHEMA_VERSION:
        raise UserError(
            f"{where}: plan schema_version {data.get('schema_version')!r} is not "
            f"{PLAN_SCHEMA_VERSION}: plan again with this tfsconf"
        )
    try:
        if not isinstance(data["plans"], list):
            raise TypeError("plans is not a list")
        plans = tuple(Plan.from_json(cast(PlanJSON, p)) for p in data["plans"])
        for plan in plans:
            _check_plan(plan)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UserError(f"{where}: malformed plan ({type(exc).__name__}: {exc})") from exc
    return plans


_KINDS = frozenset(DISRUPTION)
_CHANGES = frozenset(("create", "remove", "update"))
_STATUSES = frozenset(("added", "removed", "changed"))


def _check_plan(plan: Plan) -> None:
    """What the renderers and apply rely on, checked once when a saved plan is read."""

    def file(diff: FileDiff) -> None:
        if diff.status not in _STATUSES or diff.diff not in plan.diffs:
            raise ValueError(f"{diff.path}: unknown status or diff")

    for image in plan.images:
        if image.change not in _CHANGES:
            raise ValueError(f"image {image.name}: change {image.change!r}")
        if image.file is not None:
            file(image.file)
    for host in plan.hosts:
        if host.change not in _CHANGES:
            raise ValueError(f"host {host.name}: change {host.change!r}")
        for server in host.servers:
            if server.change not in _CHANGES or (
                server.activation is not None and server.activation not in ACTIVATIONS
            ):
                raise ValueError(f"{server.address}: change or activation unknown")
            for item in server.files:
                file(item)
        for action in host.actions:
            if action.kind not in _KINDS:
                raise ValueError(f"{action.address}: action kind {action.kind!r}")
        for item in host.files:
            file(item)


def plan_document(
    plans: tuple[Plan, ...] | list[Plan], *, workdir: str | None = None
) -> PlanDocument:
    """The JSON document of plans. A saved plan also records the directory it was made in,
    against which its relative spec and state paths are read again."""
    document: PlanDocument = {
        "generator": "tfsconf",
        "schema_version": PLAN_SCHEMA_VERSION,
        "plans": [p.as_json() for p in plans],
    }
    if workdir is not None:
        document["workdir"] = workdir
    return document


def saved_workdir(data: object) -> str | None:
    if isinstance(data, dict) and isinstance(data.get("workdir"), str):
        return str(data["workdir"])
    return None
