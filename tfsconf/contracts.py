"""The documents that cross a boundary, one type each, shared by writer and reader.

- manifest.json: written by compile (and by the live source from the host records), read
  by plan's state loader;
- the host record (<config_root>/.tfsconf/state.json and releases/<id>.json): written by
  apply, rollback and repair through the playbooks, read by the live source, rollback,
  drift and status;
- the host work (`tfsconf_work[host]`): written by apply, rollback and repair, read by
  the playbooks (tests/apply/test_contracts.py checks every key they read is here).

The saved plan (plan.json) is typed by plan/model.py's dataclasses, whose as_json and
from_json sit side by side.

TypedDicts, not classes: the documents are JSON, handed as they are to Ansible and
json.dumps, and mypy checks every key written or read by name. This module imports
nothing from tfsconf, so every stage may use it.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# --- manifest.json ---------------------------------------------------------------------


class ManifestHost(TypedDict):
    """A host as the bundle describes it (also the record's `manifest`)."""

    address: str
    group: str
    runtime: str
    servers: list[str]
    server_images: dict[str, str]
    """server -> image name, for docker servers."""


class Manifest(TypedDict):
    generator: str
    schema_version: int
    environment: str
    tfserving_version: NotRequired[str]
    """Absent in a manifest assembled from host records."""
    spec_sha256: NotRequired[str]
    images: dict[str, str]
    """image name -> reference."""
    hosts: dict[str, ManifestHost]
    artifacts: dict[str, str]
    """bundle path -> sha256."""


# --- the host record -------------------------------------------------------------------


class ModelRecord(TypedDict):
    base_path: str
    versions: list[int]
    """The versions the release serves, as resolved when it was applied."""


class HistoryEntry(TypedDict):
    release: str
    applied_at: str
    operator: str
    spec_sha256: str
    kind: WorkKind


class Record(TypedDict):
    schema_version: int
    generator: str
    environment: str
    host: str
    release: str
    spec_sha256: str
    applied_at: str
    operator: str
    manifest: ManifestHost
    images: dict[str, str]
    """image name -> reference."""
    image_files: dict[str, str]
    """image name -> Dockerfile text."""
    files: dict[str, str]
    """The host's artifacts, keyed `<rel>` and `<server>/<rel>`."""
    models: dict[str, ModelRecord]
    history: NotRequired[list[HistoryEntry]]
    """Added by the host module when it writes the record."""


# --- the host work ---------------------------------------------------------------------

WorkKind = Literal["apply", "rollback", "repair"]
ActivationKind = Literal["create", "remove", "rebuild", "restart", "hot-reload", "none"]
""""none": the server's models change on disk only (a version synced under latest/all)."""

Expect = dict[str, list[int] | None]
"""model -> versions that must be AVAILABLE (None: whatever the policy serves)."""


class SmokeItem(TypedDict):
    model: str
    version: int
    warmup: str
    """Path of the warmup file whose requests are sent, on the machine running apply."""
    requests_of: NotRequired[int]
    """The older version whose requests these are (a compatibility check)."""


class Push(TypedDict):
    """One models.config push of a hot reload."""

    models_config: str
    expect: dict[str, list[int]]
    smoke: NotRequired[list[SmokeItem]]
    """The smoke gate before the next push moves traffic (apply only)."""


class Previous(TypedDict):
    """What a server ran before, for the revert of a failed host."""

    release: str | None
    models_config: str | None
    expect: Expect


class Activation(TypedDict):
    server: str
    kind: ActivationKind
    address: str
    grpc_port: int
    reload_deadline: float
    config_poll_seconds: int
    unit: str
    phases: list[Push]
    expect: Expect
    smoke: list[SmokeItem]
    previous: Previous


class SyncSource(TypedDict):
    kind: str
    location: str
    checksums: str


class SyncAuth(TypedDict):
    scheme: str
    username: str | None
    secret: str
    """The name of the secret (a key of tfsconf_secrets), never its value."""


class Sync(TypedDict):
    model: str
    base_path: str
    version: int
    source: SyncSource
    auth: SyncAuth | None
    warmup: str | None
    batching: str | None
    """The version's per-model batching file, staged before it is published."""
    bytes: int


class SyncSettings(TypedDict):
    retries: int
    bwlimit: int


class VersionFile(TypedDict):
    """A file for a version already on the host (content None: remove it)."""

    base_path: str
    version: int
    content: str | None


class VersionPresent(TypedDict):
    base_path: str
    version: int


class ImageWork(TypedDict):
    name: str
    ref: str
    registry: bool
    dockerfile: str


class HostWork(TypedDict):
    kind: WorkKind
    release: str
    config_root: str
    model_root: str
    runtime: str
    base_paths: list[str]
    versions_present: list[VersionPresent]
    """Versions the release serves that must be on disk already (rollback, repair)."""
    need_bytes: int
    gpus: list[int]
    preload: list[str]
    tfserving_version: str
    stage: dict[str, dict[str, str]]
    """server -> its artifacts (relative path -> text), staged as the release."""
    targets: dict[str, str | None]
    rollback_targets: dict[str, str | None]
    removed_servers: list[str]
    syncs: list[Sync]
    sync: SyncSettings
    batching: list[VersionFile]
    batching_revert: list[VersionFile]
    images: list[ImageWork]
    activations: list[Activation]
    record: Record
    keep_releases: int
    timeout: float


class Probe(TypedDict):
    """What the host's preflight checks (`probe` of the host module's lock and preflight
    actions; the host side's PROBE_KEYS lists the same keys)."""

    model_root: str
    base_paths: list[str]
    versions_present: list[VersionPresent]
    need_bytes: int
    syncs: list[Sync]
    gpus: list[int]
    runtime: str
    preload: list[str]
    tfserving_version: str


class Staging(TypedDict):
    """What the lock action stages after the probe (`staging`; the host side's
    STAGING_KEYS lists the same keys): stage's values for this host's release."""

    release: str
    servers: dict[str, dict[str, str]]
    base_paths: list[str]


def staging_of(work: HostWork) -> Staging:
    return Staging(release=work["release"], servers=work["stage"], base_paths=work["base_paths"])


def probe_of(work: HostWork) -> Probe:
    return Probe(
        model_root=work["model_root"],
        base_paths=work["base_paths"],
        versions_present=work["versions_present"],
        need_bytes=work["need_bytes"],
        syncs=work["syncs"],
        gpus=work["gpus"],
        runtime=work["runtime"],
        preload=work["preload"],
        tfserving_version=work["tfserving_version"],
    )
