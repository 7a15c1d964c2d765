"""The resolved environment: every default applied, every reference followed.

Compilers read only these classes. They are immutable NamedTuples: a frozen dataclass costs
about ten times more to define, and `tfsconf validate` pays that at every start. For
layered settings they keep the spec path each value came from, so that checks made after
resolution still point at the line the user wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple

from tfsconf.diagnostics import Path

NO_ORIGINS: Mapping[str, Path] = MappingProxyType({})

Runtime = Literal["docker", "native", "process"]

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


class Batching(NamedTuple):
    max_batch_size: int | None = None
    batch_timeout_micros: int | None = None
    max_enqueued_batches: int | None = None
    num_batch_threads: int | None = None
    thread_pool_name: str | None = None
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool | None = None
    enable_large_batch_splitting: bool | None = None
    max_execution_batch_size: int | None = None


class SessionConfig(NamedTuple):
    """The TensorFlow ConfigProto fields tfsconf writes to the session config file."""

    gpu_allow_growth: bool | None = None
    allow_soft_placement: bool | None = None


class ServerSettings(NamedTuple):
    per_process_gpu_memory_fraction: float | None = None
    tensorflow_session_parallelism: int | None = None
    tensorflow_intra_op_parallelism: int | None = None
    tensorflow_inter_op_parallelism: int | None = None
    grpc_channel_arguments: tuple[str, ...] = ()
    grpc_max_threads: int | None = None
    enable_grpc_healthcheck_service: bool | None = None
    rest_api_num_threads: int | None = None
    rest_api_timeout_in_ms: int | None = None
    enable_model_warmup: bool = True
    num_request_iterations_for_warmup: int | None = None
    prometheus: bool = False
    prometheus_path: str = "/monitoring/prometheus/metrics"
    model_config_reload: Literal["rpc", "poll"] = "rpc"
    model_config_file_poll_wait_seconds: int = 0
    file_system_poll_wait_seconds: int | None = None
    max_num_load_retries: int | None = None
    load_retry_interval_micros: int | None = None
    allow_version_labels_for_unavailable_models: bool | None = None
    batching_enabled: bool = False
    batching_per_model: bool = False
    batching: Batching | None = None
    session_config: SessionConfig | None = None
    num_load_threads: int | None = None
    num_unload_threads: int | None = None
    enable_profiler: bool | None = None
    xla_gpu_compilation_enabled: bool | None = None
    mixed_precision: str | None = None
    flush_filesystem_caches: bool | None = None
    grpc_socket_path: str | None = None
    enable_signature_method_name_check: bool | None = None
    prefer_tflite_model: bool | None = None
    num_tflite_pools: int | None = None
    num_tflite_interpreters_per_pool: int | None = None
    enable_serialization_as_tensor_content: bool | None = None
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
    kind: Literal["local", "http", "webhdfs"]
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
