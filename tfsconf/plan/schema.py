"""The saved plan (plan.json) as JSON: one TypedDict per object, written by the as_json
and read by the from_json of the matching dataclass in plan/model.py (which also checks
a saved plan once it is read: document.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, NotRequired, TypedDict

if TYPE_CHECKING:
    from tfsconf.plan.model import ActionKind, Change, FileStatus
    from tfsconf.plan.state import SourceKind


class ActionJSON(TypedDict):
    kind: ActionKind
    address: str
    reasons: list[str]
    model: str | None
    version: int | None
    versions_count: int


class WaitJSON(TypedDict):
    model: str
    version: int


class PhaseJSON(TypedDict):
    number: int
    steps: list[str]
    wait_for: list[WaitJSON]
    models_config: str
    """Key into PlanJSON.configs."""


class FileDiffJSON(TypedDict):
    path: str
    status: FileStatus
    diff: str
    """Key into PlanJSON.diffs."""


class ServerPlanJSON(TypedDict):
    name: str
    address: str
    change: Change
    activation: ActionKind | None
    reasons: list[str]
    phases: list[PhaseJSON]
    files: list[FileDiffJSON]


class HostPlanJSON(TypedDict):
    name: str
    address: str
    group: str
    change: Change
    servers: list[ServerPlanJSON]
    actions: list[ActionJSON]
    files: list[FileDiffJSON]


class ImageChangeJSON(TypedDict):
    name: str
    change: Change
    old_ref: str | None
    new_ref: str | None
    file: FileDiffJSON | None


class RiskJSON(TypedDict):
    kind: str
    message: str
    addresses: list[str]


class ModelChangeJSON(TypedDict):
    model: str
    description: str
    addresses: list[str]


class StateJSON(TypedDict):
    kind: SourceKind
    ref: str
    detail: str
    fingerprint: str


class PlanJSON(TypedDict):
    configs: dict[str, str]
    disruption: dict[str, str]
    environment: str
    spec: str
    spec_sha256: str
    desired_fingerprint: str
    state: StateJSON
    summary: str
    counts: dict[str, int]
    hosts: list[HostPlanJSON]
    images: list[ImageChangeJSON]
    models: list[ModelChangeJSON]
    risks: list[RiskJSON]
    diffs: dict[str, str]


class PlanDocument(TypedDict):
    generator: str
    schema_version: int
    plans: list[PlanJSON]
    workdir: NotRequired[str]
    """The directory a saved plan was made in (its relative paths are read against it)."""
