"""The environment spec as written in environments/<env>.yaml.

These classes mirror the YAML one to one: unknown keys and wrong types are errors, nothing
is defaulted that the resolver should decide. Settings that layer (environment -> host group
-> server -> model) are optional here; tfsconf.resolve applies the layers and the defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tfsconf.spec.safe import (
    AbsolutePath,
    Address,
    AptPackage,
    EnvName,
    EnvValue,
    GrpcChannelArgument,
    HostName,
    Identifier,
    ImageReference,
    ImageRepository,
    ImageTag,
    LabelName,
    Name,
    RolloutStep,
    SamplesPath,
    TfServingVersion,
    Url,
    UrlPath,
    UserName,
)

SCHEMA_VERSION = 1

# TF Serving reads its numeric flags as int32 or int64 and its proto fields as int64:
# a larger value would pass here and then stop the server or the compile.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
NonNegative = Annotated[int, Field(ge=0, le=INT32_MAX)]
Positive = Annotated[int, Field(gt=0, le=INT32_MAX)]
NonNegative64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
Positive64 = Annotated[int, Field(gt=0, le=INT64_MAX)]
Int64 = Annotated[int, Field(ge=-INT64_MAX - 1, le=INT64_MAX)]
Port = Annotated[int, Field(ge=1, le=65535)]


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- batching -------------------------------------------------------------------------


class BatchingParameters(SpecModel):
    """TF Serving's BatchingParameters; unset fields keep the server's own defaults."""

    max_batch_size: Positive64 | None = None
    batch_timeout_micros: NonNegative64 | None = None
    max_enqueued_batches: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    num_batch_threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    thread_pool_name: Identifier | None = None
    allowed_batch_sizes: list[Int64] | None = None
    pad_variable_length_inputs: bool | None = None
    enable_large_batch_splitting: bool | None = None
    max_execution_batch_size: Positive64 | None = None


class ServerBatching(BatchingParameters):
    """Batching of a server: off, one parameters file for all models, or per model."""

    enabled: bool | None = None
    per_model: bool | None = Field(
        default=None,
        description="Use <version>/batching_params.pbtxt per model "
        "(--enable_per_model_batching_parameters); a model without batching is then not "
        "batched. The fields here are the defaults of every model's batching.",
    )


# --- server settings that layer ---------------------------------------------------------


class Monitoring(SpecModel):
    prometheus: bool | None = None
    path: UrlPath | None = None


class SessionConfig(SpecModel):
    """What tfsconf writes into --tensorflow_session_config_file (a TensorFlow ConfigProto).

    The memory fraction and the parallelism are not here: TF Serving overwrites those
    fields of the file from their own flags (server.cc BuildAndStart).
    """

    gpu_allow_growth: bool | None = Field(
        default=None,
        description="GPUOptions.allow_growth: take GPU memory as needed instead of the "
        "whole per_process_gpu_memory_fraction at start.",
    )
    allow_soft_placement: bool | None = Field(
        default=None,
        description="ConfigProto.allow_soft_placement: run an op on CPU when it has no GPU "
        "kernel instead of failing the load.",
    )


class ServerSettings(SpecModel):
    """TF Serving process settings; layered environment -> host group -> server."""

    per_process_gpu_memory_fraction: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = (
        Field(
            default=None,
            description="Share of the GPU's memory this process takes; above 1 TensorFlow uses "
            "CUDA unified memory (host memory as swap).",
        )
    )
    tensorflow_session_parallelism: NonNegative64 | None = None
    tensorflow_intra_op_parallelism: NonNegative64 | None = None
    tensorflow_inter_op_parallelism: NonNegative64 | None = None
    grpc_channel_arguments: list[GrpcChannelArgument] | None = None
    grpc_max_threads: Positive | None = None
    enable_grpc_healthcheck_service: bool | None = None
    rest_api_num_threads: Positive | None = None
    rest_api_timeout_in_ms: NonNegative | None = None
    enable_model_warmup: bool | None = None
    num_request_iterations_for_warmup: Positive | None = None
    monitoring: Monitoring | None = None
    model_config_reload: Literal["rpc", "poll"] | None = Field(
        default=None,
        description="rpc (default): apply writes models.config then calls "
        "HandleReloadConfigRequest; poll: the server re-reads the file every "
        "model_config_file_poll_wait_seconds. Never both.",
    )
    model_config_file_poll_wait_seconds: NonNegative | None = None
    file_system_poll_wait_seconds: NonNegative | None = None
    max_num_load_retries: NonNegative | None = None
    load_retry_interval_micros: NonNegative64 | None = None
    allow_version_labels_for_unavailable_models: bool | None = None
    batching: ServerBatching | None = None
    session_config: SessionConfig | None = None
    num_load_threads: NonNegative | None = Field(
        default=None, description="0 (TF Serving's default): versions load one at a time."
    )
    num_unload_threads: NonNegative | None = None
    enable_profiler: bool | None = Field(
        default=None,
        description="TF Serving's default is true: the profiler service answers on the "
        "public gRPC port.",
    )
    xla_gpu_compilation_enabled: bool | None = None
    mixed_precision: Literal["bfloat16"] | None = None
    flush_filesystem_caches: bool | None = None
    grpc_socket_path: AbsolutePath | None = Field(
        default=None,
        description="Also serve gRPC on this UNIX socket (native and process runtimes).",
    )
    enable_signature_method_name_check: bool | None = None
    prefer_tflite_model: bool | None = None
    num_tflite_pools: Positive | None = None
    num_tflite_interpreters_per_pool: Positive | None = None
    enable_serialization_as_tensor_content: bool | None = None


# --- model settings that layer -----------------------------------------------------------


class Warmup(SpecModel):
    samples: SamplesPath = Field(
        description="Samples to build warmup requests from (JSONL, CSV or TFRecord of "
        "tf.Example); a relative path is relative to the spec file's directory."
    )
    format: Literal["auto", "jsonl", "csv", "tfrecord"] = "auto"
    records: Annotated[int, Field(ge=1)] = 100
    batch_sizes: list[Positive] | None = Field(
        default=None,
        description="Batch sizes the records cover; defaults to the batching's "
        "allowed_batch_sizes (or 1 when the model is not batched).",
    )


class ModelSettings(SpecModel):
    """Per-model settings; layered environment -> host group -> server -> model."""

    platform: Literal["tensorflow"] | None = None
    signature_name: Identifier | None = None
    warmup: Warmup | None = None
    batching: BatchingParameters | None = None


class Defaults(SpecModel):
    server: ServerSettings | None = None
    model: ModelSettings | None = None


# --- models -------------------------------------------------------------------------------


class LatestPolicy(SpecModel):
    policy: Literal["latest"]
    count: Annotated[int, Field(ge=1, le=1000)] = 1


class AllPolicy(SpecModel):
    policy: Literal["all"]


class SpecificPolicy(SpecModel):
    policy: Literal["specific"]
    versions: list[Int64]


VersionPolicy = Annotated[LatestPolicy | AllPolicy | SpecificPolicy, Field(discriminator="policy")]


class LocalSource(SpecModel):
    kind: Literal["local"]
    path: AbsolutePath = Field(description="Directory holding <version>/ subdirectories.")


class HttpAuth(SpecModel):
    """HTTP basic authentication. The password is never written in the spec: apply reads
    it from an environment variable of the machine it runs on."""

    username: UserName
    password_env: EnvName = Field(
        description="Environment variable holding the password (read at apply time)."
    )


class WebhdfsAuth(SpecModel):
    """A WebHDFS delegation token, read at apply time from an environment variable."""

    delegation_env: EnvName = Field(
        description="Environment variable holding the delegation token (sent as delegation=)."
    )


class HttpSource(SpecModel):
    kind: Literal["http"]
    url: Url = Field(description="Base URL; versions are fetched from <url>/<version>/.")
    checksums: Literal["sha256", "md5"] = "sha256"
    auth: HttpAuth | None = None


class WebhdfsSource(SpecModel):
    kind: Literal["webhdfs"]
    url: Url = Field(description="webhdfs://namenode:9870/path of the model's versions.")
    checksums: Literal["sha256", "md5"] = "md5"
    auth: WebhdfsAuth | None = None


ModelSource = Annotated[LocalSource | HttpSource | WebhdfsSource, Field(discriminator="kind")]


class Model(ModelSettings):
    name: Name
    base_path: AbsolutePath = Field(
        description="Where the versions live on the host (and in the container): must be "
        "under paths.model_root."
    )
    source: ModelSource
    versions: VersionPolicy | None = Field(
        default=None, description="Version policy; TF Serving's default is latest 1."
    )
    labels: dict[LabelName, Int64] | None = None


# --- image, hosts, servers ------------------------------------------------------------


class Allocator(SpecModel):
    kind: Literal["jemalloc", "tcmalloc", "system"] = "jemalloc"
    malloc_conf: EnvValue | None = None
    package: AptPackage | None = Field(
        default=None,
        description="Pinned package, name=version; defaults to the one of the Ubuntu under "
        "the tensorflow/serving release (known for 2.5 to 2.20).",
    )
    library: AbsolutePath | None = Field(
        default=None,
        description="File to LD_PRELOAD; defaults to the package's file for the release.",
    )


class Image(SpecModel):
    base_gpu: ImageReference | None = Field(
        default=None, description="Base of the GPU image; default tensorflow/serving:<version>-gpu."
    )
    base_cpu: ImageReference | None = Field(
        default=None, description="Base of the CPU image; default tensorflow/serving:<version>."
    )
    allocator: Allocator = Allocator()
    extra_packages: list[AptPackage] = []
    registry: ImageRepository | None = Field(
        default=None, description="Pull pre-built images from here instead of building."
    )
    tag: ImageTag | None = None


class Connection(SpecModel):
    user: Name | None = None
    port: Port | None = None
    private_key_file: AbsolutePath | None = None
    known_hosts_file: AbsolutePath | None = None
    host_key_checking: bool | None = None
    become: bool | None = None


class Host(SpecModel):
    name: HostName
    address: Address
    gpus: Annotated[int, Field(ge=0, le=1024)] = 0
    connection: Connection | None = None


class Rollout(SpecModel):
    step: RolloutStep | None = Field(
        default=None, description='Hosts per rollout step: a count (2) or a percentage ("25%").'
    )
    max_fail_percentage: Annotated[int, Field(ge=0, le=100)] | None = None
    health_timeout_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    keep_releases: Annotated[int, Field(ge=1, le=100)] | None = None


DockerNetwork = Literal["bridge", "host"]
_NETWORK_HELP = (
    "Container networking of the docker runtime: bridge publishes the server's ports, host "
    "shares the host's network stack (no NAT, no docker-proxy; needs no bridge on the host)."
)


class HostGroup(SpecModel):
    hosts: list[Host]
    runtime: Literal["docker", "native", "process"] | None = None
    docker_network: DockerNetwork | None = Field(default=None, description=_NETWORK_HELP)
    connection: Connection | None = None
    rollout: Rollout | None = None
    defaults: Defaults | None = None


class Server(ServerSettings):
    name: Name
    group: Name
    gpu: Annotated[int, Field(ge=0, le=1023)] | None = Field(
        default=None, description="GPU index; omit for a CPU server."
    )
    grpc_port: Port = 8500
    rest_port: Annotated[int, Field(ge=0, le=65535)] = 8501
    models: list[Name]
    model_defaults: ModelSettings | None = None


class Paths(SpecModel):
    model_root: AbsolutePath = "/srv/tfserving/models"
    config_root: AbsolutePath = "/srv/tfserving/config"


class Environment(SpecModel):
    """One environment: the whole TF Serving estate it runs."""

    schema_version: Literal[1] = 1
    environment: Name
    tfserving_version: TfServingVersion
    image: Image = Image()
    paths: Paths = Paths()
    connection: Connection | None = None
    runtime: Literal["docker", "native", "process"] = "docker"
    docker_network: DockerNetwork = Field(default="bridge", description=_NETWORK_HELP)
    rollout: Rollout | None = None
    defaults: Defaults | None = None
    host_groups: dict[Name, HostGroup]
    servers: list[Server]
    models: list[Model]
