"""A stand-in for ``tensorflow_model_server``, used ONLY by tfsconf's tests.

This is not TF Serving and never serves a real model. The test bed starts it in place of
``tensorflow_model_server`` (same ``--name=value`` flags) so that tfsconf's apply playbooks
can be exercised against the part of TF Serving's behaviour tfsconf depends on. Each rule
cites the TF Serving source it mirrors, read at tag 2.18.0 of tensorflow/serving (and
TensorFlow's core/kernels/batching_util/shared_batch_scheduler.h for the batch queue):

* start-up (model_servers/server.cc BuildAndStart): the model config, batching, session,
  platform, monitoring and SSL config files parsed with the real messages (or messages
  described here with the same fields where the pip wheel lacks them), and the refusals:
  a batching file without --enable_batching, all three parallelism flags, ALTS with SSL;
* the ModelServerConfig life cycle: ``--model_config_file`` (text format, real generated
  class), optional file polling, gRPC ``ModelService/HandleReloadConfigRequest``;
* version discovery under each ``base_path`` (numeric child names only), version
  policies, and a missing ``base_path`` stalling the file-system poll of every model;
* the manager: one action per 100 ms, unloads first; loads run in the manager thread
  itself (one at a time, retries included) when --num_load_threads is 0, as by default,
  except while the first config loads;
* loading: START -> LOADING -> AVAILABLE, or END with an error status when the version
  directory is not a complete SavedModel, its batching parameters are bad, a warmup
  record is bad or is refused by the batch queue, or it holds a file named
  ``TFS_STANDIN_FAIL_LOAD``; load retries; availability-preserving swaps;
* version labels and their FAILED_PRECONDITION rules;
* ``ModelService/GetModelStatus`` (a label is ignored: every version is returned),
  ``PredictionService/Predict`` (through the batch queue of a batched version), REST
  ``GET /v1/models/<name>[/versions/<v>|/labels/<l>]`` and the Prometheus page.

Where the stand-in is stricter than TF Serving it says so at the rule ("stricter than TF
Serving"): it refuses what the real server would accept and then silently misbehave on
(unknown flags, equal gRPC and REST ports, malformed channel arguments, unordered
allowed_batch_sizes, a 0-sized execution batch).

Predict checks the request against the version's SignatureDef (read from saved_model.pb)
and answers with zero-filled tensors of the declared dtypes and shapes: outputs are NOT
computed. TensorFlow's runtime is never imported; only the generated protobuf modules.

Environment (test-only, no TF Serving counterpart): TFS_STANDIN_ROOT (prefix for every
absolute path opened), TFS_STANDIN_BIND (bind address, default 0.0.0.0),
TFS_STANDIN_LOAD_SECONDS (time one load attempt takes, default 0.3; a file of that name in
a version directory overrides it for that version), TFS_STANDIN_VERSION (the release
``--version`` reports, default 2.18.0). Run: ``python tfserving_standin.py
--port=8500 --rest_api_port=8501 --model_config_file=/srv/.../models.config``.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import itertools
import json
import os
import re
import signal
import struct
import sys
import threading
import time
import types
import urllib.parse
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# --------------------------------------------------------------------------------------
# Generated protobuf modules, imported without initialising TensorFlow
# --------------------------------------------------------------------------------------

_PB2 = {
    "status": "tensorflow_serving.apis.get_model_status_pb2",
    "management": "tensorflow_serving.apis.model_management_pb2",
    "model_service_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "predict": "tensorflow_serving.apis.predict_pb2",
    "prediction_service_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
    "prediction_log": "tensorflow_serving.apis.prediction_log_pb2",
    "serving_status": "tensorflow_serving.apis.status_pb2",
    "server_config": "tensorflow_serving.config.model_server_config_pb2",
    "saved_model": "tensorflow.core.protobuf.saved_model_pb2",
    "tensor_bundle": "tensorflow.core.protobuf.tensor_bundle_pb2",
    "tensor": "tensorflow.core.framework.tensor_pb2",
    "types": "tensorflow.core.framework.types_pb2",
    "session_config": "tensorflow.core.protobuf.config_pb2",
    "named_tensor": "tensorflow.core.protobuf.named_tensor_pb2",
    "platform_config": "tensorflow_serving.config.platform_config_pb2",
}

_protos_cache: list[types.SimpleNamespace] = []


def protos() -> types.SimpleNamespace:
    """The pb2 modules (cached). While they import, a bare package module is registered as
    ``tensorflow`` so that the runtime's ``__init__`` never runs; it is removed afterwards."""
    if _protos_cache:
        return _protos_cache[0]
    placeholder = None
    if "tensorflow" not in sys.modules:
        spec = importlib.util.find_spec("tensorflow")
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError("the tensorflow package (for its pb2 modules) is not installed")
        placeholder = types.ModuleType("tensorflow", "placeholder: pb2 imports only")
        placeholder.__path__ = list(spec.submodule_search_locations)
        placeholder.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None, is_package=True)
        placeholder.__spec__.submodule_search_locations = placeholder.__path__
        sys.modules["tensorflow"] = placeholder
    try:
        loaded = {key: importlib.import_module(name) for key, name in _PB2.items()}
    finally:
        if placeholder is not None and sys.modules.get("tensorflow") is placeholder:
            del sys.modules["tensorflow"]
    _protos_cache.append(types.SimpleNamespace(**loaded))
    return _protos_cache[0]


# --------------------------------------------------------------------------------------
# Errors with TensorFlow status codes
# --------------------------------------------------------------------------------------

TF_CODES = {
    "OK": 0,
    "CANCELLED": 1,
    "UNKNOWN": 2,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "ALREADY_EXISTS": 6,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "ABORTED": 10,
    "OUT_OF_RANGE": 11,
    "UNIMPLEMENTED": 12,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "DATA_LOSS": 15,
}
# ToHTTPStatusCode (model_servers/http_server.cc, 2.18.0).
HTTP_FOR_CODE = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
}


class TfError(Exception):
    """A TF status: code name (see TF_CODES) and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def log(level: str, message: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    sys.stderr.write(f"{stamp} {level} tfserving-standin: {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------------
# Flags (main.cc's list as far as tfsconf can emit it)
# --------------------------------------------------------------------------------------

FLAG_TYPES: dict[str, tuple[type, Any]] = {
    "port": (int, 8500),
    "grpc_socket_path": (str, ""),
    "rest_api_port": (int, 0),
    "rest_api_num_threads": (int, 0),
    "rest_api_timeout_in_ms": (int, 30000),
    "enable_batching": (bool, False),
    "batching_parameters_file": (str, ""),
    "enable_per_model_batching_parameters": (bool, False),
    "model_config_file": (str, ""),
    "model_config_file_poll_wait_seconds": (int, 0),
    "model_name": (str, "default"),
    "model_base_path": (str, ""),
    "file_system_poll_wait_seconds": (int, 1),
    "flush_filesystem_caches": (bool, True),
    "tensorflow_session_parallelism": (int, 0),
    "tensorflow_intra_op_parallelism": (int, 0),
    "tensorflow_inter_op_parallelism": (int, 0),
    "per_process_gpu_memory_fraction": (float, 0.0),
    "max_num_load_retries": (int, 5),
    "load_retry_interval_micros": (int, 60_000_000),
    "monitoring_config_file": (str, ""),
    "ssl_config_file": (str, ""),
    "platform_config_file": (str, ""),
    "enable_model_warmup": (bool, True),
    "grpc_channel_arguments": (str, ""),
    "saved_model_tags": (str, "serve"),
    "version": (bool, False),
    "allow_version_labels_for_unavailable_models": (bool, False),
    "remove_unused_fields_from_bundle_metagraph": (bool, True),
    "use_tflite_model": (bool, False),
    "prefer_tflite_model": (bool, False),
    "enable_signature_method_name_check": (bool, False),
    "grpc_max_threads": (int, 0),
    "num_load_threads": (int, 0),
    "num_unload_threads": (int, 0),
    "xla_cpu_compilation_enabled": (bool, False),
    "xla_gpu_compilation_enabled": (bool, False),
    "enable_profiler": (bool, True),
    "rest_api_enable_cors_support": (bool, False),
    "thread_pool_factory_config_file": (str, ""),
    "use_alts_credentials": (bool, False),
    "num_request_iterations_for_warmup": (int, 1),
    "tensorflow_session_config_file": (str, ""),
    "mixed_precision": (str, ""),
    "skip_initialize_tpu": (bool, True),
    "enable_grpc_healthcheck_service": (bool, False),
    # 2.18.0 main.cc has these too; 2.20.0 adds enable_serialization_as_tensor_content.
    "num_tflite_pools": (int, 0),
    "num_tflite_interpreters_per_pool": (int, 1),
    "enable_serialization_as_tensor_content": (bool, False),
}


class FlagError(Exception):
    pass


def parse_flags(argv: list[str]) -> dict[str, Any]:
    """--name=value for every flag; a bare --name only for booleans (= true)
    (tensorflow::Flags::Parse as main.cc calls it). Stricter than TF Serving: main.cc only
    prints an argument it cannot use ("unknown argument", e.g. an unknown flag or
    ``--port 9000``) and starts with the default; the stand-in refuses it."""
    values = {name: default for name, (_kind, default) in FLAG_TYPES.items()}
    for arg in argv:
        match = re.fullmatch(r"--?([A-Za-z0-9_]+)(?:=(.*))?", arg, re.DOTALL)
        if match is None:
            raise FlagError(f"unexpected argument {arg!r} (flags are --name=value)")
        name, raw = match.group(1), match.group(2)
        if name not in FLAG_TYPES:
            raise FlagError(f"unknown flag --{name}")
        kind = FLAG_TYPES[name][0]
        if raw is None:
            if kind is not bool:
                raise FlagError(f"--{name} needs a value: write --{name}=VALUE")
            raw = "true"
        try:
            values[name] = _convert(kind, raw)
        except ValueError:
            raise FlagError(f"bad value for --{name}: {raw!r}") from None
    return values


def _convert(kind: type, raw: str) -> Any:
    if kind is bool:
        lowered = raw.lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise ValueError(raw)
    if kind is int:
        return int(raw, 10)
    if kind is float:
        return float(raw)
    return raw


# --------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------

ROOT = os.environ.get("TFS_STANDIN_ROOT", "")


def host_path(path: str) -> str:
    """Where an absolute path the server was given lives (TFS_STANDIN_ROOT in front)."""
    if ROOT and path.startswith("/"):
        return ROOT.rstrip("/") + path
    return path


# --------------------------------------------------------------------------------------
# crc32c and TFRecord framing
# --------------------------------------------------------------------------------------


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_tfrecords(path: str, limit: int) -> list[bytes]:
    """The records of a TFRecord file; DATA_LOSS on bad framing, INVALID_ARGUMENT when
    there are more than `limit` records."""
    records = []
    with open(path, "rb") as handle:
        while True:
            offset = handle.tell()
            header = handle.read(12)
            if not header:
                return records
            if len(header) < 12:
                raise TfError("DATA_LOSS", f"truncated record at {offset} in {path}")
            length_bytes, (length_crc,) = header[:8], struct.unpack("<I", header[8:])
            if masked_crc32c(length_bytes) != length_crc:
                raise TfError("DATA_LOSS", f"corrupted record at {offset} in {path}")
            (length,) = struct.unpack("<Q", length_bytes)
            body = handle.read(length + 4)
            if len(body) < length + 4:
                raise TfError("DATA_LOSS", f"truncated record at {offset} in {path}")
            data, (data_crc,) = body[:length], struct.unpack("<I", body[length:])
            if masked_crc32c(data) != data_crc:
                raise TfError("DATA_LOSS", f"corrupted record at {offset} in {path}")
            if len(records) == limit:
                raise TfError(
                    "INVALID_ARGUMENT",
                    f"Number of warmup records exceeds the maximum ({limit}) at {path}",
                )
            records.append(data)


# --------------------------------------------------------------------------------------
# TF Serving messages the pip wheel does not ship (described here, same names and numbers)
# --------------------------------------------------------------------------------------

# tensorflow-serving-api ships model_server_config_pb2 and platform_config_pb2 but not
# session_bundle_config.proto, saved_model_bundle_source_adapter.proto,
# monitoring_config.proto or ssl_config.proto. Their messages are described here with the
# field names, numbers and types of TF Serving 2.18.0 (those files at tag 2.18.0), so that
# text_format parses exactly what the server's ParseProtoTextFile would.
_I64 = ".google.protobuf.Int64Value"
_MESSAGES: dict[str, tuple[tuple[str, int, str], ...]] = {
    # servables/tensorflow/session_bundle_config.proto
    "BatchingParameters": (
        ("max_batch_size", 1, _I64),
        ("batch_timeout_micros", 2, _I64),
        ("max_enqueued_batches", 3, _I64),
        ("num_batch_threads", 4, _I64),
        ("thread_pool_name", 5, ".google.protobuf.StringValue"),
        ("allowed_batch_sizes", 6, "repeated int64"),
        ("pad_variable_length_inputs", 7, "bool"),
        ("enable_large_batch_splitting", 8, ".google.protobuf.BoolValue"),
        ("max_execution_batch_size", 9, _I64),
    ),
    "ModelWarmupOptions": (
        ("num_request_iterations", 1, ".google.protobuf.Int32Value"),
        ("num_model_warmup_threads", 2, ".google.protobuf.Int32Value"),
        ("model_name", 3, "string"),
        ("model_version", 4, "int64"),
        ("enable_all_batch_sizes_warmup", 5, "bool"),
    ),
    "SessionBundleConfig": (
        ("session_target", 1, "string"),
        ("session_config", 2, ".tensorflow.ConfigProto"),
        ("batching_parameters", 3, ".tensorflow.serving.BatchingParameters"),
        ("session_run_load_threadpool_index", 4, ".google.protobuf.Int32Value"),
        ("experimental_transient_ram_bytes_during_load", 5, "uint64"),
        ("saved_model_tags", 6, "repeated string"),
        ("experimental_fixed_input_tensors", 778, "repeated .tensorflow.NamedTensorProto"),
        ("enable_model_warmup", 779, "bool"),
        ("model_warmup_options", 780, ".tensorflow.serving.ModelWarmupOptions"),
        ("enable_session_metadata", 781, "bool"),
        ("remove_unused_fields_from_bundle_metagraph", 782, "bool"),
        ("prefer_tflite_model", 783, "bool"),
        ("resource_estimation_uses_validation_result", 784, "bool"),
        ("num_tflite_interpreters", 785, "int32"),
        ("num_tflite_interpreters_per_pool", 786, "int32"),
        ("num_tflite_pools", 787, "int32"),
        ("wrap_session_with_no_threading_params", 788, "bool"),
        ("enable_per_model_batching_params", 789, "bool"),
        ("enable_saved_model_config", 790, "bool"),
        ("mixed_precision", 791, "string"),
    ),
    # servables/tensorflow/saved_model_bundle_source_adapter.proto
    "SavedModelBundleSourceAdapterConfig": (
        ("legacy_config", 1000, ".tensorflow.serving.SessionBundleConfig"),
    ),
    # config/monitoring_config.proto
    "PrometheusConfig": (("enable", 1, "bool"), ("path", 2, "string")),
    "MonitoringConfig": (("prometheus_config", 1, ".tensorflow.serving.PrometheusConfig"),),
    # config/ssl_config.proto
    "SSLConfig": (
        ("server_key", 1, "string"),
        ("server_cert", 2, "string"),
        ("custom_ca", 3, "string"),
        ("client_verify", 4, "bool"),
    ),
}
_SCALARS = {"int64": "TYPE_INT64", "int32": "TYPE_INT32", "uint64": "TYPE_UINT64"}
_SCALARS.update({"bool": "TYPE_BOOL", "string": "TYPE_STRING"})
_message_pool: list[Any] = []


def message_pool() -> Any:
    """A descriptor pool holding the messages above and every file they depend on (copied
    from the generated modules), so that an Any in a PlatformConfigMap can be expanded."""
    if _message_pool:
        return _message_pool[0]
    from google.protobuf import descriptor_pb2, descriptor_pool, wrappers_pb2

    pb = protos()
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: Any) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        copy = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(copy)
        pool.Add(copy)
        added.add(file.name)

    for module in (wrappers_pb2, pb.session_config, pb.named_tensor):
        add(module.DESCRIPTOR)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="tfserving_standin/serving_messages.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=sorted(added),
    )
    fd = descriptor_pb2.FieldDescriptorProto
    for message_name, fields in _MESSAGES.items():
        message = fdp.message_type.add(name=message_name)
        for name, number, declared in fields:
            repeated = declared.startswith("repeated ")
            kind = declared.removeprefix("repeated ")
            entry = message.field.add(name=name, number=number)
            entry.label = fd.LABEL_REPEATED if repeated else fd.LABEL_OPTIONAL
            if kind in _SCALARS:
                entry.type = getattr(fd, _SCALARS[kind])
            else:
                entry.type = fd.TYPE_MESSAGE
                entry.type_name = kind
    pool.Add(fdp)
    _message_pool.append(pool)
    return pool


def message_class(name: str) -> Any:
    from google.protobuf import message_factory

    pool = message_pool()
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))


def batching_parameters_class() -> Any:
    return message_class("BatchingParameters")


def parse_text_file(path: str, message: Any, *, on_host: bool = False) -> Any:
    """ParseProtoTextFile (util/proto_util.h, 2.18.0): the file as a
    text-format `message`; INVALID_ARGUMENT when it does not parse. `path` is as given to
    the server (TFS_STANDIN_ROOT is applied here) unless `on_host`."""
    from google.protobuf import text_format

    with open(path if on_host else host_path(path), encoding="utf-8") as handle:
        text = handle.read()
    try:
        text_format.Parse(text, message, descriptor_pool=message_pool())
    except text_format.ParseError as error:
        kind = message.DESCRIPTOR.name
        raise TfError(
            "INVALID_ARGUMENT", f"Invalid protobuf file: '{path}' (as {kind}: {error})"
        ) from None
    return message


def parse_batching_parameters(path: str) -> Any:
    return parse_text_file(path, batching_parameters_class()())


# Defaults of the queue (SharedBatchScheduler::QueueOptions in TensorFlow's
# core/kernels/batching_util/shared_batch_scheduler.h) that an unset field leaves in place.
DEFAULT_INPUT_BATCH_SIZE_LIMIT = 1000
DEFAULT_MAX_ENQUEUED_BATCHES = 10


def input_batch_size_limit(params: Any) -> int:
    """GetQueueOptions (servables/tensorflow/bundle_factory_util.h): max_batch_size when
    set, otherwise the queue's default."""
    if params.HasField("max_batch_size"):
        return int(params.max_batch_size.value)
    return DEFAULT_INPUT_BATCH_SIZE_LIMIT


def check_scheduler_parameters(params: Any) -> None:
    """The shared batch thread pool, built once when the server starts
    (SavedModelBundleFactory::Create -> CreateBatchScheduler in
    servables/tensorflow/saved_model_bundle_factory.cc and bundle_factory_util.h; the check
    is SharedBatchScheduler::Create): only num_batch_threads and thread_pool_name are read."""
    if params.HasField("num_batch_threads") and params.num_batch_threads.value < 1:
        raise TfError(
            "INVALID_ARGUMENT",
            f"num_batch_threads must be positive; was {params.num_batch_threads.value}",
        )


def check_batching_parameters(params: Any) -> None:
    """The queue a batched version gets when it loads: WrapSessionForBatching
    (servables/tensorflow/bundle_factory_util.cc, 2.18.0), GetQueueOptions
    (bundle_factory_util.h) and SharedBatchScheduler::AddQueue (TensorFlow's
    shared_batch_scheduler.h). Any error fails the load of that version."""
    limit = input_batch_size_limit(params)
    sizes = list(params.allowed_batch_sizes)
    # WrapSessionForBatching compares with max_batch_size (its default when unset), with or
    # without large batch splitting; max_execution_batch_size plays no part here.
    if sizes and sizes[-1] != limit:
        raise TfError(
            "INVALID_ARGUMENT",
            "Last entry in allowed_batch_sizes must match max_batch_size; last entry was "
            f"{sizes[-1]}; expected {limit}",
        )
    # Stricter than TF Serving (tfsconf policy): the model server never checks the order;
    # only CreateBasicBatchingSession (batching/batching_session.cc), unused by the model
    # server, does.
    if any(size <= 0 for size in sizes) or any(b <= a for a, b in itertools.pairwise(sizes)):
        raise TfError(
            "INVALID_ARGUMENT",
            "allowed_batch_sizes entries must be positive and increasing "
            "(stand-in policy; TF Serving's model server does not check this)",
        )
    # AddQueue (input_batch_size_limit is a size_t there: a negative value wraps around;
    # the stand-in refuses it).
    if limit <= 0:
        raise TfError("INVALID_ARGUMENT", f"input_batch_size_limit must be positive; was {limit}")
    if params.HasField("batch_timeout_micros") and params.batch_timeout_micros.value < 0:
        raise TfError(
            "INVALID_ARGUMENT",
            f"batch_timeout_micros must be non-negative; was {params.batch_timeout_micros.value}",
        )
    splitting = params.HasField("enable_large_batch_splitting") and (
        params.enable_large_batch_splitting.value
    )
    enqueued = (
        params.max_enqueued_batches.value
        if params.HasField("max_enqueued_batches")
        else DEFAULT_MAX_ENQUEUED_BATCHES
    )
    # AddQueue: 0 is an error (recent TensorFlow rewrites 0 to 1 when not splitting; the
    # stand-in refuses it either way, and a negative value, which wraps around in size_t).
    if enqueued <= 0:
        raise TfError("INVALID_ARGUMENT", f"max_enqueued_batches must be positive; was {enqueued}")
    if splitting:
        # GetQueueOptions: without max_execution_batch_size, max_batch_size().value(),
        # which is 0 when max_batch_size is unset as well.
        if params.HasField("max_execution_batch_size"):
            execution = int(params.max_execution_batch_size.value)
        else:
            execution = int(params.max_batch_size.value)
        if limit < execution:
            raise TfError(
                "INVALID_ARGUMENT",
                "When enable_large_batch_splitting is true, input_batch_size_limit must be "
                f"greater than or equal to max_execution_batch_size ({limit} < {execution})",
            )
        # Stricter than TF Serving, which accepts it and then forms batches of size 0.
        if execution <= 0:
            raise TfError(
                "INVALID_ARGUMENT",
                f"max_execution_batch_size is {execution} with large batch splitting on "
                "(stand-in policy: TF Serving accepts it and forms 0-sized batches)",
            )


def check_batched_run(params: Any, dims: list[list[int]]) -> None:
    """What a batched session does with one Run(): ComputeTensorBatchSize
    (batching/batching_util.h, 2.18.0) then the queue's task size check
    (Queue::ValidateBatchTaskQueueCapacity, TensorFlow's shared_batch_scheduler.h). `dims`
    holds the shape of every input tensor."""
    if not dims:
        raise TfError("INVALID_ARGUMENT", "Batching Run() must have at least one input tensor")
    if any(not shape for shape in dims):
        raise TfError(
            "INVALID_ARGUMENT", "Batching Run() input tensors must have at least one dimension"
        )
    sizes = {shape[0] for shape in dims}
    if len(sizes) > 1:
        raise TfError(
            "INVALID_ARGUMENT", "Batching Run() input tensors must have equal 0th-dimension size"
        )
    size, limit = sizes.pop(), input_batch_size_limit(params)
    if size > limit:
        raise TfError(
            "INVALID_ARGUMENT",
            f"Task size {size} is larger than maximum input batch size {limit}",
        )


# --------------------------------------------------------------------------------------
# Loading one version directory
# --------------------------------------------------------------------------------------


class RestServer(ThreadingHTTPServer):
    """http.server's server_bind looks the bound address up in DNS (socket.getfqdn), which
    waits out the resolver's timeout on a test host without DNS; TF Serving does not."""

    daemon_threads = True

    def server_bind(self) -> None:
        import socketserver

        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


FAIL_MARKER = "TFS_STANDIN_FAIL_LOAD"
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"  # kBatchingParamsFilename
# Test-only (no TF Serving counterpart): how long one load attempt of a version takes. The
# TFS_STANDIN_LOAD_SECONDS environment variable sets it for every version; a file of that
# name in a version directory, holding a number of seconds, sets it for that version.
LOAD_SECONDS_NAME = "TFS_STANDIN_LOAD_SECONDS"
MANAGE_STATE_INTERVAL_SECONDS = 0.1  # AspiredVersionsManager::Options, 100 * 1000 us
# ServerCore::Options::num_initial_load_threads (model_servers/server_core.h, 2.18.0).
NUM_INITIAL_LOAD_THREADS = 4 * (os.cpu_count() or 1)


def load_seconds(path: str, default: float) -> float:
    """The test-only load time of the version at `path` (see LOAD_SECONDS_NAME)."""
    try:
        with open(os.path.join(path, LOAD_SECONDS_NAME), encoding="utf-8") as handle:
            return float(handle.read().strip())
    except (OSError, ValueError):
        return default


MAX_WARMUP_RECORDS = 1000
_DTYPE_SIZES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 11: 1, 12: 1, 13: 4}
_DTYPE_SIZES.update({14: 2, 15: 2, 16: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8})
DT_STRING = 7


@dataclass
class LoadOptions:
    tags: frozenset[str]
    warmup: bool
    batching: bool
    per_model_batching: bool
    global_batching: Any  # parsed BatchingParameters when batching is on, else None
    # --enable_signature_method_name_check (SetSignatureMethodNameCheckFeature, server.cc)
    method_name_check: bool = False


@dataclass
class Loaded:
    """What a successful load leaves behind: the SignatureDefs and the BatchingParameters
    of the version's queue (None: the version is served unbatched)."""

    signatures: dict[str, Any]
    batching: Any


def load_version(path: str, options: LoadOptions) -> Loaded:
    """Check a version directory the way a real load would fail (SavedModelBundleFactory::
    InternalCreateSavedModelBundle, then RunSavedModelWarmup, saved_model_warmup_util.cc)."""
    pb = protos()
    if not os.path.isdir(path):
        raise TfError("NOT_FOUND", f"SavedModel directory {path} does not exist")
    if os.path.exists(os.path.join(path, FAIL_MARKER)):
        raise TfError("UNKNOWN", f"load failed on purpose: {FAIL_MARKER} in {path}")
    saved_model = pb.saved_model.SavedModel()
    binary, text = os.path.join(path, "saved_model.pb"), os.path.join(path, "saved_model.pbtxt")
    if os.path.isfile(binary):
        try:
            with open(binary, "rb") as handle:
                saved_model.ParseFromString(handle.read())
        except Exception:
            raise TfError("DATA_LOSS", f"Can't parse {binary} as binary proto") from None
    elif os.path.isfile(text):
        from google.protobuf import text_format

        try:
            with open(text, encoding="utf-8") as handle:
                text_format.Parse(handle.read(), saved_model)
        except Exception:
            raise TfError("DATA_LOSS", f"Can't parse {text} as text proto") from None
    else:
        raise TfError(
            "NOT_FOUND",
            f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}",
        )
    graphs = [g for g in saved_model.meta_graphs if set(g.meta_info_def.tags) == options.tags]
    if not graphs:
        raise TfError(
            "NOT_FOUND",
            "Could not find meta graph def matching supplied tags: { "
            + " ".join(sorted(options.tags))
            + " }",
        )
    _check_variables(path)
    batching = _version_batching(path, options) if options.batching else None
    signatures = dict(graphs[0].signature_def)
    warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    if options.warmup and os.path.isfile(warmup):
        _check_warmup(warmup, signatures, batching, options.method_name_check)
    return Loaded(signatures, batching)


def _check_variables(path: str) -> None:
    variables = os.path.join(path, "variables")
    if not os.path.isdir(variables):
        return
    index = os.path.join(variables, "variables.index")
    if not os.path.isfile(index):
        raise TfError("NOT_FOUND", f"Failed to find variables index file {index}")
    shards = _num_shards_from_index(index)
    if shards is None:
        counts = {
            int(m.group(1))
            for name in os.listdir(variables)
            if (m := re.fullmatch(r"variables\.data-\d{5}-of-(\d{5})", name))
        }
        shards = max(counts) if counts else 1
    for shard in range(shards):
        name = f"variables.data-{shard:05d}-of-{shards:05d}"
        if not os.path.isfile(os.path.join(variables, name)):
            raise TfError("NOT_FOUND", f"Could not find variables data shard {variables}/{name}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _num_shards_from_index(index: str) -> int | None:
    """The index is a table file whose first entry (at offset 0, empty key) holds the
    BundleHeaderProto; None when it cannot be read that way."""
    try:
        with open(index, "rb") as handle:
            data = handle.read(4096)
        shared, pos = _varint(data, 0)
        unshared, pos = _varint(data, pos)
        length, pos = _varint(data, pos)
        if shared or unshared or pos + length > len(data):
            return None
        header = protos().tensor_bundle.BundleHeaderProto()
        header.ParseFromString(data[pos : pos + length])
    except Exception:  # not the layout expected: fall back to the file names
        return None
    return header.num_shards if header.num_shards > 0 else None


def _version_batching(path: str, options: LoadOptions) -> Any:
    """GetPerModelBatchingParams (servables/tensorflow/bundle_factory_util.cc, 2.18.0): with
    per-model parameters on, the version's own batching_params.pbtxt or, without one, no
    batching at all; otherwise the server-wide parameters. The queue is then checked as
    WrapSessionForBatching does. Thread settings in a per-model file are ignored: the
    thread pool is the server-wide one."""
    if options.per_model_batching:
        own = os.path.join(path, PER_MODEL_BATCHING_FILE)
        if not os.path.isfile(own):
            return None
        params = parse_text_file(own, batching_parameters_class()(), on_host=True)
    else:
        params = options.global_batching
    check_batching_parameters(params)
    return params


def _check_warmup(
    warmup: str, signatures: dict[str, Any], batching: Any, method_check: bool
) -> None:
    """RunSavedModelWarmup (servables/tensorflow/saved_model_warmup_util.cc): every record
    is run against the loaded session, which is the batching session when the version is
    batched, so a record the batch queue refuses fails the load like a bad record."""
    pb = protos()
    for data in read_tfrecords(warmup, MAX_WARMUP_RECORDS):
        entry = pb.prediction_log.PredictionLog()
        try:
            entry.ParseFromString(data)
        except Exception:
            raise TfError(
                "INVALID_ARGUMENT", f"Failed to parse warmup record from {warmup}"
            ) from None
        kind = entry.WhichOneof("log_type")
        if kind not in ("predict_log", "classify_log", "regress_log", "multi_inference_log"):
            raise TfError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {kind}")
        try:
            if kind == "predict_log":
                check_predict_request(signatures, entry.predict_log.request, method_check)
                if batching is not None:
                    check_batched_run(batching, request_dims(entry.predict_log.request))
            else:
                request = getattr(entry, kind).request
                if kind in ("classify_log", "regress_log"):
                    check_example_signature(
                        signatures, request.model_spec.signature_name, kind, method_check
                    )
                if batching is not None:
                    # classify/regress/multi_inference feed one serialized Example per row.
                    check_batched_run(batching, [[_example_count(request.input)]])
        except TfError as error:
            raise TfError(error.code, f"warmup request failed: {error.message}") from None


def check_example_signature(
    signatures: dict[str, Any], name: str, kind: str, method_check: bool
) -> None:
    """GetClassificationSignatureDef/PreProcessClassification (servables/tensorflow/
    classifier.cc) and their regressor.cc counterparts, 2.18.0, as RunClassify/RunRegress
    apply them to a warmup record: the signature exists, has one input, and classify has
    one or two outputs among which "classes" or "scores", regress one output "outputs";
    with --enable_signature_method_name_check, the method_name."""
    name = name or "serving_default"
    if name not in signatures:
        raise TfError("INVALID_ARGUMENT", f"No signature was found with the name: {name}")
    signature = signatures[name]
    method = CLASSIFY_METHOD if kind == "classify_log" else REGRESS_METHOD
    if method_check and signature.method_name != method:
        what = "classification" if kind == "classify_log" else "regression"
        raise TfError(
            "INVALID_ARGUMENT",
            f"Expected {what} signature method_name to be {method}. Was: {signature.method_name}",
        )
    if len(signature.inputs) != 1:
        raise TfError("INVALID_ARGUMENT", "Expected one input Tensor.")
    outputs = set(signature.outputs)
    if kind == "classify_log":
        if len(outputs) not in (1, 2):
            raise TfError(
                "INVALID_ARGUMENT", f"Expected one or two output Tensors, found {len(outputs)}"
            )
        if not outputs & {"classes", "scores"}:
            raise TfError(
                "INVALID_ARGUMENT",
                "Expected classification signature outputs to contain at least one of "
                '"classes" or "scores".',
            )
    elif len(outputs) != 1:
        raise TfError("INVALID_ARGUMENT", "Expected one output Tensor.")
    elif "outputs" not in outputs:
        raise TfError("INVALID_ARGUMENT", "No regression outputs found in SignatureDef")


def _example_count(tf_input: Any) -> int:
    kind = tf_input.WhichOneof("kind")
    if kind is None:
        return 0
    return len(getattr(tf_input, kind).examples)


def request_dims(request: Any) -> list[list[int]]:
    """The shape of every input tensor of a PredictRequest (a TensorProto without a shape
    is a scalar)."""
    return [
        [d.size for d in request.inputs[key].tensor_shape.dim] for key in sorted(request.inputs)
    ]


# --------------------------------------------------------------------------------------
# Predict: request validation and zero-filled answers
# --------------------------------------------------------------------------------------


def _dtype_name(dtype: int) -> str:
    names = protos().types.DataType
    try:
        return names.Name(dtype).removeprefix("DT_").lower()
    except ValueError:
        return str(dtype)


PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"


def check_predict_request(
    signatures: dict[str, Any], request: Any, method_check: bool = False
) -> tuple[str, Any]:
    name = request.model_spec.signature_name or "serving_default"
    if name not in signatures:
        raise TfError(
            "INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def'
        )
    signature = signatures[name]
    # predict_util.cc RunPredict, 2.18.0
    allowed = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)
    if method_check and signature.method_name not in allowed:
        raise TfError(
            "INTERNAL",
            "Expected prediction signature method_name to be one of {"
            + ", ".join(allowed)
            + f"}}. Was: {signature.method_name}",
        )
    sent, wanted = set(request.inputs), set(signature.inputs)
    if sent != wanted:
        raise TfError(
            "INVALID_ARGUMENT",
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - sent))}}}.",
        )
    for position, key in enumerate(sorted(wanted)):
        tensor, spec = request.inputs[key], signature.inputs[key]
        if tensor.dtype != spec.dtype:
            raise TfError(
                "INVALID_ARGUMENT",
                f"Expects arg[{position}] to be {_dtype_name(spec.dtype)} but "
                f"{_dtype_name(tensor.dtype)} is provided",
            )
        shape = spec.tensor_shape
        if not shape.unknown_rank:
            dims = [d.size for d in tensor.tensor_shape.dim]
            expected = [d.size for d in shape.dim]
            mismatch = len(dims) != len(expected) or any(
                e not in (-1, d) for d, e in zip(dims, expected, strict=True)
            )
            if mismatch:
                raise TfError(
                    "INVALID_ARGUMENT",
                    f"input {key}: shape {dims} is incompatible with the signature's {expected}",
                )
    for key in request.output_filter:
        if key not in signature.outputs:
            raise TfError("INVALID_ARGUMENT", f"output tensor alias not found in signature: {key}")
    return name, signature


def zero_outputs(signature: Any, request: Any, response: Any) -> None:
    first = request.inputs[sorted(request.inputs)[0]] if request.inputs else None
    batch = first.tensor_shape.dim[0].size if first is not None and first.tensor_shape.dim else 1
    wanted = set(request.output_filter) or set(signature.outputs)
    for key in sorted(wanted):
        spec = signature.outputs[key]
        if spec.tensor_shape.unknown_rank:
            dims = [batch]
        else:
            dims = [1 if d.size < 0 else d.size for d in spec.tensor_shape.dim]
            if dims:
                dims[0] = batch
        out = response.outputs[key]
        out.dtype = spec.dtype
        for size in dims:
            out.tensor_shape.dim.add(size=size)
        count = 1
        for size in dims:
            count *= size
        if spec.dtype == DT_STRING:
            out.string_val.extend([b""] * count)
        elif spec.dtype in _DTYPE_SIZES:
            out.tensor_content = bytes(_DTYPE_SIZES[spec.dtype] * count)


# --------------------------------------------------------------------------------------
# The core: config, version discovery, the manager, the state monitor, labels
# --------------------------------------------------------------------------------------

STATES = ("START", "LOADING", "AVAILABLE", "UNLOADING", "END")


@dataclass
class Version:
    """One managed version (TF Serving's loader harness)."""

    number: int
    path: str  # where it lives on this host (TFS_STANDIN_ROOT already applied)
    # new, load_requested, loading, ready, unload_requested, unloading, error
    phase: str = "new"
    aspired: bool = True
    loaded: Loaded | None = None


@dataclass
class Source:
    name: str
    base_path: str
    policy: Any  # ServableVersionPolicy


@dataclass
class Core:
    flags: dict[str, Any]
    load_seconds: float
    load_options: LoadOptions
    stop: threading.Event
    platforms: frozenset[str] = frozenset({"tensorflow"})
    lock: threading.Condition = field(default_factory=threading.Condition)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    config: Any = None  # current ModelServerConfig
    sources: dict[str, Source] = field(default_factory=dict)
    managed: dict[str, dict[int, Version]] = field(default_factory=dict)
    initial_load: bool = True  # the first config is loading (num_initial_load_threads)
    # (model path, "success" or "fail") -> load attempts, for the Prometheus page
    load_attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    executors: dict[str, tuple[int, futures.ThreadPoolExecutor]] = field(default_factory=dict)
    # monitor: model -> version -> (state, code, message, event sequence number)
    monitor: dict[str, dict[int, tuple[str, str, str, int]]] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)
    seq: int = 0

    # ---- monitor ------------------------------------------------------------------
    def _publish(
        self, model: str, number: int, state: str, code: str = "OK", msg: str = ""
    ) -> None:
        self.seq += 1
        self.monitor.setdefault(model, {})[number] = (state, code, msg, self.seq)
        self.lock.notify_all()

    def version_states(self, model: str) -> list[tuple[int, str, str, str]]:
        with self.lock:
            entries = self.monitor.get(model, {})
            return [(v, *entries[v][:3]) for v in sorted(entries, reverse=True)]

    # ---- config -------------------------------------------------------------------
    def reload(self, new_config: Any, *, first: bool = False) -> None:
        """ServerCore::ReloadConfig: validate, labels, then models; wait for new models."""
        with self.reload_lock:
            kind = new_config.WhichOneof("config")
            old_kind = self.config.WhichOneof("config") if self.config is not None else None
            if old_kind is not None and not (kind == old_kind == "model_config_list"):
                raise TfError(
                    "FAILED_PRECONDITION",
                    "Cannot transition to requested config. It is only legal to transition "
                    "from one ModelConfigList to another.",
                )
            if kind is None:
                log("I", "Taking no action for empty config.")
                return
            if kind == "custom_model_config":
                # server.cc LoadCustomModelConfig: LOG(FATAL), the process aborts.
                raise TfError("INTERNAL", "ModelServer does not yet support custom model config.")
            models = list(new_config.model_config_list.config)
            self._validate(models)
            # ReloadConfig stores the new config BEFORE UpdateModelVersionLabelMap, so a
            # config refused for its labels is still the one the next reload is compared to.
            self.config = new_config
            new_labels = self._check_labels(models)
            with self.lock:
                self.labels = new_labels
                started = self.seq
                added = [m.name for m in models if m.name not in self.sources]
                wanted = {m.name for m in models}
                for name in list(self.sources):
                    if name not in wanted:
                        del self.sources[name]
                        self._set_aspired(name, {})
                for m in models:
                    self.sources[m.name] = Source(m.name, m.base_path, m.model_version_policy)
                self.lock.notify_all()
            if first:
                # FileSystemStoragePathSource::SetAspiredVersionsCallback (sources/
                # storage_path/file_system_storage_path_source.cc) starts the poll thread
                # once the source holds the first config: its first pass, at once, sees
                # every model of it (started earlier, that pass would find none and the
                # models would wait a whole poll interval)
                threading.Thread(target=_poll_versions, args=(self,), daemon=True).start()
            log("I", f"Adding/updating models: {sorted(wanted)}")
            self._await_models(added if not first else sorted(wanted), started)
            # MaybeUpdateServerRequestLogger, after the models are added: the model server
            # gives ServerCore no request-logger creator (core/server_request_logger.cc).
            if any(m.HasField("logging_config") for m in models):
                raise TfError("INVALID_ARGUMENT", "No request-logger-creator provided.")

    def _validate(self, models: list[Any]) -> None:
        seen: set[str] = set()
        old_platforms = {}
        if self.config is not None:
            old_platforms = {m.name: _platform(m) for m in self.config.model_config_list.config}
        for m in models:
            if m.name in seen:
                raise TfError(
                    "INVALID_ARGUMENT",
                    f"Illegal to list model {m.name} multiple times in config list",
                )
            seen.add(m.name)
            if not (m.base_path.startswith("/") or "://" in m.base_path):
                raise TfError(
                    "INVALID_ARGUMENT",
                    f"Expected model {m.name} to have an absolute path or URI; "
                    f"got base_path()={m.base_path}",
                )
            platform = _platform(m)
            if m.name in old_platforms and old_platforms[m.name] != platform:
                raise TfError(
                    "INVALID_ARGUMENT",
                    f"Illegal to change a model's platform. For model {m.name} platform was "
                    f"{old_platforms[m.name]} and new platform requested is {platform}",
                )
            if platform not in self.platforms:
                raise TfError(
                    "INVALID_ARGUMENT", f"Model {m.name} requests unsupported platform {platform}"
                )

    def _check_labels(self, models: list[Any]) -> dict[str, dict[str, int]]:
        allow_new = self.flags["allow_version_labels_for_unavailable_models"]
        result: dict[str, dict[str, int]] = {}
        with self.lock:
            for m in models:
                states = self.monitor.get(m.name, {})
                for label, version in sorted(m.version_labels.items()):
                    existing = self.labels.get(m.name, {}).get(label)
                    may_skip = allow_new and (existing is None or existing == version)
                    available = version in states and states[version][0] == "AVAILABLE"
                    if not may_skip and not available:
                        raise TfError(
                            "FAILED_PRECONDITION",
                            f"Request to assign label to version {version} of model {m.name}, "
                            "which is not currently available for inference",
                        )
                    result.setdefault(m.name, {})[label] = version
        return result

    def _await_models(self, names: list[str], started: int) -> None:
        """WaitUntilModelsAvailable: the highest version seen since `started` of each model
        reaches AVAILABLE or END; UNKNOWN error when one ends up not available."""
        failed = []
        for name in names:
            with self.lock:
                while True:
                    recent = {v: s for v, s in self.monitor.get(name, {}).items() if s[3] > started}
                    top = recent.get(max(recent)) if recent else None
                    if top is not None and top[0] in ("AVAILABLE", "END"):
                        break
                    if self.stop.is_set():
                        raise TfError("CANCELLED", "server is shutting down")
                    self.lock.wait(0.2)
                if top[0] != "AVAILABLE":
                    detail = f" due to error: {top[1]}: {top[2]}" if top[1] != "OK" else ""
                    failed.append(f"{{name: {name} version: {max(recent)}}}{detail}")
        if failed:
            raise TfError(
                "UNKNOWN",
                f"{len(failed)} model(s) did not become available: {{"
                + "".join(f"{{{f}}}, " for f in failed)
                + "}",
            )

    # ---- version discovery ----------------------------------------------------------
    def poll_file_system(self) -> None:
        """One pass over every model; a missing base_path aborts the whole pass."""
        with self.lock:
            sources = list(self.sources.values())
        found: dict[str, dict[int, str]] = {}
        for source in sources:
            base = host_path(source.base_path)
            if not os.path.isdir(base):
                log(
                    "E",
                    f"File system storage path source: Could not find base path {base} for "
                    f"servable {source.name}: the poll of every model is aborted",
                )
                return
            versions: dict[int, str] = {}
            for child in sorted(os.listdir(base)):
                if not re.fullmatch(r"[0-9]+", child):
                    continue
                number = int(child)
                if number in versions:
                    log("W", f"Duplicate version directories detected: {child} in {base}")
                    continue
                versions[number] = os.path.join(base, child)
            if not versions:
                log("W", f"No versions of servable {source.name} found under base path {base}")
            found[source.name] = _apply_policy(source, versions)
        with self.lock:
            for source in sources:
                if self.sources.get(source.name) is source:
                    self._set_aspired(source.name, found[source.name])

    def _set_aspired(self, model: str, aspired: dict[int, str]) -> None:
        versions = self.managed.setdefault(model, {})
        for number, version in list(versions.items()):
            version.aspired = number in aspired
            if not version.aspired and version.phase in ("new", "error"):
                if version.phase == "new":
                    self._publish(model, number, "END")
                del versions[number]
        for number, path in aspired.items():
            if number not in versions:
                versions[number] = Version(number, path)
                self._publish(model, number, "START")
        self.lock.notify_all()

    # ---- the manager ---------------------------------------------------------------
    # AspiredVersionsManager (core/aspired_versions_manager.cc, 2.18.0): every
    # manage_state_interval_micros (100 ms) one thread takes ONE action over all models:
    # each model's AvailabilityPreservingPolicy proposes at most one, unloads go before
    # loads (CompareActions), and the first is performed. BasicManager
    # (core/basic_manager.cc) runs a load on its load executor and an unload on its unload
    # executor; with 0 threads that executor is inline, i.e. the action runs in the manager
    # thread itself and nothing else happens until it ends (retries included). While the
    # first config loads, ServerCore uses num_initial_load_threads (4 x CPUs) load threads
    # (ConnectSourcesWithFastInitialLoad, core/load_servables_fast.cc), then
    # --num_load_threads.
    def manage_forever(self) -> None:
        try:
            while not self.stop.wait(MANAGE_STATE_INTERVAL_SECONDS):
                self.manage_once()
        except BaseException:  # a stand-in bug: die loudly rather than hang its tests
            import traceback

            log("E", f"manager thread failed:\n{traceback.format_exc()}")
            os._exit(70)

    def manage_once(self) -> None:
        with self.lock:
            candidates = []
            for model in sorted(self.managed):
                action = _next_action(list(self.managed[model].values()))
                if action is not None:
                    candidates.append((action[0] != "unload", model, *action))
            if not candidates:
                return
            _, model, kind, version = min(candidates, key=lambda c: c[:2])
            version.phase = "load_requested" if kind == "load" else "unload_requested"
            threads = self._threads(kind)
        target = self._load if kind == "load" else self._unload
        if threads == 0:
            target(model, version)
        else:
            self._executor(kind, threads).submit(target, model, version)

    def _threads(self, kind: str) -> int:
        if kind == "unload":
            return int(self.flags["num_unload_threads"])
        if self.initial_load:
            return NUM_INITIAL_LOAD_THREADS
        return int(self.flags["num_load_threads"])

    def _executor(self, kind: str, threads: int) -> futures.ThreadPoolExecutor:
        current = self.executors.get(kind)
        if current is None or current[0] != threads:
            if current is not None:
                current[1].shutdown(wait=False)
            pool = futures.ThreadPoolExecutor(threads, thread_name_prefix=f"standin-{kind}")
            self.executors[kind] = current = (threads, pool)
        return current[1]

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _load(self, model: str, version: Version) -> None:
        """BasicManager::ExecuteLoad and LoaderHarness::Load (core/loader_harness.cc): the
        load with its retries, LOADING first, then AVAILABLE or END with the error."""
        with self.lock:
            version.phase = "loading"
            self._publish(model, version.number, "LOADING")
        log("I", f"Loading servable version {{name: {model} version: {version.number}}}")
        retries = self.flags["max_num_load_retries"]
        error = TfError("UNKNOWN", "not loaded")
        for attempt in range(retries + 1):
            self._sleep(load_seconds(version.path, self.load_seconds))
            try:
                loaded = load_version(version.path, self.load_options)
            except TfError as caught:
                error = caught
            except Exception as caught:  # an unreadable file and the like
                error = TfError("UNKNOWN", f"{type(caught).__name__}: {caught}")
            else:
                self._count_attempt(version.path, "success")
                with self.lock:
                    version.loaded = loaded
                    version.phase = "ready"
                    self._publish(model, version.number, "AVAILABLE")
                log(
                    "I",
                    f"Successfully loaded servable version {{name: {model} "
                    f"version: {version.number}}}",
                )
                return
            self._count_attempt(version.path, "fail")
            log(
                "E",
                f"Loading servable: {{name: {model} version: {version.number}}} failed: {error}",
            )
            if attempt == retries or not version.aspired or self.stop.is_set():
                break
            log("I", f"Retrying load in {self.flags['load_retry_interval_micros']} us")
            self._sleep(self.flags["load_retry_interval_micros"] / 1e6)
        with self.lock:
            version.phase = "error"
            self._publish(model, version.number, "END", error.code, error.message)
            if not version.aspired:
                self.managed.get(model, {}).pop(version.number, None)

    def _count_attempt(self, path: str, status: str) -> None:
        with self.lock:
            key = (path, status)
            self.load_attempts[key] = self.load_attempts.get(key, 0) + 1

    def prometheus_page(self) -> str:
        """The Prometheus text page (util/prometheus_exporter.cc: '/' in a metric name
        becomes ':'), holding TensorFlow's /tensorflow/cc/saved_model/load_attempt_count
        counter (the only metric the stand-in keeps)."""
        name = ":tensorflow:cc:saved_model:load_attempt_count"
        lines = [f"# TYPE {name} counter"]
        with self.lock:
            for (path, status), count in sorted(self.load_attempts.items()):
                escaped = path.replace("\\", "\\\\").replace('"', '\\"')
                lines.append(f'{name}{{model_path="{escaped}",status="{status}"}} {count}')
        return "\n".join(lines) + "\n"

    def _unload(self, model: str, version: Version) -> None:
        with self.lock:
            version.phase = "unloading"
            self._publish(model, version.number, "UNLOADING")
        self._sleep(min(self.load_seconds, 0.1))
        with self.lock:
            version.loaded = None
            self._publish(model, version.number, "END")
            self.managed.get(model, {}).pop(version.number, None)
        log("I", f"Unloaded servable version {{name: {model} version: {version.number}}}")

    # ---- lookups for requests ---------------------------------------------------------
    def label_version(self, model: str, label: str) -> int:
        with self.lock:
            version = self.labels.get(model, {}).get(label)
        if version is None:
            raise TfError("INVALID_ARGUMENT", f"Unrecognized servable version label: {label}")
        return version

    def serving(self, model: str, number: int | None) -> Version:
        with self.lock:
            ready = [v for v in self.managed.get(model, {}).values() if v.phase == "ready"]
        if number is None:
            if ready:
                return max(ready, key=lambda v: v.number)
            raise TfError("NOT_FOUND", f"Servable not found for request: Latest({model})")
        for v in ready:
            if v.number == number:
                return v
        raise TfError("NOT_FOUND", f"Servable not found for request: Specific({model}, {number})")


def _platform(model: Any) -> str:
    if model.model_type:  # deprecated enum: 1 = TENSORFLOW
        if model.model_platform:
            raise TfError(
                "INVALID_ARGUMENT",
                "Illegal setting both ModelServerConfig::model_type (deprecated) and "
                "ModelServerConfig::model_platform.",
            )
        return "tensorflow" if model.model_type == 1 else "other"
    if not model.model_platform:
        raise TfError(
            "INVALID_ARGUMENT",
            "Illegal setting neither ModelServerConfig::model_type (deprecated) nor "
            "ModelServerConfig::model_platform.",
        )
    return model.model_platform


def _apply_policy(source: Source, versions: dict[int, str]) -> dict[int, str]:
    kind = source.policy.WhichOneof("policy_choice")
    if kind == "all":
        return dict(versions)
    if kind == "specific":
        wanted = set(source.policy.specific.versions)
        missing = sorted(wanted - set(versions))
        if missing:
            log("W", f"versions {missing} of servable {source.name} not found")
        return {n: p for n, p in versions.items() if n in wanted}
    count = max(source.policy.latest.num_versions, 1) if kind == "latest" else 1
    return {n: versions[n] for n in sorted(versions, reverse=True)[:count]}


def _next_action(versions: list[Version]) -> tuple[str, Version] | None:
    """AvailabilityPreservingPolicy: unload a non-aspired serving version only when an
    aspired one serves (or nothing is aspired, or several non-aspired ones serve; the
    lowest goes first); otherwise load the highest new aspired version."""
    aspired = [v for v in versions if v.aspired]
    aspired_serving = any(v.phase == "ready" for v in aspired)
    leftovers = [v for v in versions if not v.aspired and v.phase == "ready"]
    if leftovers and (not aspired or aspired_serving or len(leftovers) > 1):
        return "unload", min(leftovers, key=lambda v: v.number)
    new = [v for v in aspired if v.phase == "new"]
    if new:
        return "load", max(new, key=lambda v: v.number)
    return None


# --------------------------------------------------------------------------------------
# gRPC services
# --------------------------------------------------------------------------------------


def _abort_with(context: Any, error: TfError) -> None:
    import grpc

    context.set_code(getattr(grpc.StatusCode, error.code))
    context.set_details(error.message)


def model_status(core: Core, request: Any) -> Any:
    """GetModelStatusImpl::GetModelStatus (model_servers/get_model_status_impl.cc, 2.18.0):
    a `version` selects that version; anything else, a version_label included (it is
    never resolved), returns every version the state monitor knows, highest first."""
    pb = protos()
    if not request.HasField("model_spec"):
        raise TfError("INVALID_ARGUMENT", "Missing ModelSpec")
    spec = request.model_spec
    states = core.version_states(spec.name)
    if spec.HasField("version"):
        wanted = spec.version.value
        states = [s for s in states if s[0] == wanted]
        if not states:
            raise TfError("NOT_FOUND", f"Could not find version {wanted} of model {spec.name}")
    elif not states:
        raise TfError("NOT_FOUND", f"Could not find any versions of model {spec.name}")
    response = pb.status.GetModelStatusResponse()
    for number, state, code, message in states:
        entry = response.model_version_status.add(version=number)
        entry.state = pb.status.ModelVersionStatus.State.Value(state)
        entry.status.error_code = TF_CODES[code]
        entry.status.error_message = message
    return response


def make_servicers(core: Core) -> tuple[Any, Any]:
    pb = protos()

    class ModelService(pb.model_service_grpc.ModelServiceServicer):
        def GetModelStatus(self, request: Any, context: Any) -> Any:
            try:
                return model_status(core, request)
            except TfError as error:
                _abort_with(context, error)
                return pb.status.GetModelStatusResponse()

        def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:
            response = pb.management.ReloadConfigResponse()
            try:
                if request.config.WhichOneof("config") != "model_config_list":
                    raise TfError(
                        "INVALID_ARGUMENT",
                        "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                        "Only ModelConfigList is currently supported",
                    )
                # model_servers/model_service_impl.cc HandleReloadConfigRequest logs every
                # entry of the config it was sent before ServerCore::ReloadConfig (a config
                # poll logs none of this: how an operator tells the two reloads apart)
                for index, entry in enumerate(request.config.model_config_list.config):
                    log(
                        "I",
                        f"\nConfig entry\n\tindex : {index}\n\tpath : {entry.base_path}"
                        f"\n\tname : {entry.name}\n\tplatform : {entry.model_platform}",
                    )
                core.reload(request.config)
            except TfError as error:
                log("E", f"ReloadConfig failed: {error}")
                response.status.error_code = TF_CODES[error.code]
                response.status.error_message = error.message
                _abort_with(context, error)
            return response

    class PredictionService(pb.prediction_service_grpc.PredictionServiceServicer):
        def Predict(self, request: Any, context: Any) -> Any:
            response = pb.predict.PredictResponse()
            try:
                predict(core, request, response)
            except TfError as error:
                _abort_with(context, error)
                return pb.predict.PredictResponse()
            return response

    return ModelService(), PredictionService()


def predict(core: Core, request: Any, response: Any) -> None:
    if not request.HasField("model_spec"):
        raise TfError("INVALID_ARGUMENT", "Missing ModelSpec")
    spec = request.model_spec
    if not spec.name:
        raise TfError("INVALID_ARGUMENT", "ModelSpec has no name specified.")
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        number: int | None = spec.version.value
    elif choice == "version_label":
        number = core.label_version(spec.name, spec.version_label)
    else:
        number = None
    version = core.serving(spec.name, number)
    assert version.loaded is not None
    signature_name, signature = check_predict_request(
        version.loaded.signatures, request, core.load_options.method_name_check
    )
    if version.loaded.batching is not None:
        # The session of a batched version is the batching session
        # (SavedModelBundleFactory::InternalCreateSavedModelBundle): Predict goes through it.
        check_batched_run(version.loaded.batching, request_dims(request))
    response.model_spec.name = spec.name
    response.model_spec.version.value = version.number
    response.model_spec.signature_name = signature_name
    zero_outputs(signature, request, response)


# --------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------

# http_server.cc RestApiRequestDispatcher: paths matching kHTTPRestApiHandlerPathRegex go
# to the REST handler; http_rest_api_util.cc kModelStatusApiRegex parses a GET.
_REST_PATH = re.compile(r"(?i)/v1/.*")
_STATUS_PATH = re.compile(
    r"(?i)/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:/(metadata))?"
)
_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"  # PrometheusExporter::kPrometheusPath


def rest_status(core: Core, path: str) -> tuple[int, dict[str, Any]]:
    """HttpRestApiHandler::ProcessRequest for a GET (model_servers/http_rest_api_handler.cc,
    http_rest_api_util.cc ParseModelInfo/FillModelSpecWithNameVersionAndLabel, 2.18.0) and
    the HTTP code of ToHTTPStatusCode (http_server.cc)."""
    pb = protos()
    match = _STATUS_PATH.fullmatch(path)
    try:
        if match is None:
            raise TfError("INVALID_ARGUMENT", f"Malformed request: GET {path}")
        name, version, label, subresource = match.groups()
        if subresource == "metadata":
            raise TfError("UNIMPLEMENTED", "the stand-in serves no model metadata")
        if not name:
            raise TfError("INVALID_ARGUMENT", "Missing model name in request.")
        request = pb.status.GetModelStatusRequest()
        request.model_spec.name = urllib.parse.unquote(name)
        if version is not None:
            request.model_spec.version.value = int(version)
        if label is not None:
            request.model_spec.version_label = urllib.parse.unquote(label)
        response = model_status(core, request)
    except TfError as error:
        return HTTP_FOR_CODE.get(error.code, 500), {"error": error.message}
    return 200, {
        "model_version_status": [
            {
                "version": str(entry.version),
                "state": pb.status.ModelVersionStatus.State.Name(entry.state),
                "status": {
                    "error_code": _code_name(entry.status.error_code),
                    "error_message": entry.status.error_message,
                },
            }
            for entry in response.model_version_status
        ]
    }


def make_rest_handler(core: Core, monitoring: Any) -> type[BaseHTTPRequestHandler]:
    prometheus = None
    if monitoring.prometheus_config.enable:
        prometheus = monitoring.prometheus_config.path or _PROMETHEUS_PATH

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if prometheus is not None and path == prometheus:
                self._reply_text(200, core.prometheus_page())
            elif _REST_PATH.fullmatch(path) is None:
                self._reply(404, {"error": f"no handler for GET {path}"})
            else:
                self._reply(*rest_status(core, path))

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._reply(501, {"error": "the TF Serving stand-in serves no REST predictions"})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = (json.dumps(body, indent=1) + "\n").encode()
            self._send(status, "application/json", data)

        def _reply_text(self, status: int, text: str) -> None:
            self._send(status, "text/plain", text.encode())

        def _send(self, status: int, kind: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def _code_name(number: int) -> str:
    for name, value in TF_CODES.items():
        if value == number:
            return name
    return str(number)


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def read_model_config(path: str) -> Any:
    return parse_text_file(path, protos().server_config.ModelServerConfig())


def _channel_arguments(text: str) -> list[tuple[str, Any]]:
    """parseGrpcChannelArgs (model_servers/server.cc, 2.18.0): split at ',' keeping empty
    pieces, each piece split at '='; an empty piece or one without '=' reads past the
    split result (a crash), a second '=' silently drops the rest. A value that parses as
    int32 is passed as an int, anything else as a string. The stand-in refuses all three
    malformed shapes, and a key with surrounding spaces (gRPC ignores unknown keys)."""
    options: list[tuple[str, Any]] = []
    if not text:
        return options
    for entry in text.split(","):
        if entry.count("=") != 1:
            raise FlagError(
                f"--grpc_channel_arguments entry {entry!r} is not key=value "
                "(TF Serving crashes or truncates it)"
            )
        key, raw = entry.split("=")
        if not key or key != key.strip():
            raise FlagError(f"--grpc_channel_arguments key {key!r} is not a gRPC argument")
        number = int(raw) if re.fullmatch(r"-?\d+", raw) else None
        fits = number is not None and -(2**31) <= number < 2**31
        options.append((key, number if fits else raw))
    return options


def _startup(flags: dict[str, Any], stop: threading.Event) -> tuple[Core, Any]:
    """Server::BuildAndStart (model_servers/server.cc, 2.18.0) up to ServerCore::Create,
    in its order. Raises FlagError/TfError/OSError on failure."""
    # Stricter than TF Serving, which logs an error and starts without the REST API.
    if flags["rest_api_port"] != 0 and flags["rest_api_port"] == flags["port"]:
        raise FlagError("--rest_api_port and --port cannot be the same")
    _channel_arguments(flags["grpc_channel_arguments"])
    if flags["port"] == 0 and not flags["grpc_socket_path"]:
        raise TfError(
            "INVALID_ARGUMENT",
            "At least one of server_options.grpc_port or server_options.grpc_socket_path "
            "must be set.",
        )
    if flags["use_alts_credentials"]:
        if flags["ssl_config_file"]:
            raise TfError(
                "INVALID_ARGUMENT",
                "Either use_alts_credentials must be false or ssl_config_file must be empty.",
            )
        raise FlagError("the stand-in cannot serve ALTS credentials")
    if flags["model_config_file"]:
        config = read_model_config(flags["model_config_file"])
    elif flags["model_base_path"]:
        config = protos().server_config.ModelServerConfig()
        entry = config.model_config_list.config.add()
        entry.name = flags["model_name"]
        entry.base_path = flags["model_base_path"]
        entry.model_platform = "tensorflow"
    else:
        raise FlagError("Both --model_base_path and --model_config_file are empty")
    if flags["platform_config_file"]:
        bundle_config, platforms = _platform_config(flags["platform_config_file"])
    else:
        bundle_config, platforms = _session_bundle_config(flags), {"tensorflow"}
    if bundle_config.HasField("batching_parameters"):
        check_scheduler_parameters(bundle_config.batching_parameters)
    if flags["thread_pool_factory_config_file"]:
        raise FlagError("the stand-in does not read --thread_pool_factory_config_file")
    options = LoadOptions(
        tags=frozenset(bundle_config.saved_model_tags) or frozenset({"serve"}),
        warmup=bundle_config.enable_model_warmup,
        batching=bundle_config.HasField("batching_parameters"),
        per_model_batching=bundle_config.enable_per_model_batching_params,
        global_batching=(
            bundle_config.batching_parameters
            if bundle_config.HasField("batching_parameters")
            else None
        ),
        method_name_check=flags["enable_signature_method_name_check"],
    )
    seconds = float(os.environ.get(LOAD_SECONDS_NAME, "0.3"))
    core = Core(
        flags=flags,
        load_seconds=seconds,
        load_options=options,
        stop=stop,
        platforms=frozenset(platforms),
    )
    threading.Thread(target=core.manage_forever, daemon=True).start()
    try:
        core.reload(config, first=True)
    finally:
        with core.lock:
            core.initial_load = False
    return core, config


def _session_bundle_config(flags: dict[str, Any]) -> Any:
    """The SessionBundleConfig BuildAndStart derives from the flags when there is no
    --platform_config_file."""
    bundle = message_class("SessionBundleConfig")()
    if flags["enable_batching"]:
        params = bundle.batching_parameters
        if flags["batching_parameters_file"]:
            parse_text_file(flags["batching_parameters_file"], params)
        else:
            params.thread_pool_name.value = "model_server_batch_threads"
        bundle.enable_per_model_batching_params = flags["enable_per_model_batching_parameters"]
    elif flags["batching_parameters_file"]:
        raise TfError(
            "INVALID_ARGUMENT",
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true.",
        )
    if flags["tensorflow_session_config_file"]:
        parse_text_file(flags["tensorflow_session_config_file"], bundle.session_config)
    parallelism = (
        flags["tensorflow_intra_op_parallelism"],
        flags["tensorflow_inter_op_parallelism"],
        flags["tensorflow_session_parallelism"],
    )
    if all(value > 0 for value in parallelism):
        raise TfError(
            "INVALID_ARGUMENT",
            "Either configure server_options.tensorflow_session_parallelism or "
            "(server_options.tensorflow_intra_op_parallelism, "
            "server_options.tensorflow_inter_op_parallelism) separately. "
            "You cannot configure all.",
        )
    # str_util::Split keeps empty pieces ("serve," is the tags {"serve", ""}).
    bundle.saved_model_tags.extend(flags["saved_model_tags"].split(","))
    bundle.enable_model_warmup = flags["enable_model_warmup"]
    return bundle


def _platform_config(path: str) -> tuple[Any, set[str]]:
    """--platform_config_file: a PlatformConfigMap (the real generated class) whose entries
    the batching, parallelism, GPU and warmup flags no longer reach (BuildAndStart). The
    stand-in serves the SavedModel platform only: every entry must hold a
    SavedModelBundleSourceAdapterConfig, whose legacy_config is used as the flags' result
    would be."""
    platform_map = parse_text_file(path, protos().platform_config.PlatformConfigMap())
    adapter_type = message_class("SavedModelBundleSourceAdapterConfig")
    bundle = None
    for name in sorted(platform_map.platform_configs):
        packed = platform_map.platform_configs[name].source_adapter_config
        adapter = adapter_type()
        if not packed.Unpack(adapter):
            raise FlagError(
                f"{path}: platform {name}: the stand-in serves only "
                f"SavedModelBundleSourceAdapterConfig, not {packed.type_url or 'nothing'}"
            )
        if bundle is not None and bundle != adapter.legacy_config:
            raise FlagError(f"{path}: the stand-in needs one configuration for all platforms")
        bundle = adapter.legacy_config
    if bundle is None:
        bundle = message_class("SessionBundleConfig")()
    return bundle, set(platform_map.platform_configs)


def _poll_versions(core: Core) -> None:
    interval = core.flags["file_system_poll_wait_seconds"]
    if interval < 0:
        return
    while not core.stop.is_set():
        try:
            core.poll_file_system()
        except Exception as error:  # keep polling like the server does
            log("E", f"file system poll failed: {error}")
        if interval == 0 or core.stop.wait(interval):
            return


def _poll_config_file(core: Core) -> None:
    interval = core.flags["model_config_file_poll_wait_seconds"]
    while not core.stop.wait(interval):
        try:
            config = read_model_config(core.flags["model_config_file"])
        except Exception as error:
            log("E", f"Failed to read ModelServerConfig file: {error}")
            continue
        try:
            core.reload(config)
        except TfError as error:
            log("E", f"PollFilesystemAndReloadConfig failed to ReloadConfig: {error}")


def _serve(core: Core) -> tuple[Any, Any]:
    import grpc

    flags = core.flags
    bind = os.environ.get("TFS_STANDIN_BIND", "0.0.0.0")
    model_service, prediction_service = make_servicers(core)
    options = [("grpc.so_reuseport", 0), *_channel_arguments(flags["grpc_channel_arguments"])]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
    pb = protos()
    pb.model_service_grpc.add_ModelServiceServicer_to_server(model_service, server)
    pb.prediction_service_grpc.add_PredictionServiceServicer_to_server(prediction_service, server)
    credentials = _server_credentials(flags["ssl_config_file"])
    address = f"[{bind}]:{flags['port']}" if ":" in bind else f"{bind}:{flags['port']}"
    if flags["port"] != 0:
        try:
            bound = (
                server.add_secure_port(address, credentials)
                if credentials
                else (server.add_insecure_port(address))
            )
        except RuntimeError as error:
            raise OSError(f"cannot bind gRPC to {address}: {error}") from None
        if not bound:
            raise OSError(f"cannot bind gRPC to {address}")
    if flags["grpc_socket_path"]:
        socket_address = f"unix:{host_path(flags['grpc_socket_path'])}"
        if credentials:
            server.add_secure_port(socket_address, credentials)
        else:
            server.add_insecure_port(socket_address)
    rest = None
    if flags["rest_api_port"] != 0:
        # BuildAndStart reads --monitoring_config_file only when the REST API is exported.
        monitoring = message_class("MonitoringConfig")()
        if flags["monitoring_config_file"]:
            parse_text_file(flags["monitoring_config_file"], monitoring)
        handler = make_rest_handler(core, monitoring)
        rest = RestServer((bind, flags["rest_api_port"]), handler)
        rest.daemon_threads = True
        threading.Thread(
            target=rest.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        ).start()
    server.start()
    log("I", f"Running gRPC ModelServer at {address} ...")
    if rest is not None:
        log("I", f"Exporting HTTP/REST API at:{bind}:{flags['rest_api_port']} ...")
    return server, rest


def _server_credentials(ssl_config_file: str) -> Any:
    """BuildServerCredentials (model_servers/server.cc, 2.18.0): with --ssl_config_file the
    gRPC ports serve TLS with the SSLConfig's key and certificate (client certificates
    required and checked against custom_ca when client_verify); the file must parse
    (TF_CHECK_OK: the real server aborts). None: insecure."""
    if not ssl_config_file:
        return None
    import grpc

    ssl = parse_text_file(ssl_config_file, message_class("SSLConfig")())
    try:
        return grpc.ssl_server_credentials(
            [(ssl.server_key.encode(), ssl.server_cert.encode())],
            root_certificates=ssl.custom_ca.encode() or None,
            require_client_auth=ssl.client_verify,
        )
    except (ValueError, TypeError, RuntimeError) as error:
        raise TfError(
            "INVALID_ARGUMENT", f"{ssl_config_file}: unusable SSLConfig: {error}"
        ) from None


def main(argv: list[str]) -> int:
    try:
        flags = parse_flags(argv)
    except FlagError as error:
        log("E", f"{error}")
        return 1
    if flags["version"]:
        # model_servers/main.cc (display_version): "TensorFlow ModelServer: <serving
        # version>" then "TensorFlow Library: <TF version>" on stdout, exit 0. The release
        # this stand-in claims is TFS_STANDIN_VERSION (a build suffix as release builds print)
        release = os.environ.get("TFS_STANDIN_VERSION", "2.18.0")
        sys.stdout.write(
            f"TensorFlow ModelServer: {release}-rc0+dev.sha.standin\n"
            f"TensorFlow Library: {release}\n"
        )
        return 0
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log("I", f"signal {signum}: shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log("I", "TF Serving stand-in for tests (not TF Serving) starting")
    try:
        core, _config = _startup(flags, stop)
        if stop.is_set():
            return 0
        grpc_server, rest = _serve(core)
    except TfError as error:
        if stop.is_set():
            return 0
        log("E", f"Failed to start server. Error: {error}")
        return 1
    except (FlagError, OSError, ValueError) as error:
        log("E", f"Failed to start server. Error: {error}")
        return 1
    if flags["model_config_file"] and flags["model_config_file_poll_wait_seconds"] > 0:
        threading.Thread(target=_poll_config_file, args=(core,), daemon=True).start()
    while not stop.wait(0.5):
        pass
    grpc_server.stop(grace=0.5)
    if rest is not None:
        rest.shutdown()
        rest.server_close()
    with core.lock:
        core.lock.notify_all()
    log("I", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
