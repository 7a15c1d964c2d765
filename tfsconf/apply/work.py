"""What each host must do, from a Plan, the compiled bundle and the hosts' records.

The result is a HostWork (tfsconf/contracts.py) handed to the playbooks as `tfsconf_work`:
the playbooks decide nothing that Python can decide first, so what runs is what the plan
said. Each artifact reaches the host where the artifact registry places it
(PLACEMENT_CONSUMERS names the work keys that carry each placement).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfsconf.apply import activations as act
from tfsconf.apply.batching import placements
from tfsconf.apply.model_work import ModelWork, models_of, resolved_of
from tfsconf.apply.record import HostRecord, now, operator, release_id
from tfsconf.apply.sources import HTTP_VERSION_INDEX, SourceVersions
from tfsconf.compile import artifacts
from tfsconf.compile.artifacts import DOCKERFILE, MODELS_CONFIG, Placement
from tfsconf.contracts import (
    Activation,
    ActivationKind,
    HostWork,
    ImageWork,
    ModelRecord,
    Previous,
    Record,
    Sync,
    WorkKind,
)
from tfsconf.errors import UserError
from tfsconf.kinds import RUNTIMES
from tfsconf.plan.model import HostPlan, Plan, ServerPlan
from tfsconf.resolve import model as r

__all__ = [
    "HTTP_VERSION_INDEX",
    "PLACEMENT_CONSUMERS",
    "Options",
    "SourceVersions",
    "WorkBuilder",
    "scratch_dir",
]

RECORD_KIND: WorkKind = "apply"
RECORD_SCHEMA_VERSION = 1
GENERATOR = "tfsconf"

PLACEMENT_CONSUMERS: Mapping[Placement, tuple[str, ...]] = {
    Placement.RELEASE_DIR: ("stage",),
    Placement.SYSTEMD_UNIT: ("activations",),
    Placement.VERSION_DIR: ("syncs", "batching", "batching_revert"),
    Placement.IMAGE_BUILD_DIR: ("images",),
    Placement.RECORD: ("record",),
}
"""The HostWork keys that carry each placement of an artifact to the playbooks."""


@dataclass(frozen=True, slots=True)
class Options:
    health_timeout: float | None = None
    """Overrides the spec's rollout.health_timeout_seconds."""
    sync_retries: int = 3
    sync_bwlimit: int = 0
    """Bytes per second per model sync; 0 = unlimited."""
    http_timeout: float = 30.0


def _in_container(server: r.Server) -> bool:
    """The server runs the bundle's image; the other runtimes use the host's own binary."""
    return RUNTIMES[server.runtime].container


def stage_of(own: Mapping[str, bytes], servers: list[str]) -> dict[str, dict[str, str]]:
    """server -> the artifacts staged as its release directory."""
    stage: dict[str, dict[str, str]] = {name: {} for name in servers}
    for rel, data in own.items():
        split = artifacts.server_of(rel)
        if split is None or split[0] not in stage:
            continue
        artifact, _ = artifacts.server_artifact(split[1])
        if Placement.RELEASE_DIR in artifact.placements:
            stage[split[0]][split[1]] = data.decode()
    return stage


def server_files(files: Mapping[str, str], server: str) -> dict[str, str]:
    """A server's artifacts (relative to its directory) from a host's files."""
    prefix = f"{server}/"
    return {rel[len(prefix) :]: text for rel, text in files.items() if rel.startswith(prefix)}


@dataclass(frozen=True, slots=True)
class _Before:
    """What a host ran before this run, from its record."""

    release: str | None
    servers: set[str]
    files: Mapping[str, str]
    models: Mapping[str, ModelRecord]

    @classmethod
    def of(cls, record: HostRecord | None) -> _Before:
        if record is None:
            return cls(None, set(), {}, {})
        servers = record.data.get("manifest", {}).get("servers", [])
        return cls(record.release, set(servers), record.files, record.data.get("models") or {})


@dataclass(frozen=True, slots=True)
class _Context:
    """What the parts of one host's work share."""

    before: _Before
    stage: Mapping[str, Mapping[str, str]]
    removed: list[str]
    syncs: list[Sync]
    resolved: Mapping[str, list[int]]
    timeout: float


class WorkBuilder:
    def __init__(
        self,
        plan: Plan,
        env: r.Environment,
        bundle_files: Mapping[str, bytes],
        image_refs: Mapping[str, str],
        records: Mapping[str, HostRecord | None],
        options: Options,
        scratch: Path,
    ) -> None:
        self.plan = plan
        self.env = env
        self.files = bundle_files
        self.image_refs = image_refs
        self.records = records
        self.options = options
        self.sources = SourceVersions(options.http_timeout)
        self.models = ModelWork(self.sources, scratch)

    def _host(self, name: str) -> r.Host:
        for host in self.env.hosts:
            if host.name == name:
                return host
        raise UserError(f"host {name} is not in the spec")

    def _group(self, name: str) -> r.Group:
        for group in self.env.groups:
            if group.name == name:
                return group
        raise UserError(f"group {name} is not in the spec")

    @property
    def secrets(self) -> dict[str, str]:
        """Environment variable name -> secret, of every source the built work syncs from."""
        return dict(self.sources.secrets)

    def _syncs(self, hp: HostPlan, host: r.Host, own: Mapping[str, bytes]) -> list[Sync]:
        """Model syncs: each (base path, version) once per host, with its batching file."""
        by_name = models_of(host)
        batching = artifacts.per_model_batching(own)
        out: list[Sync] = []
        for action in hp.actions:
            if action.kind != "sync" or action.model is None:
                continue
            model = by_name[action.model]
            versions = (
                [action.version] if action.version is not None else self.models.resolve(model)
            )
            out.extend(self.models.sync(model, v, batching.get(model.name)) for v in versions)
        return out

    def build(self, hp: HostPlan) -> HostWork:
        host = self._host(hp.name)
        group = self._group(host.group)
        own = artifacts.host_files(self.files, host.name)
        images = {s.image: self.image_refs[s.image] for s in host.servers if _in_container(s)}
        release = release_id(own, images)
        before = _Before.of(self.records.get(host.name))
        desired = [s.name for s in host.servers]
        removed = sorted(before.servers - set(desired))
        syncs = self._syncs(hp, host, own)
        models = models_of(host)
        resolved = {name: self.models.resolve(m) for name, m in models.items()}
        models_record: dict[str, ModelRecord] = {
            name: {"base_path": m.base_path, "versions": resolved[name]}
            for name, m in sorted(models.items())
        }
        published_now = {(s["base_path"], s["version"]) for s in syncs}
        timeout = self.options.health_timeout or group.rollout.health_timeout_seconds
        stage = stage_of(own, desired)
        ctx = _Context(before, stage, removed, syncs, resolved, timeout)
        # one literal of the whole work, so that mypy checks every key of HostWork
        return {
            "kind": RECORD_KIND,
            "release": release,
            "config_root": self.env.config_root,
            "model_root": self.env.model_root,
            "runtime": host.runtime,
            "base_paths": sorted({m.base_path for m in models.values()}),
            "versions_present": [],
            "need_bytes": sum(s["bytes"] for s in syncs),
            "gpus": sorted({s.gpu for s in host.servers if s.gpu is not None}),
            "preload": self._preload(host),
            "tfserving_version": self.env.tfserving_version,
            "stage": stage,
            "targets": {**dict.fromkeys(desired, release), **dict.fromkeys(removed)},
            "rollback_targets": {
                name: (before.release if name in before.servers else None)
                for name in [*desired, *removed]
            },
            "removed_servers": removed,
            "syncs": syncs,
            "sync": {"retries": self.options.sync_retries, "bwlimit": self.options.sync_bwlimit},
            "batching": placements(own, models_record, before.files, before.models, published_now),
            "batching_revert": placements(before.files, before.models, own, models_record),
            "images": self._images(images),
            "activations": self._activations(hp, host, ctx),
            "record": self._record(host, release, images, own, models_record),
            "keep_releases": group.rollout.keep_releases,
            "timeout": timeout,
        }

    def _preload(self, host: r.Host) -> list[str]:
        """native/process runtimes run the host's own binary and allocator: preflight
        checks both (in an image the Dockerfile checks them at build time)."""
        return sorted(
            {
                lib
                for s in host.servers
                if not _in_container(s) and (lib := self.env.image(s.image).allocator_library)
            }
        )

    def _activations(self, hp: HostPlan, host: r.Host, ctx: _Context) -> list[Activation]:
        planned = {sp.name: sp for sp in hp.servers}
        desired = {s.name: s for s in host.servers}
        synced = {s["model"] for s in ctx.syncs}
        previous_resolved = resolved_of(ctx.before.models)
        out: list[Activation] = []
        # removed servers first: their ports and GPU memory may go to a new server
        for name in [*ctx.removed, *desired]:
            sp = planned.get(name)
            srv = desired.get(name)
            touches_models = srv is not None and any(m.name in synced for m in srv.models)
            kind = (sp.activation if sp is not None else None) or "none"
            if kind == "none" and not touches_models:
                continue
            old_files = server_files(ctx.before.files, name)
            was = act.previous(
                ctx.before.release if name in ctx.before.servers else None,
                old_files,
                previous_resolved,
            )
            if srv is None:  # removed: its old flags give the port, for a revert
                out.append(
                    act.activation(
                        server=name,
                        kind="remove",
                        address=host.address,
                        files=old_files,
                        resolved=ctx.resolved,
                        timeout=ctx.timeout,
                        before=was,
                    )
                )
                continue
            out.append(self._activation(sp, srv, act.activation_kind(kind), host, was, ctx))
        return out

    def _activation(
        self,
        sp: ServerPlan | None,
        srv: r.Server,
        kind: ActivationKind,
        host: r.Host,
        was: Previous,
        ctx: _Context,
    ) -> Activation:
        """A desired server's activation: its pushes, each gated by a smoke test of the
        versions it waits for, and the smoke of the rest after the health gate."""
        files = ctx.stage[srv.name]
        final = files[MODELS_CONFIG.path()]
        phases = act.pushes(sp.phases if sp is not None else (), final)
        pushes = phases if kind == "hot-reload" else []
        smoke = self.models.smoke(srv, ctx.syncs, was["models_config"])
        # the smoke gate: each new version is tried by number as soon as it is AVAILABLE
        # and before the next phase moves traffic to it (a label, an unload)
        for pushed in pushes:
            waits = pushed["expect"]
            pushed["smoke"] = [i for i in smoke if i["version"] in waits.get(i["model"], [])]
        gated = {(i["model"], i["version"]) for ph in pushes for i in ph.get("smoke", [])}
        return act.activation(
            server=srv.name,
            kind=kind,
            address=host.address,
            files=files,
            resolved=ctx.resolved,
            timeout=ctx.timeout,
            before=was,
            phases=pushes,
            smoke=[i for i in smoke if (i["model"], i["version"]) not in gated],
        )

    def _images(self, images: Mapping[str, str]) -> list[ImageWork]:
        env_images = {i.name: i for i in self.env.images}
        return [
            {
                "name": name,
                "ref": ref,
                "registry": bool(env_images[name].registry),
                "dockerfile": self.files[DOCKERFILE.path(image=name)].decode(),
            }
            for name, ref in sorted(images.items())
        ]

    def _record(
        self,
        host: r.Host,
        release: str,
        images: Mapping[str, str],
        own: Mapping[str, bytes],
        models: dict[str, ModelRecord],
    ) -> Record:
        return {
            "schema_version": RECORD_SCHEMA_VERSION,
            "generator": GENERATOR,
            "environment": self.env.name,
            "host": host.name,
            "release": release,
            "spec_sha256": self.env.spec_sha256,
            "applied_at": now(),
            "operator": operator(),
            "manifest": {
                "address": host.address,
                "group": host.group,
                "runtime": host.runtime,
                "servers": [s.name for s in host.servers],
                "server_images": {s.name: s.image for s in host.servers if _in_container(s)},
            },
            "images": dict(images),
            "image_files": {
                name: self.files[DOCKERFILE.path(image=name)].decode() for name in images
            },
            "files": {rel: data.decode() for rel, data in sorted(own.items())},
            "models": models,
        }


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tfsconf-apply-"))
