"""The state a plan starts from, whatever it was read from.

A state is what a compiled bundle says about each host: its servers, their artifacts and
the image each docker server runs. Every source yields the same shape, so the planner
never knows where the state came from:

- ``--base <git ref>``: the same spec at another commit, compiled in memory;
- ``--state <dir>``: a bundle compiled before (or last-applied records fetched from hosts,
  laid out as a bundle);
- live: the last-applied record on each host (the apply issue plugs a source in here);
- nothing: no hosts, everything is new.

The fingerprint covers everything the planner reads, so a saved plan can tell later
whether the state it was computed from still holds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal, Protocol, cast

from tfsconf.compile import artifacts
from tfsconf.compile.bundle import GENERATOR, MANIFEST, MANIFEST_SCHEMA_VERSION
from tfsconf.contracts import Manifest
from tfsconf.errors import UserError

SUPPORTED_MANIFESTS = (MANIFEST_SCHEMA_VERSION,)

SourceKind = Literal["none", "base", "state", "live"]


@dataclass(frozen=True, slots=True)
class ServerState:
    name: str
    image_ref: str | None
    """The image a docker server runs; None for native and process servers."""
    files: Mapping[str, bytes]
    """Artifacts relative to the server's directory (models.config, server.flags, ...)."""


@dataclass(frozen=True, slots=True)
class HostState:
    name: str
    address: str
    group: str
    runtime: str
    servers: Mapping[str, ServerState]
    files: Mapping[str, bytes]
    """Host-level artifacts (warmup.json)."""


@dataclass(frozen=True, slots=True)
class ImageState:
    name: str
    ref: str
    dockerfile: bytes


@dataclass(frozen=True, slots=True)
class StateOrigin:
    """Where a state came from, as recorded in a plan and shown to reviewers."""

    kind: SourceKind
    ref: str = ""
    """The git ref, directory or host list that was read; empty for "none"."""
    detail: str = ""
    """What the ref resolved to (a commit id), or why the state is empty."""

    def describe(self) -> str:
        if self.kind == "none":
            return "no current state (everything is new)" + (
                f": {self.detail}" if self.detail else ""
            )
        if self.kind == "base":
            return f"git {self.ref}" + (f" ({self.detail})" if self.detail else "")
        if self.kind == "state":
            return f"compiled bundle {self.ref}"
        return f"live state of {self.ref}"

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "ref": self.ref, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class State:
    origin: StateOrigin
    environment: str | None
    hosts: Mapping[str, HostState]
    images: Mapping[str, ImageState]
    fingerprint: str = field(default="")

    @property
    def empty(self) -> bool:
        return not self.hosts


class StateSource(Protocol):
    """Anything that can produce the current state; re-read to check a saved plan."""

    def origin(self) -> StateOrigin: ...

    def load(self) -> State: ...


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(
    hosts: Mapping[str, HostState],
    images: Mapping[str, ImageState],
    environment: str | None = None,
) -> str:
    """sha256 over a canonical description of everything the planner reads."""
    cache: dict[int, str] = {}

    def digest(data: bytes) -> str:
        found = cache.get(id(data))
        if found is None:
            found = cache[id(data)] = _sha256(data)
        return found

    canonical = {
        "environment": environment,
        "hosts": {
            name: {
                "address": host.address,
                "group": host.group,
                "runtime": host.runtime,
                "files": {path: digest(data) for path, data in sorted(host.files.items())},
                "servers": {
                    server.name: {
                        "image_ref": server.image_ref,
                        "files": {p: digest(d) for p, d in sorted(server.files.items())},
                    }
                    for server in host.servers.values()
                },
            }
            for name, host in hosts.items()
        },
        "images": {
            name: {"ref": image.ref, "dockerfile": digest(image.dockerfile)}
            for name, image in images.items()
        },
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return _sha256(text.encode())


def empty_state(origin: StateOrigin) -> State:
    return State(origin, None, {}, {}, fingerprint({}, {}))


def _manifest(files: Mapping[str, bytes], where: str) -> Manifest:
    """The manifest of a bundle; its fields are checked where they are read (a bundle on
    disk may have been edited)."""
    raw = files.get(MANIFEST)
    if raw is None:
        raise UserError(f"{where}: no {MANIFEST}: not a tfsconf build")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"{where}: {MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("generator") != GENERATOR:
        raise UserError(f"{where}: {MANIFEST} was not written by tfsconf")
    version = manifest.get("schema_version")
    if version not in SUPPORTED_MANIFESTS:
        raise UserError(
            f"{where}: manifest schema_version {version!r} is not supported (this tfsconf "
            f"reads {', '.join(map(str, SUPPORTED_MANIFESTS))}); compile it again with "
            "this version"
        )
    return cast(Manifest, manifest)


def _typed(value: object, kind: type, what: str, where: str) -> object:
    if not isinstance(value, kind):
        raise UserError(f"{where}: {MANIFEST}: {what} is not a {kind.__name__}")
    return value


def _host_state(
    name: str,
    raw_entry: object,
    host_files: Mapping[str, bytes],
    images: Mapping[str, ImageState],
    where: str,
) -> HostState:
    """One host of a manifest, with its artifacts split between its servers and itself."""
    entry = _typed(raw_entry, dict, f"hosts.{name}", where)
    assert isinstance(entry, dict)
    server_names = _typed(entry.get("servers"), list, f"hosts.{name}.servers", where)
    server_images = _typed(entry.get("server_images"), dict, f"hosts.{name}.server_images", where)
    assert isinstance(server_names, list) and isinstance(server_images, dict)
    if not all(isinstance(n, str) for n in server_names) or not all(
        isinstance(i, str) for i in server_images.values()
    ):
        raise UserError(
            f"{where}: {MANIFEST}: hosts.{name}: server and image names must be strings"
        )
    servers: dict[str, ServerState] = {}
    own: dict[str, bytes] = {}
    buckets: dict[str, dict[str, bytes]] = {str(s): {} for s in server_names}
    for rel, data in host_files.items():
        in_server = artifacts.server_of(rel)
        if in_server is not None and in_server[0] in buckets:
            buckets[in_server[0]][in_server[1]] = data
        else:
            own[rel] = data
    for server in server_names:
        image = server_images.get(server)
        ref = None
        if image is not None:
            if image not in images:
                raise UserError(f"{where}: host {name} server {server}: unknown image {image}")
            ref = images[image].ref
        servers[str(server)] = ServerState(str(server), ref, MappingProxyType(buckets[str(server)]))
    return HostState(
        name=name,
        address=str(entry.get("address", "")),
        group=str(entry.get("group", "")),
        runtime=str(entry.get("runtime", "")),
        servers=MappingProxyType(servers),
        files=MappingProxyType(own),
    )


def state_from_bundle(files: Mapping[str, bytes], origin: StateOrigin, where: str) -> State:
    """A state from a compiled bundle's files (relative path -> bytes, manifest included)."""
    manifest = _manifest(files, where)
    hosts_doc = _typed(manifest.get("hosts"), dict, "hosts", where)
    images_doc = _typed(manifest.get("images"), dict, "images", where)
    assert isinstance(hosts_doc, dict) and isinstance(images_doc, dict)
    by_host: dict[str, dict[str, bytes]] = {}
    for path, data in files.items():
        split = artifacts.split_host_path(path)
        if split is not None:
            by_host.setdefault(split[0], {})[split[1]] = data
    images = {}
    for name, ref in sorted(images_doc.items()):
        dockerfile = files.get(artifacts.DOCKERFILE.path(image=name))
        if not isinstance(ref, str) or dockerfile is None:
            raise UserError(f"{where}: image {name}: reference or Dockerfile missing")
        images[name] = ImageState(name, ref, dockerfile)
    hosts = {
        name: _host_state(name, entry, by_host.get(name, {}), images, where)
        for name, entry in sorted(hosts_doc.items())
    }
    raw_environment = manifest.get("environment")
    environment = str(raw_environment) if raw_environment is not None else None
    return State(
        origin,
        environment,
        MappingProxyType(hosts),
        MappingProxyType(images),
        fingerprint(hosts, images, environment),
    )


def read_bundle_dir(directory: Path) -> dict[str, bytes]:
    """The files a compiled bundle's manifest lists, read from `directory`."""
    try:
        raw = (directory / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{directory}: no {MANIFEST}: not a tfsconf build") from None
    except OSError as exc:
        raise UserError(f"{directory}: cannot read {MANIFEST}: {exc.strerror}") from exc
    files = {MANIFEST: raw}
    manifest = _manifest(files, str(directory))
    artifacts = manifest.get("artifacts")
    if not isinstance(artifacts, dict):
        raise UserError(f"{directory}: {MANIFEST}: artifacts is not a mapping")
    root = directory.resolve()
    for rel in artifacts:
        path = (directory / rel).resolve()
        if not isinstance(rel, str) or rel.startswith("/") or not path.is_relative_to(root):
            raise UserError(f"{directory}: {MANIFEST} lists a path outside the bundle: {rel!r}")
        try:
            files[rel] = path.read_bytes()
        except OSError as exc:
            raise UserError(
                f"{directory}: {rel} is listed in {MANIFEST} but cannot be read "
                f"({exc.strerror}): the bundle is incomplete"
            ) from exc
    return files


class BundleDirSource:
    """``--state <dir>``: a bundle on disk."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def origin(self) -> StateOrigin:
        return StateOrigin("state", str(self.directory))

    def load(self) -> State:
        files = read_bundle_dir(self.directory)
        return state_from_bundle(files, self.origin(), str(self.directory))


class NoState:
    """No current state: the environment is deployed from scratch."""

    def __init__(self, detail: str = "") -> None:
        self.detail = detail

    def origin(self) -> StateOrigin:
        return StateOrigin("none", "", self.detail)

    def load(self) -> State:
        return empty_state(self.origin())
