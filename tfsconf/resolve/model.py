"""The resolved environment: every default applied, every reference followed.

Compilers read only these classes. They are immutable NamedTuples: a frozen dataclass costs
about ten times more to define, and `tfsconf validate` pays that at every start. For
layered settings they keep the spec path each value came from, so that checks made after
resolution still point at the line the user wrote.

A setting whose resolved value is the value written is not declared again here: the
server settings keep the spec's merged block (`ServerSettings.layered`), and the batching
and session config blocks are the spec's own frozen classes. Only what resolution changes
(a default tfsconf applies, a block turned into what compile writes) has a field here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple

from tfsconf.diagnostics import Path
from tfsconf.kinds import Runtime, SourceKind
from tfsconf.spec import settings as s

NO_ORIGINS: Mapping[str, Path] = MappingProxyType({})


_LAYER_RANK = {"defaults": 1, "host_groups": 2, "servers": 3, "models": 4}


def most_specific(paths: list[Path]) -> Path:
    """The path in the most specific layer (model > server > host group > environment):
    the place a user most likely has to change."""
    best: Path = paths[0]
    for path in paths:  # on a tie, the last one: the setting that completed the conflict
        if _rank(path) >= _rank(best):
            best = path
    return best


def _rank(path: Path) -> int:
    return _LAYER_RANK.get(str(path[0]), 0) if path else 0


def lookup_origin(origins: Mapping[str, Path], name: str, fallback: Path) -> Path:
    """Origin of setting `name`; for a block (e.g. "batching") whose keys were set
    separately, the block in the most specific layer that set any of them."""
    found = origins.get(name)
    if found is not None:
        return found
    prefix = name + "."
    blocks = [
        path[: len(path) - key[len(prefix) :].count(".") - 1]
        for key, path in origins.items()
        if key.startswith(prefix)
    ]
    return most_specific(blocks) if blocks else fallback


AllocatorKind = Literal["jemalloc", "tcmalloc", "system"]
DockerNetwork = Literal["bridge", "host"]


Batching = s.BatchingParameters
"""Resolved batching is the spec's block as the layers merged it: the resolved value of each
field is the one written (unset keeps TF Serving's default), so the fields are declared once,
in tfsconf/spec/settings.py, and compile writes them from the proto descriptor."""

SessionConfig = s.SessionConfig
"""The TensorFlow ConfigProto fields tfsconf writes, as the layers merged them."""


class ServerSettings(NamedTuple):
    """A server's settings. `layered` holds every setting as the layers wrote it; the
    fields after it are only the settings whose resolved form differs from what was written
    (a default tfsconf applies, or a block turned into what compile writes). A plain flag
    (a spec field marked FLAG) is read from `layered`: it needs nothing here."""

    layered: s.ServerSettings = s.ServerSettings()
    """The spec's class, merged environment -> host group -> server (unset fields None)."""
    model_config_reload: Literal["rpc", "poll"] = "rpc"
    model_config_file_poll_wait_seconds: int = 0
    prometheus: bool = False
    prometheus_path: str = "/monitoring/prometheus/metrics"
    batching_enabled: bool = False
    batching_per_model: bool = False
    batching: Batching | None = None
    session_config: SessionConfig | None = None
    batching_thread_pool: Batching | None = None
    """Per-model servers: num_batch_threads and thread_pool_name, which TF Serving takes
    from --batching_parameters_file only (a version's own file sets its queue only)."""
    origins: Mapping[str, Path] = NO_ORIGINS

    def origin(self, name: str, fallback: Path) -> Path:
        """Spec path where the setting `name` (dotted, as in the YAML) was written."""
        return lookup_origin(self.origins, name, fallback)


class Warmup(NamedTuple):
    samples: str
    """Absolute path on the machine that compiles (resolved against the spec's directory)."""
    samples_as_written: str
    format: str
    records: int
    batch_sizes: tuple[int, ...]


class VersionPolicy(NamedTuple):
    kind: Literal["latest", "all", "specific"]
    num_versions: int = 1
    versions: tuple[int, ...] = ()

    def describe(self) -> str:
        if self.kind == "latest":
            return f"latest {self.num_versions}"
        if self.kind == "all":
            return "all"
        return "specific " + ", ".join(str(v) for v in self.versions)


class SourceAuth(NamedTuple):
    """How to authenticate to a source; the secret itself is only named (an environment
    variable read at apply time), never held here."""

    scheme: Literal["basic", "delegation"]
    secret_env: str
    username: str | None = None


class Source(NamedTuple):
    kind: SourceKind
    location: str
    checksums: Literal["sha256", "md5"] = "sha256"
    auth: SourceAuth | None = None


class Model(NamedTuple):
    """A model as one server serves it (model settings layer through the server)."""

    name: str
    platform: str
    base_path: str
    source: Source
    policy: VersionPolicy
    policy_is_default: bool
    labels: tuple[tuple[str, int], ...]
    signature_name: str
    warmup: Warmup | None
    batching: Batching | None
    """Per-model batching parameters; only set when the server batches per model."""
    spec_path: Path
    origins: Mapping[str, Path] = NO_ORIGINS

    def origin(self, name: str) -> Path:
        return lookup_origin(self.origins, name, self.spec_path)


class Image(NamedTuple):
    """A serving image: one per device kind (gpu, cpu) that the environment uses."""

    name: str
    base: str
    allocator: AllocatorKind
    allocator_package: str | None
    allocator_library: str | None
    malloc_conf: str | None
    extra_packages: tuple[str, ...]
    registry: str | None
    tag: str | None


class Server(NamedTuple):
    """One TF Serving process definition; the same object is shared by every host of its
    group, so compilers may cache by identity."""

    name: str
    group: str
    gpu: int | None
    grpc_port: int
    rest_port: int
    image: str
    runtime: Runtime
    config_dir: str
    model_root: str
    settings: ServerSettings
    models: tuple[Model, ...]
    spec_path: Path
    docker_network: DockerNetwork = "bridge"


class JumpHost(NamedTuple):
    address: str
    user: str | None
    port: int


class Connection(NamedTuple):
    user: str | None
    port: int
    private_key_file: str | None
    known_hosts_file: str | None
    host_key_checking: bool
    become: bool
    jump_host: JumpHost | None = None
    grpc_via: Literal["direct", "ssh"] = "direct"
    """ssh: every gRPC call of the controller goes through an SSH port forward."""


class Rollout(NamedTuple):
    step: int | str
    max_fail_percentage: int
    health_timeout_seconds: int
    keep_releases: int


class Host(NamedTuple):
    name: str
    address: str
    group: str
    gpus: int
    connection: Connection
    runtime: Runtime
    servers: tuple[Server, ...]
    spec_path: Path


class Group(NamedTuple):
    name: str
    hosts: tuple[str, ...]
    rollout: Rollout
    runtime: Runtime


class Environment(NamedTuple):
    name: str
    tfserving_version: str
    spec_file: str
    spec_sha256: str
    model_root: str
    config_root: str
    images: tuple[Image, ...]
    groups: tuple[Group, ...]
    hosts: tuple[Host, ...]

    def image(self, name: str) -> Image:
        for image in self.images:
            if image.name == name:
                return image
        raise KeyError(name)
