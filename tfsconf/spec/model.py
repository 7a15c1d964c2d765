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
    """Largest batch the server forms (requests are merged up to this many examples); unset: TF
    Serving's default, 1000."""
    batch_timeout_micros: NonNegative64 | None = None
    """Microseconds a partial batch waits for more requests before it runs; 0 (TF Serving's default)
    runs at once. CPU: start at 0, then try 1-10 ms; GPU: tune max_batch_size with a high timeout
    first."""
    max_enqueued_batches: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    """Batches that may wait in the queue; when full, new requests are refused (UNAVAILABLE). For
    online serving, about num_batch_threads."""
    num_batch_threads: Annotated[int, Field(ge=1, le=4096)] | None = None
    """Threads that run batches in parallel (the server's batch thread pool; usually the CPU core
    count). A server setting: not allowed in a model's batching."""
    thread_pool_name: Identifier | None = None
    """Name of the batch thread pool; a server setting, not allowed in a model's batching."""
    allowed_batch_sizes: list[Int64] | None = None
    """Sizes a batch is padded up to, strictly increasing; the last must equal max_batch_size (TF
    Serving refuses the file otherwise)."""
    pad_variable_length_inputs: bool | None = None
    """Pad inputs of different lengths in one batch to the longest (TF Serving's default: false)."""
    enable_large_batch_splitting: bool | None = None
    """Split a request larger than max_execution_batch_size across batches (TF Serving 2.4 or later;
    needs max_batch_size or max_execution_batch_size)."""
    max_execution_batch_size: Positive64 | None = None
    """Largest batch actually executed when large batch splitting is on; at most max_batch_size (TF
    Serving 2.4 or later)."""


class ServerBatching(BatchingParameters):
    """Batching of a server: off, one parameters file for all models, or per model."""

    enabled: bool | None = None
    """--enable_batching. Default: true when this block sets any parameter, else false."""
    per_model: bool | None = Field(
        default=None,
        description="Use <version>/batching_params.pbtxt per model "
        "(--enable_per_model_batching_parameters); a model without batching is then not "
        "batched. The fields here are the defaults of every model's batching.",
    )


# --- server settings that layer ---------------------------------------------------------


class Monitoring(SpecModel):
    """Prometheus metrics of a server (MonitoringConfig), served on its REST port."""

    prometheus: bool | None = None
    """Serve Prometheus metrics (MonitoringConfig, --monitoring_config_file) on the REST port; needs
    rest_port other than 0."""
    path: UrlPath | None = None
    """HTTP path of the metrics on the REST port; TF Serving's default is
    /monitoring/prometheus/metrics."""


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
    """--tensorflow_session_parallelism: threads of the TensorFlow session; 0 (default) lets
    TensorFlow choose. Ignored when intra-op or inter-op parallelism is set; all three at once
    stop the server."""
    tensorflow_intra_op_parallelism: NonNegative64 | None = None
    """--tensorflow_intra_op_parallelism: threads one op may use; 0 (default) lets TensorFlow
    choose."""
    tensorflow_inter_op_parallelism: NonNegative64 | None = None
    """--tensorflow_inter_op_parallelism: ops run at the same time; 0 (default) lets TensorFlow
    choose."""
    grpc_channel_arguments: list[GrpcChannelArgument] | None = None
    """--grpc_channel_arguments, each key=value (e.g. grpc.max_concurrent_streams=1000); each key
    once."""
    grpc_max_threads: Positive | None = None
    """--grpc_max_threads: threads serving gRPC requests; TF Serving's default is 4 per CPU core (TF
    Serving 2.5 or later)."""
    enable_grpc_healthcheck_service: bool | None = None
    """--enable_grpc_healthcheck_service: answer the standard grpc.health.v1 health check (TF
    Serving 2.15 or later; default false)."""
    rest_api_num_threads: Positive | None = None
    """--rest_api_num_threads: threads serving REST requests; TF Serving's default is 4 per CPU
    core."""
    rest_api_timeout_in_ms: NonNegative | None = None
    """--rest_api_timeout_in_ms: deadline of a REST request in milliseconds; TF Serving's default is
    30000."""
    enable_model_warmup: bool | None = None
    """--enable_model_warmup: replay each version's assets.extra/tf_serving_warmup_requests before
    serving it (TF Serving's default: true)."""
    num_request_iterations_for_warmup: Positive | None = None
    """--num_request_iterations_for_warmup: times each warmup record is replayed (default 1; TF
    Serving 2.8 or later)."""
    monitoring: Monitoring | None = None
    """Prometheus metrics on the REST port (--monitoring_config_file)."""
    model_config_reload: Literal["rpc", "poll"] | None = Field(
        default=None,
        description="rpc (default): apply writes models.config then calls "
        "HandleReloadConfigRequest; poll: the server re-reads the file every "
        "model_config_file_poll_wait_seconds. Never both.",
    )
    model_config_file_poll_wait_seconds: NonNegative | None = None
    """--model_config_file_poll_wait_seconds: seconds between re-reads of models.config; 0 (default)
    never re-reads. Must be 0 with model_config_reload: rpc, above 0 with poll."""
    file_system_poll_wait_seconds: NonNegative | None = None
    """--file_system_poll_wait_seconds: seconds between scans of each base_path for new versions (TF
    Serving's default: 1). Not 0: that scans once at start only, and no new version or model
    would load until a restart."""
    max_num_load_retries: NonNegative | None = None
    """--max_num_load_retries: retries of a failed version load (TF Serving's default: 5)."""
    load_retry_interval_micros: NonNegative64 | None = None
    """--load_retry_interval_micros: microseconds between load retries (TF Serving's default:
    60000000, one minute)."""
    allow_version_labels_for_unavailable_models: bool | None = None
    """--allow_version_labels_for_unavailable_models: let a new label point at a version not yet
    loaded. tfsconf writes true unless set: TF Serving checks labels before it loads anything, so
    false is refused on a server with labelled models."""
    batching: ServerBatching | None = None
    """Request batching of this server: --enable_batching and --batching_parameters_file; omit to
    leave batching off."""
    session_config: SessionConfig | None = None
    """TensorFlow session options, written to --tensorflow_session_config_file (TF Serving 2.8 or
    later)."""
    num_load_threads: NonNegative | None = Field(
        default=None, description="0 (TF Serving's default): versions load one at a time."
    )
    num_unload_threads: NonNegative | None = None
    """--num_unload_threads: threads unloading versions; 0 (TF Serving's default) unloads one at a
    time."""
    enable_profiler: bool | None = Field(
        default=None,
        description="TF Serving's default is true: the profiler service answers on the "
        "public gRPC port.",
    )
    xla_gpu_compilation_enabled: bool | None = None
    """--xla_gpu_compilation_enabled: compile the models with XLA on the GPU (TF Serving 2.18 or
    later; default false)."""
    mixed_precision: Literal["bfloat16"] | None = None
    """--mixed_precision: bfloat16 runs the models in bfloat16 mixed precision where the CPU
    supports it (TF Serving 2.15 or later; default off)."""
    flush_filesystem_caches: bool | None = None
    """--flush_filesystem_caches: flush file-system caches after the versions load, to free memory
    (TF Serving's default: true)."""
    grpc_socket_path: AbsolutePath | None = Field(
        default=None,
        description="Also serve gRPC on this UNIX socket (native and process runtimes).",
    )
    enable_signature_method_name_check: bool | None = None
    """--enable_signature_method_name_check: refuse a request whose method does not match the
    signature's method_name (TF Serving 2.4 or later; default false)."""
    prefer_tflite_model: bool | None = None
    """--prefer_tflite_model: load model.tflite instead of the SavedModel when a version has both
    (TF Serving 2.3 or later; default false)."""
    num_tflite_pools: Positive | None = None
    """--num_tflite_pools: TensorFlow Lite interpreter pools (default 1); only used with
    prefer_tflite_model."""
    num_tflite_interpreters_per_pool: Positive | None = None
    """--num_tflite_interpreters_per_pool: interpreters in each pool (default 1); only used with
    prefer_tflite_model."""
    enable_serialization_as_tensor_content: bool | None = None
    """--enable_serialization_as_tensor_content: write predict responses as packed tensor_content
    (TF Serving 2.19 or later; default false)."""


# --- model settings that layer -----------------------------------------------------------


class Warmup(SpecModel):
    """Warmup requests built from sample data into each version's
    assets.extra/tf_serving_warmup_requests, replayed by TF Serving before it serves the
    version."""

    samples: SamplesPath = Field(
        description="Samples to build warmup requests from (JSONL, CSV or TFRecord of "
        "tf.Example); a relative path is relative to the spec file's directory."
    )
    format: Literal["auto", "jsonl", "csv", "tfrecord"] = "auto"
    """Format of the samples file; auto (default) reads it from the extension (.jsonl, .ndjson,
    .csv, .tfrecord, .tfrecords)."""
    records: Annotated[int, Field(ge=1)] = 100
    """Warmup records to write (default 100); TF Serving replays at most 1000."""
    batch_sizes: list[Positive] | None = Field(
        default=None,
        description="Batch sizes the records cover; defaults to the batching's "
        "allowed_batch_sizes (or 1 when the model is not batched).",
    )


class ModelSettings(SpecModel):
    """Per-model settings; layered environment -> host group -> server -> model."""

    platform: Literal["tensorflow"] | None = None
    """ModelConfig.model_platform; tensorflow (the default) is the only one the stock server loads
    from a SavedModel."""
    signature_name: Identifier | None = None
    """Signature the warmup requests and checks use (default: serving_default)."""
    warmup: Warmup | None = None
    """Build a warmup file (assets.extra/tf_serving_warmup_requests) for each version from sample
    data; TF Serving replays it before serving the version."""
    batching: BatchingParameters | None = None
    """This model's own batching (<version>/batching_params.pbtxt); only with batching.per_model:
    true on its server. Queue options only."""


class Defaults(SpecModel):
    """Settings inherited by everything below this level unless it sets its own."""

    server: ServerSettings | None = None
    """Server settings every server below inherits unless it sets its own."""
    model: ModelSettings | None = None
    """Model settings every model served below inherits unless it sets its own."""


# --- models -------------------------------------------------------------------------------


class LatestPolicy(SpecModel):
    """Serve the newest `count` versions."""

    policy: Literal["latest"]
    """Serve the newest versions (TF Serving's default policy: latest 1)."""
    count: Annotated[int, Field(ge=1, le=1000)] = 1
    """How many of the newest versions to serve (default 1)."""


class AllPolicy(SpecModel):
    """Serve every version under base_path."""

    policy: Literal["all"]
    """Serve every version found under base_path."""


class SpecificPolicy(SpecModel):
    """Serve exactly the listed versions."""

    policy: Literal["specific"]
    """Serve exactly the versions listed."""
    versions: list[Int64]
    """The version numbers to serve: positive, each once."""


VersionPolicy = Annotated[LatestPolicy | AllPolicy | SpecificPolicy, Field(discriminator="policy")]


class LocalSource(SpecModel):
    """Versions copied from a directory on the machine that runs apply."""

    kind: Literal["local"]
    """Copy versions from a directory on the machine that runs apply."""
    path: AbsolutePath = Field(description="Directory holding <version>/ subdirectories.")


class HttpAuth(SpecModel):
    """HTTP basic authentication. The password is never written in the spec: apply reads
    it from an environment variable of the machine it runs on."""

    username: UserName
    """User name for HTTP basic authentication."""
    password_env: EnvName = Field(
        description="Environment variable holding the password (read at apply time)."
    )


class WebhdfsAuth(SpecModel):
    """A WebHDFS delegation token, read at apply time from an environment variable."""

    delegation_env: EnvName = Field(
        description="Environment variable holding the delegation token (sent as delegation=)."
    )


class HttpSource(SpecModel):
    """Versions downloaded over HTTP(S), verified against published checksums."""

    kind: Literal["http"]
    """Fetch versions over HTTP(S)."""
    url: Url = Field(description="Base URL; versions are fetched from <url>/<version>/.")
    checksums: Literal["sha256", "md5"] = "sha256"
    """How each downloaded file is verified: sha256 (default) reads <url>/<version>/.tfsconf-
    manifest.json, md5 reads <url>/<version>/MD5SUMS."""
    auth: HttpAuth | None = None
    """HTTP basic authentication; the password comes from an environment variable."""


class WebhdfsSource(SpecModel):
    """Versions downloaded from HDFS over WebHDFS, verified against checksums."""

    kind: Literal["webhdfs"]
    """Fetch versions from HDFS over WebHDFS."""
    url: Url = Field(description="webhdfs://namenode:9870/path of the model's versions.")
    checksums: Literal["sha256", "md5"] = "md5"
    """How each downloaded file is verified: md5 (default) reads <version>/MD5SUMS, sha256 reads
    <version>/.tfsconf-manifest.json."""
    auth: WebhdfsAuth | None = None
    """A delegation token from an environment variable."""


ModelSource = Annotated[LocalSource | HttpSource | WebhdfsSource, Field(discriminator="kind")]


class Model(ModelSettings):
    """A model: where its versions come from, where they live on the hosts, which
    versions are served and under which labels."""

    name: Name
    """Model name clients ask for (ModelConfig.name); unique in the environment."""
    base_path: AbsolutePath = Field(
        description="Where the versions live on the host (and in the container): must be "
        "under paths.model_root."
    )
    source: ModelSource
    """Where apply copies the versions from: kind local, http or webhdfs."""
    versions: VersionPolicy | None = Field(
        default=None, description="Version policy; TF Serving's default is latest 1."
    )
    labels: dict[LabelName, Int64] | None = None
    """Version labels (ModelConfig.version_labels), label -> version, e.g. stable: 42. A label may
    only point at a version the policy serves."""


# --- image, hosts, servers ------------------------------------------------------------


class Allocator(SpecModel):
    """The memory allocator preloaded into TF Serving (LD_PRELOAD)."""

    kind: Literal["jemalloc", "tcmalloc", "system"] = "jemalloc"
    """Memory allocator preloaded into the server: jemalloc (default) or tcmalloc give freed model
    memory back to the OS on a version swap; system keeps glibc malloc."""
    malloc_conf: EnvValue | None = None
    """MALLOC_CONF of jemalloc, e.g. background_thread:true,dirty_decay_ms:1000 (jemalloc only)."""
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
    """The serving image every docker server runs."""

    base_gpu: ImageReference | None = Field(
        default=None, description="Base of the GPU image; default tensorflow/serving:<version>-gpu."
    )
    base_cpu: ImageReference | None = Field(
        default=None, description="Base of the CPU image; default tensorflow/serving:<version>."
    )
    allocator: Allocator = Allocator()
    """Memory allocator of the image (LD_PRELOAD)."""
    extra_packages: list[AptPackage] = []
    """More apt packages for the image, each pinned as name=version."""
    registry: ImageRepository | None = Field(
        default=None, description="Pull pre-built images from here instead of building."
    )
    tag: ImageTag | None = None
    """Tag of the pre-built image in registry; needs registry."""


class Connection(SpecModel):
    """How apply reaches a host over SSH (Ansible connection settings)."""

    user: Name | None = None
    """SSH user (default: the user running apply)."""
    port: Port | None = None
    """SSH port (default 22)."""
    private_key_file: AbsolutePath | None = None
    """SSH private key on the machine that runs apply."""
    known_hosts_file: AbsolutePath | None = None
    """known_hosts file holding the hosts' keys (default: the user's)."""
    host_key_checking: bool | None = None
    """Check the hosts' SSH keys (default true). false is insecure and is written where a reviewer
    sees it."""
    become: bool | None = None
    """Run the host tasks with sudo (default false)."""


class Host(SpecModel):
    """One machine of a host group."""

    name: HostName
    """Host name in plans, reports and the Ansible inventory; unique."""
    address: Address
    """IP address or DNS name apply connects to (SSH) and calls TF Serving at."""
    gpus: Annotated[int, Field(ge=0, le=1024)] = 0
    """Number of GPUs on the host (default 0); a server's gpu index must be below it."""
    connection: Connection | None = None
    """SSH settings of this host; override the group's and the environment's."""


class Rollout(SpecModel):
    """How a host group is rolled out: hosts per step, failures tolerated, health
    timeout, releases kept."""

    step: RolloutStep | None = Field(
        default=None, description='Hosts per rollout step: a count (2) or a percentage ("25%").'
    )
    max_fail_percentage: Annotated[int, Field(ge=0, le=100)] | None = None
    """Percentage of a group's hosts that may fail before the rollout stops (Ansible's
    max_fail_percentage; default 0: the first failure stops it)."""
    health_timeout_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    """Seconds a host's servers have to report every version AVAILABLE after a change before the
    host is rolled back (default 300)."""
    keep_releases: Annotated[int, Field(ge=1, le=100)] | None = None
    """Releases kept on each host for rollback (default 5)."""


DockerNetwork = Literal["bridge", "host"]
_NETWORK_HELP = (
    "Container networking of the docker runtime: bridge publishes the server's ports, host "
    "shares the host's network stack (no NAT, no docker-proxy; needs no bridge on the host)."
)


class HostGroup(SpecModel):
    """Hosts that run the same servers, with their own connection, rollout and
    defaults."""

    hosts: list[Host]
    """The hosts of this group; at least one. Every server of the group runs on each."""
    runtime: Literal["docker", "native", "process"] | None = None
    """How the servers run: docker (a container per server), native (a systemd unit running
    tensorflow_model_server) or process; default: the environment's."""
    docker_network: DockerNetwork | None = Field(default=None, description=_NETWORK_HELP)
    connection: Connection | None = None
    """SSH settings of the group's hosts; override the environment's."""
    rollout: Rollout | None = None
    """Rollout steps of this group; override the environment's."""
    defaults: Defaults | None = None
    """Server and model settings of this group; override the environment's."""


class Server(ServerSettings):
    """One TF Serving process on every host of its group, with its ports, GPU and
    models."""

    name: Name
    """Server name (one TF Serving process on each host of its group); unique."""
    group: Name
    """Host group the server runs on (a key of host_groups)."""
    gpu: Annotated[int, Field(ge=0, le=1023)] | None = Field(
        default=None, description="GPU index; omit for a CPU server."
    )
    grpc_port: Port = 8500
    """--port, the gRPC port (default 8500); unique among the group's servers."""
    rest_port: Annotated[int, Field(ge=0, le=65535)] = 8501
    """--rest_api_port, the REST port (default 8501); 0 turns REST off. Must differ from
    grpc_port."""
    models: list[Name]
    """Names of the models this server serves (from models), each once."""
    model_defaults: ModelSettings | None = None
    """Model settings for the models of this server; override the environment's and the group's."""


class Paths(SpecModel):
    """Where models and configs live on the hosts."""

    model_root: AbsolutePath = "/srv/tfserving/models"
    """Directory on the hosts holding every model's base_path (default /srv/tfserving/models);
    mounted read-only into containers at the same path."""
    config_root: AbsolutePath = "/srv/tfserving/config"
    """Directory on the hosts for the servers' config releases (default /srv/tfserving/config); not
    inside model_root."""


class Environment(SpecModel):
    """One environment: the whole TF Serving estate it runs."""

    schema_version: Literal[1] = 1
    """Version of this file format; 1."""
    environment: Name
    """Name of the environment (e.g. production); the file is usually environments/<name>.yaml."""
    tfserving_version: TfServingVersion
    """TF Serving release to run, quoted: "2.18.0". Flags and batching fields are checked against it
    (1.15 or later)."""
    image: Image = Image()
    """The serving image: base images, memory allocator, extra packages, or a pre-built image from a
    registry."""
    paths: Paths = Paths()
    """Where models and configs live on the hosts."""
    connection: Connection | None = None
    """SSH settings for every host (host groups and hosts override them)."""
    runtime: Literal["docker", "native", "process"] = "docker"
    """How servers run: docker (default; a container per server), native (systemd unit) or
    process."""
    docker_network: DockerNetwork = Field(default="bridge", description=_NETWORK_HELP)
    rollout: Rollout | None = None
    """Rollout steps for every group (groups override them)."""
    defaults: Defaults | None = None
    """Server and model settings every server and model inherits."""
    host_groups: dict[Name, HostGroup]
    """Host groups by name: hosts that run the same servers."""
    servers: list[Server]
    """TF Serving processes: each runs on every host of its group."""
    models: list[Model]
    """The models: where their versions come from and how they are served."""
