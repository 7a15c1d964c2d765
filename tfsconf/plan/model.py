"""The Plan: what a change does to each host and server, what it costs, and in what order.

One Plan object feeds every renderer (text, markdown, json) and, saved as JSON, apply.
Everything is immutable and ordered (hosts, servers and addresses sorted), so the JSON is
canonical: the same inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from tfsconf.plan.schema import (
    ActionJSON,
    FileDiffJSON,
    HostPlanJSON,
    ImageChangeJSON,
    ModelChangeJSON,
    PhaseJSON,
    PlanJSON,
    RiskJSON,
    ServerPlanJSON,
)
from tfsconf.plan.state import StateOrigin
from tfsconf.plan.summary import counts, summary_line

PLAN_SCHEMA_VERSION = 1

ActionKind = Literal["create", "remove", "rebuild", "restart", "hot-reload", "sync", "warmup"]
Change = Literal["create", "remove", "update"]
FileStatus = Literal["added", "removed", "changed"]

ACTIVATIONS: tuple[ActionKind, ...] = ("create", "remove", "rebuild", "restart", "hot-reload")
"""Server-level actions, most disruptive first (a server gets at most one of them)."""

DISRUPTION: Mapping[ActionKind, str] = MappingProxyType(
    {
        "create": "new server: its image is built (or pulled) and its models synced before "
        "it starts",
        "remove": "server stopped and disabled; clients lose it",
        "rebuild": "image rebuilt on the host, then a process restart",
        "restart": "process restart: the server stops serving until its models load again",
        "hot-reload": "new models.config and a reload; no restart",
        "sync": "none: fetched beside the base path, published by rename",
        "warmup": "none: read when the version loads",
    }
)


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    address: str
    """host/server for server actions; host/models/<model>[/<version>] for model actions."""
    reasons: tuple[str, ...]
    model: str | None = None
    version: int | None = None
    versions_count: int = 0
    """For sync and warmup: how many versions it covers (a latest-N action counts N)."""

    @property
    def disruption(self) -> str:
        return DISRUPTION[self.kind]

    def as_json(self) -> ActionJSON:
        return {
            "kind": self.kind,
            "address": self.address,
            "reasons": list(self.reasons),
            "model": self.model,
            "version": self.version,
            "versions_count": self.versions_count,
        }

    @classmethod
    def from_json(cls, data: ActionJSON) -> Action:
        return cls(
            kind=data["kind"],
            address=data["address"],
            reasons=tuple(data["reasons"]),
            model=data["model"],
            version=data["version"],
            versions_count=data["versions_count"],
        )


@dataclass(frozen=True, slots=True)
class Phase:
    """One models.config push of a hot reload that must happen in steps (label moves)."""

    number: int
    steps: tuple[str, ...]
    wait_for: tuple[tuple[str, int], ...]
    """(model, version) pairs that must be AVAILABLE before the next phase starts."""
    models_config: str

    def as_json(self, texts: dict[str, str]) -> PhaseJSON:
        """models_config is stored once per distinct text in the plan's `configs` table."""
        key = text_id(self.models_config)
        texts[key] = self.models_config
        return {
            "number": self.number,
            "steps": list(self.steps),
            "wait_for": [{"model": m, "version": v} for m, v in self.wait_for],
            "models_config": key,
        }

    @classmethod
    def from_json(cls, data: PhaseJSON, texts: Mapping[str, str]) -> Phase:
        return cls(
            number=data["number"],
            steps=tuple(data["steps"]),
            wait_for=tuple((w["model"], w["version"]) for w in data["wait_for"]),
            models_config=texts[data["models_config"]],
        )


def text_id(text: str) -> str:
    """A short content id for a text stored once in a plan (diffs, phase configs)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class FileDiff:
    path: str
    """Bundle path, e.g. hosts/rank-a1/rank-gpu0/models.config."""
    status: FileStatus
    diff: str
    """Key into Plan.diffs (identical diffs on many hosts are stored once)."""

    def as_json(self) -> FileDiffJSON:
        return {"path": self.path, "status": self.status, "diff": self.diff}

    @classmethod
    def from_json(cls, data: FileDiffJSON) -> FileDiff:
        return cls(path=data["path"], status=data["status"], diff=data["diff"])


@dataclass(frozen=True, slots=True)
class ServerPlan:
    host: str
    name: str
    change: Change
    activation: ActionKind | None
    """create, remove, rebuild, restart or hot-reload; None when only models sync."""
    reasons: tuple[str, ...]
    phases: tuple[Phase, ...]
    """Empty unless the reload must be split (a label moves to a version not yet loaded)."""
    files: tuple[FileDiff, ...]

    @property
    def address(self) -> str:
        return f"{self.host}/{self.name}"

    def as_json(self, texts: dict[str, str]) -> ServerPlanJSON:
        return {
            "name": self.name,
            "address": self.address,
            "change": self.change,
            "activation": self.activation,
            "reasons": list(self.reasons),
            "phases": [p.as_json(texts) for p in self.phases],
            "files": [f.as_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, host: str, data: ServerPlanJSON, texts: Mapping[str, str]) -> ServerPlan:
        return cls(
            host=host,
            name=data["name"],
            change=data["change"],
            activation=data["activation"],
            reasons=tuple(data["reasons"]),
            phases=tuple(Phase.from_json(p, texts) for p in data["phases"]),
            files=tuple(FileDiff.from_json(f) for f in data["files"]),
        )


@dataclass(frozen=True, slots=True)
class HostPlan:
    name: str
    address: str
    group: str
    change: Change
    servers: tuple[ServerPlan, ...]
    actions: tuple[Action, ...]
    """Model actions on the host (sync, warmup): shared by every server on it."""
    files: tuple[FileDiff, ...]
    """Host-level artifacts (warmup.json)."""

    def summary(self) -> str:
        return summary_line(counts([self]), prefix="")

    def as_json(self, texts: dict[str, str]) -> HostPlanJSON:
        return {
            "name": self.name,
            "address": self.address,
            "group": self.group,
            "change": self.change,
            "servers": [s.as_json(texts) for s in self.servers],
            "actions": [a.as_json() for a in self.actions],
            "files": [f.as_json() for f in self.files],
        }

    @classmethod
    def from_json(cls, data: HostPlanJSON, texts: Mapping[str, str]) -> HostPlan:
        return cls(
            name=data["name"],
            address=data["address"],
            group=data["group"],
            change=data["change"],
            servers=tuple(ServerPlan.from_json(data["name"], s, texts) for s in data["servers"]),
            actions=tuple(Action.from_json(a) for a in data["actions"]),
            files=tuple(FileDiff.from_json(f) for f in data["files"]),
        )


@dataclass(frozen=True, slots=True)
class ImageChange:
    name: str
    change: Change
    old_ref: str | None
    new_ref: str | None
    file: FileDiff | None

    def as_json(self) -> ImageChangeJSON:
        return {
            "name": self.name,
            "change": self.change,
            "old_ref": self.old_ref,
            "new_ref": self.new_ref,
            "file": self.file.as_json() if self.file else None,
        }

    @classmethod
    def from_json(cls, data: ImageChangeJSON) -> ImageChange:
        file = data["file"]
        return cls(
            name=data["name"],
            change=data["change"],
            old_ref=data["old_ref"],
            new_ref=data["new_ref"],
            file=FileDiff.from_json(file) if file else None,
        )


@dataclass(frozen=True, slots=True)
class Risk:
    kind: str
    message: str
    addresses: tuple[str, ...]

    def as_json(self) -> RiskJSON:
        return {"kind": self.kind, "message": self.message, "addresses": list(self.addresses)}

    @classmethod
    def from_json(cls, data: RiskJSON) -> Risk:
        return cls(kind=data["kind"], message=data["message"], addresses=tuple(data["addresses"]))


@dataclass(frozen=True, slots=True)
class ModelChange:
    """A change to one model, in words, with the servers it applies to."""

    model: str
    description: str
    addresses: tuple[str, ...]

    def as_json(self) -> ModelChangeJSON:
        return {
            "model": self.model,
            "description": self.description,
            "addresses": list(self.addresses),
        }

    @classmethod
    def from_json(cls, data: ModelChangeJSON) -> ModelChange:
        return cls(
            model=data["model"],
            description=data["description"],
            addresses=tuple(data["addresses"]),
        )


@dataclass(frozen=True, slots=True)
class Plan:
    environment: str
    spec: str
    """The spec file as the user named it."""
    spec_sha256: str
    desired_fingerprint: str
    """Fingerprint of what the spec compiled to: apply refuses a plan whose spec moved on."""
    state: StateOrigin
    state_fingerprint: str
    hosts: tuple[HostPlan, ...]
    images: tuple[ImageChange, ...]
    models: tuple[ModelChange, ...]
    risks: tuple[Risk, ...]
    diffs: Mapping[str, str]
    """Diff id -> unified diff text."""

    @property
    def has_changes(self) -> bool:
        return bool(self.hosts or self.images)

    def summary(self) -> str:
        if not self.has_changes:
            return "No changes."
        return summary_line(counts(self.hosts), prefix="Plan: ")

    def as_json(self) -> PlanJSON:
        texts: dict[str, str] = {}
        hosts = [h.as_json(texts) for h in self.hosts]
        return {
            "configs": dict(sorted(texts.items())),
            # what each action kind costs, once (actions name their kind)
            "disruption": dict(sorted(DISRUPTION.items())),
            "environment": self.environment,
            "spec": self.spec,
            "spec_sha256": self.spec_sha256,
            "desired_fingerprint": self.desired_fingerprint,
            "state": {
                "kind": self.state.kind,
                "ref": self.state.ref,
                "detail": self.state.detail,
                "fingerprint": self.state_fingerprint,
            },
            "summary": self.summary(),
            "counts": counts(self.hosts),
            "hosts": hosts,
            "images": [i.as_json() for i in self.images],
            "models": [m.as_json() for m in self.models],
            "risks": [r.as_json() for r in self.risks],
            "diffs": dict(sorted(self.diffs.items())),
        }

    @classmethod
    def from_json(cls, data: PlanJSON) -> Plan:
        state = data["state"]
        return cls(
            environment=data["environment"],
            spec=data["spec"],
            spec_sha256=data["spec_sha256"],
            desired_fingerprint=data["desired_fingerprint"],
            state=StateOrigin(state["kind"], state["ref"], state["detail"]),
            state_fingerprint=state["fingerprint"],
            hosts=tuple(HostPlan.from_json(h, data["configs"]) for h in data["hosts"]),
            images=tuple(ImageChange.from_json(i) for i in data["images"]),
            models=tuple(ModelChange.from_json(m) for m in data["models"]),
            risks=tuple(Risk.from_json(r) for r in data["risks"]),
            diffs=MappingProxyType(dict(data["diffs"])),
        )
