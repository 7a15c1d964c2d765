"""The spec's shared numeric types and base model, and the settings blocks that layer
(environment -> host group -> server -> model): server flags, batching, monitoring,
session config, warmup. Re-exported by tfsconf.spec.model, where the rest of the spec is;
field descriptions here are read by tfsconf.spec.json_schema like model.py's."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tfsconf.spec.safe import (
    AbsolutePath,
    GrpcChannelArgument,
    Identifier,
    SamplesPath,
    UrlPath,
)

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


class PlainFlag:
    """Marks a server setting that TF Serving takes as the flag of the same name: the
    setting, when some layer writes it, becomes `--name=value` at the line that wrote it
    (tfsconf/resolve/flags.py derives the command line from these marks; the flag's release
    window is tfsconf/tfserving/flag_table.py FLAG_SINCE). pydantic keeps the mark in the
    field's metadata and ignores it: no effect on validation or on the JSON Schema."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "FLAG"


FLAG = PlainFlag()


def plain_flags(cls: type[BaseModel]) -> tuple[str, ...]:
    """The settings of `cls` marked FLAG, in the order they are declared."""
    return tuple(
        name
        for name, field in cls.model_fields.items()
        if any(isinstance(mark, PlainFlag) for mark in field.metadata)
    )


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

    per_process_gpu_memory_fraction: Annotated[
        Annotated[float, Field(gt=0, allow_inf_nan=False)] | None, FLAG
    ] = Field(
        default=None,
        description="Share of the GPU's memory this process takes; above 1 TensorFlow uses "
        "CUDA unified memory (host memory as swap).",
    )
    tensorflow_session_parallelism: Annotated[NonNegative64 | None, FLAG] = None
    """--tensorflow_session_parallelism: threads of the TensorFlow session; 0 (default) lets
    TensorFlow choose. Ignored when intra-op or inter-op parallelism is set; all three at once
    stop the server."""
    tensorflow_intra_op_parallelism: Annotated[NonNegative64 | None, FLAG] = None
    """--tensorflow_intra_op_parallelism: threads one op may use; 0 (default) lets TensorFlow
    choose."""
    tensorflow_inter_op_parallelism: Annotated[NonNegative64 | None, FLAG] = None
    """--tensorflow_inter_op_parallelism: ops run at the same time; 0 (default) lets TensorFlow
    choose."""
    grpc_channel_arguments: list[GrpcChannelArgument] | None = None
    """--grpc_channel_arguments, each key=value (e.g. grpc.max_concurrent_streams=1000); each key
    once."""
    grpc_max_threads: Annotated[Positive | None, FLAG] = None
    """--grpc_max_threads: threads serving gRPC requests; TF Serving's default is 4 per CPU core (TF
    Serving 2.5 or later)."""
    enable_grpc_healthcheck_service: Annotated[bool | None, FLAG] = None
    """--enable_grpc_healthcheck_service: answer the standard grpc.health.v1 health check (TF
    Serving 2.15 or later; default false)."""
    rest_api_num_threads: Annotated[Positive | None, FLAG] = None
    """--rest_api_num_threads: threads serving REST requests; TF Serving's default is 4 per CPU
    core."""
    rest_api_timeout_in_ms: Annotated[NonNegative | None, FLAG] = None
    """--rest_api_timeout_in_ms: deadline of a REST request in milliseconds; TF Serving's default is
    30000."""
    enable_model_warmup: Annotated[bool | None, FLAG] = None
    """--enable_model_warmup: replay each version's assets.extra/tf_serving_warmup_requests before
    serving it (TF Serving's default: true)."""
    num_request_iterations_for_warmup: Annotated[Positive | None, FLAG] = None
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
    file_system_poll_wait_seconds: Annotated[NonNegative | None, FLAG] = None
    """--file_system_poll_wait_seconds: seconds between scans of each base_path for new versions (TF
    Serving's default: 1). Not 0: that scans once at start only, and no new version or model
    would load until a restart."""
    max_num_load_retries: Annotated[NonNegative | None, FLAG] = None
    """--max_num_load_retries: retries of a failed version load (TF Serving's default: 5)."""
    load_retry_interval_micros: Annotated[NonNegative64 | None, FLAG] = None
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
    num_load_threads: Annotated[NonNegative | None, FLAG] = Field(
        default=None, description="0 (TF Serving's default): versions load one at a time."
    )
    num_unload_threads: Annotated[NonNegative | None, FLAG] = None
    """--num_unload_threads: threads unloading versions; 0 (TF Serving's default) unloads one at a
    time."""
    enable_profiler: Annotated[bool | None, FLAG] = Field(
        default=None,
        description="TF Serving's default is true: the profiler service answers on the "
        "public gRPC port.",
    )
    xla_gpu_compilation_enabled: Annotated[bool | None, FLAG] = None
    """--xla_gpu_compilation_enabled: compile the models with XLA on the GPU (TF Serving 2.18 or
    later; default false)."""
    mixed_precision: Annotated[Literal["bfloat16"] | None, FLAG] = None
    """--mixed_precision: bfloat16 runs the models in bfloat16 mixed precision where the CPU
    supports it (TF Serving 2.15 or later; default off)."""
    flush_filesystem_caches: Annotated[bool | None, FLAG] = None
    """--flush_filesystem_caches: flush file-system caches after the versions load, to free memory
    (TF Serving's default: true)."""
    grpc_socket_path: Annotated[AbsolutePath | None, FLAG] = Field(
        default=None,
        description="Also serve gRPC on this UNIX socket (native and process runtimes).",
    )
    enable_signature_method_name_check: Annotated[bool | None, FLAG] = None
    """--enable_signature_method_name_check: refuse a request whose method does not match the
    signature's method_name (TF Serving 2.4 or later; default false)."""
    prefer_tflite_model: Annotated[bool | None, FLAG] = None
    """--prefer_tflite_model: load model.tflite instead of the SavedModel when a version has both
    (TF Serving 2.3 or later; default false)."""
    num_tflite_pools: Annotated[Positive | None, FLAG] = None
    """--num_tflite_pools: TensorFlow Lite interpreter pools (default 1); only used with
    prefer_tflite_model."""
    num_tflite_interpreters_per_pool: Annotated[Positive | None, FLAG] = None
    """--num_tflite_interpreters_per_pool: interpreters in each pool (default 1); only used with
    prefer_tflite_model."""
    enable_serialization_as_tensor_content: Annotated[bool | None, FLAG] = None
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
