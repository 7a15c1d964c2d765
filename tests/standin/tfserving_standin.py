"""A stand-in for ``tensorflow_model_server``, used ONLY by tfsconf's tests.

This is not TF Serving and never serves a real model. The test bed starts it in place of
``tensorflow_model_server`` (same ``--name=value`` flags) so that tfsconf's apply playbooks
can be exercised against the part of TF Serving's behaviour tfsconf depends on:

* the ModelServerConfig life cycle: ``--model_config_file`` (text format, real generated
  class), optional file polling, gRPC ``ModelService/HandleReloadConfigRequest``;
* version discovery under each ``base_path`` (numeric child names only), version
  policies, and a missing ``base_path`` stalling the file-system poll of every model;
* loading: START -> LOADING -> AVAILABLE, or END with an error status when the version
  directory is not a complete SavedModel, its warmup file is bad, its batching parameters
  are bad, or it holds a file named ``TFS_STANDIN_FAIL_LOAD``; load retries;
  availability-preserving swaps (the old version serves until the new one is AVAILABLE);
* version labels and their FAILED_PRECONDITION rules;
* ``ModelService/GetModelStatus``, ``PredictionService/Predict`` and REST
  ``GET /v1/models/<name>[/versions/<v>|/labels/<l>]``.

Predict checks the request against the version's SignatureDef (read from saved_model.pb)
and answers with zero-filled tensors of the declared dtypes and shapes: outputs are NOT
computed. TensorFlow's runtime is never imported; only the generated protobuf modules.

Environment: TFS_STANDIN_ROOT (prefix for every absolute path opened), TFS_STANDIN_BIND
(bind address, default 0.0.0.0), TFS_STANDIN_LOAD_SECONDS (time one load takes, default
0.3), TFS_STANDIN_VERSION (the release ``--version`` reports, default 2.18.0).
Run: ``python tfserving_standin.py --port=8500 --rest_api_port=8501
--model_config_file=/srv/.../models.config``.
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
HTTP_FOR_CODE = {"OK": 200, "NOT_FOUND": 404, "INVALID_ARGUMENT": 400, "UNAVAILABLE": 503}


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
}


class FlagError(Exception):
    pass


def parse_flags(argv: list[str]) -> dict[str, Any]:
    """--name=value for every flag; a bare --name only for booleans (= true)."""
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
# BatchingParameters (not shipped as pb2: described here with TF Serving's field numbers)
# --------------------------------------------------------------------------------------

_BATCHING_FIELDS = (
    ("max_batch_size", 1, "Int64Value", False),
    ("batch_timeout_micros", 2, "Int64Value", False),
    ("max_enqueued_batches", 3, "Int64Value", False),
    ("num_batch_threads", 4, "Int64Value", False),
    ("thread_pool_name", 5, "StringValue", False),
    ("allowed_batch_sizes", 6, "int64", True),
    ("pad_variable_length_inputs", 7, "bool", False),
    ("enable_large_batch_splitting", 8, "BoolValue", False),
    ("max_execution_batch_size", 9, "Int64Value", False),
)
_batching_class: list[Any] = []


def batching_parameters_class() -> Any:
    if _batching_class:
        return _batching_class[0]
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    fdp = descriptor_pb2.FileDescriptorProto(
        name="tfserving_standin/batching_parameters.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    message = fdp.message_type.add(name="BatchingParameters")
    fd = descriptor_pb2.FieldDescriptorProto
    for name, number, kind, repeated in _BATCHING_FIELDS:
        entry = message.field.add(name=name, number=number)
        entry.label = fd.LABEL_REPEATED if repeated else fd.LABEL_OPTIONAL
        if kind == "int64":
            entry.type = fd.TYPE_INT64
        elif kind == "bool":
            entry.type = fd.TYPE_BOOL
        else:
            entry.type = fd.TYPE_MESSAGE
            entry.type_name = f".google.protobuf.{kind}"
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    pool.Add(fdp)
    cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )
    _batching_class.append(cls)
    return cls


def parse_batching_parameters(path: str) -> Any:
    from google.protobuf import text_format

    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    params = batching_parameters_class()()
    try:
        text_format.Parse(text, params)
    except text_format.ParseError as error:
        raise TfError(
            "INVALID_ARGUMENT", f"cannot parse {path} as BatchingParameters: {error}"
        ) from None
    return params


def check_batching_parameters(params: Any) -> None:
    """The rules TF Serving applies when a batched model loads."""

    def value(name: str, default: int) -> int:
        return getattr(params, name).value if params.HasField(name) else default

    max_batch = value("max_batch_size", 1000)
    if max_batch <= 0:
        raise TfError("INVALID_ARGUMENT", "max_batch_size must be positive")
    if value("batch_timeout_micros", 0) < 0:
        raise TfError("INVALID_ARGUMENT", "batch_timeout_micros must be non-negative")
    if value("max_enqueued_batches", 10) < 1:
        raise TfError("INVALID_ARGUMENT", "max_enqueued_batches must be positive")
    if value("num_batch_threads", 1) < 1:
        raise TfError("INVALID_ARGUMENT", "num_batch_threads must be positive")
    splitting = params.HasField("enable_large_batch_splitting") and (
        params.enable_large_batch_splitting.value
    )
    last_must_match = max_batch
    if splitting and params.HasField("max_execution_batch_size"):
        if params.max_execution_batch_size.value > max_batch:
            raise TfError("INVALID_ARGUMENT", "max_execution_batch_size must be <= max_batch_size")
        last_must_match = params.max_execution_batch_size.value
    sizes = list(params.allowed_batch_sizes)
    if sizes:
        if any(size <= 0 for size in sizes) or any(b <= a for a, b in itertools.pairwise(sizes)):
            raise TfError(
                "INVALID_ARGUMENT", "allowed_batch_sizes entries must be positive and increasing"
            )
        if sizes[-1] != last_must_match:
            raise TfError(
                "INVALID_ARGUMENT", "Last entry in allowed_batch_sizes must match max_batch_size"
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
    global_batching: Any  # parsed BatchingParameters or None


def load_version(path: str, options: LoadOptions) -> dict[str, Any]:
    """Check a version directory the way a real load would fail; return its signatures."""
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
    if options.batching:
        _check_batching(path, options)
    signatures = dict(graphs[0].signature_def)
    warmup = os.path.join(path, "assets.extra", "tf_serving_warmup_requests")
    if options.warmup and os.path.isfile(warmup):
        _check_warmup(warmup, signatures)
    return signatures


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


def _check_batching(path: str, options: LoadOptions) -> None:
    if options.per_model_batching:
        own = os.path.join(path, "batching_params.pbtxt")
        if not os.path.isfile(own):
            return  # not batched
        check_batching_parameters(parse_batching_parameters(own))
    elif options.global_batching is not None:
        check_batching_parameters(options.global_batching)


def _check_warmup(warmup: str, signatures: dict[str, Any]) -> None:
    pb = protos()
    for data in read_tfrecords(warmup, MAX_WARMUP_RECORDS):
        entry = pb.prediction_log.PredictionLog()
        try:
            entry.ParseFromString(data)
        except Exception:
            raise TfError("DATA_LOSS", f"Failed to parse warmup record from {warmup}") from None
        kind = entry.WhichOneof("log_type")
        if kind not in ("predict_log", "classify_log", "regress_log", "multi_inference_log"):
            raise TfError("UNIMPLEMENTED", f"Unsupported log_type for warmup: {kind}")
        if kind == "predict_log":
            try:
                check_predict_request(signatures, entry.predict_log.request)
            except TfError as error:
                raise TfError(error.code, f"warmup request failed: {error.message}") from None


# --------------------------------------------------------------------------------------
# Predict: request validation and zero-filled answers
# --------------------------------------------------------------------------------------


def _dtype_name(dtype: int) -> str:
    names = protos().types.DataType
    try:
        return names.Name(dtype).removeprefix("DT_").lower()
    except ValueError:
        return str(dtype)


def check_predict_request(signatures: dict[str, Any], request: Any) -> tuple[str, Any]:
    name = request.model_spec.signature_name or "serving_default"
    if name not in signatures:
        raise TfError(
            "INVALID_ARGUMENT", f'Serving signature name: "{name}" not found in signature def'
        )
    signature = signatures[name]
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
    phase: str = "new"  # new, loading, ready, unloading, error
    aspired: bool = True
    signatures: dict[str, Any] = field(default_factory=dict)


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
    lock: threading.Condition = field(default_factory=threading.Condition)
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    config: Any = None  # current ModelServerConfig
    sources: dict[str, Source] = field(default_factory=dict)
    managed: dict[str, dict[int, Version]] = field(default_factory=dict)
    busy: set[str] = field(default_factory=set)
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
                raise TfError(
                    "INVALID_ARGUMENT", "Missing custom_model_config_loader in ServerCore Options"
                )
            models = list(new_config.model_config_list.config)
            self._validate(models)
            new_labels = self._check_labels(models)
            with self.lock:
                self.config = new_config
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
            log("I", f"Adding/updating models: {sorted(wanted)}")
            self._await_models(added if not first else sorted(wanted), started)
            with_logging = [m.name for m in models if m.HasField("logging_config")]
            if with_logging:
                raise TfError(
                    "FAILED_PRECONDITION",
                    f"No request-logger-creator provided (logging_config of {with_logging[0]})",
                )

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
            if platform != "tensorflow":
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
                            f"which is not currently available for inference "
                            f"(label: {label})",
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
    def manage_forever(self) -> None:
        with self.lock:
            while not self.stop.is_set():
                for model, versions in self.managed.items():
                    if model in self.busy:
                        continue
                    action = _next_action(list(versions.values()))
                    if action is None:
                        continue
                    kind, version = action
                    self.busy.add(model)
                    target = self._load if kind == "load" else self._unload
                    threading.Thread(target=target, args=(model, version), daemon=True).start()
                self.lock.wait(0.1)

    def _sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)

    def _load(self, model: str, version: Version) -> None:
        with self.lock:
            version.phase = "loading"
            self._publish(model, version.number, "LOADING")
        log("I", f"Loading servable version {{name: {model} version: {version.number}}}")
        retries = self.flags["max_num_load_retries"]
        error = TfError("UNKNOWN", "not loaded")
        for attempt in range(retries + 1):
            self._sleep(self.load_seconds)
            try:
                signatures = load_version(version.path, self.load_options)
            except TfError as caught:
                error = caught
            except Exception as caught:  # an unreadable file and the like
                error = TfError("UNKNOWN", f"{type(caught).__name__}: {caught}")
            else:
                with self.lock:
                    version.signatures = signatures
                    version.phase = "ready"
                    self._publish(model, version.number, "AVAILABLE")
                    self.busy.discard(model)
                log(
                    "I",
                    f"Successfully loaded servable version {{name: {model} "
                    f"version: {version.number}}}",
                )
                return
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
            self.busy.discard(model)

    def _unload(self, model: str, version: Version) -> None:
        with self.lock:
            version.phase = "unloading"
            self._publish(model, version.number, "UNLOADING")
        self._sleep(min(self.load_seconds, 0.1))
        with self.lock:
            version.signatures = {}
            self._publish(model, version.number, "END")
            self.managed.get(model, {}).pop(version.number, None)
            self.busy.discard(model)
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
    pb = protos()
    if not request.HasField("model_spec"):
        raise TfError("INVALID_ARGUMENT", "Missing ModelSpec")
    spec = request.model_spec
    states = core.version_states(spec.name)
    choice = spec.WhichOneof("version_choice")
    if choice == "version_label":
        # Real gRPC GetModelStatus ignores version_label (it reads only `version`); here a
        # label resolves through the label map, and an unknown one is NOT_FOUND.
        try:
            wanted = core.label_version(spec.name, spec.version_label)
        except TfError as error:
            raise TfError("NOT_FOUND", error.message) from None
    elif choice == "version":
        wanted = spec.version.value
    else:
        wanted = None
    if wanted is not None:
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
    signature_name, signature = check_predict_request(version.signatures, request)
    response.model_spec.name = spec.name
    response.model_spec.version.value = version.number
    response.model_spec.signature_name = signature_name
    zero_outputs(signature, request, response)


# --------------------------------------------------------------------------------------
# REST
# --------------------------------------------------------------------------------------

_STATUS_PATH = re.compile(r"/v1/models/([^/:]+)(?:/versions/(\d+)|/labels/([^/:]+))?")


def make_rest_handler(core: Core) -> type[BaseHTTPRequestHandler]:
    pb = protos()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            match = _STATUS_PATH.fullmatch(self.path.split("?", 1)[0])
            if match is None:
                self._reply(404, {"error": f"Malformed request: GET {self.path}"})
                return
            request = pb.status.GetModelStatusRequest()
            request.model_spec.name = match.group(1)
            if match.group(2) is not None:
                request.model_spec.version.value = int(match.group(2))
            elif match.group(3) is not None:
                request.model_spec.version_label = match.group(3)
            try:
                response = model_status(core, request)
            except TfError as error:
                self._reply(HTTP_FOR_CODE.get(error.code, 500), {"error": error.message})
                return
            body = {
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
            self._reply(200, body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._reply(404, {"error": "the TF Serving stand-in serves no REST predictions"})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = (json.dumps(body, indent=1) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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
    from google.protobuf import text_format

    config = protos().server_config.ModelServerConfig()
    with open(host_path(path), encoding="utf-8") as handle:
        text = handle.read()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as error:
        raise TfError(
            "INVALID_ARGUMENT", f"cannot parse {path} as ModelServerConfig: {error}"
        ) from None
    return config


def _channel_arguments(text: str) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = []
    for entry in filter(None, text.split(",")):
        if "=" not in entry:
            raise FlagError(f"--grpc_channel_arguments entry without '=': {entry!r}")
        key, raw = entry.split("=", 1)
        options.append((key.strip(), int(raw) if re.fullmatch(r"-?\d+", raw) else raw))
    return options


def _startup(flags: dict[str, Any], stop: threading.Event) -> tuple[Core, Any]:
    """Everything before the ports open. Raises FlagError/TfError/OSError on failure."""
    if flags["rest_api_port"] != 0 and flags["rest_api_port"] == flags["port"]:
        raise FlagError("--rest_api_port and --port cannot be the same")
    _channel_arguments(flags["grpc_channel_arguments"])
    global_batching = None
    if flags["enable_batching"] and flags["batching_parameters_file"]:
        global_batching = parse_batching_parameters(host_path(flags["batching_parameters_file"]))
    elif flags["batching_parameters_file"]:
        log("W", "--batching_parameters_file is ignored without --enable_batching=true")
    for name in ("monitoring_config_file", "ssl_config_file", "platform_config_file"):
        if flags[name]:
            with open(host_path(flags[name]), encoding="utf-8") as handle:
                handle.read()  # readable text; its content is not interpreted
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
    options = LoadOptions(
        tags=frozenset(t for t in flags["saved_model_tags"].split(",") if t),
        warmup=flags["enable_model_warmup"],
        batching=flags["enable_batching"],
        per_model_batching=flags["enable_per_model_batching_parameters"],
        global_batching=global_batching,
    )
    load_seconds = float(os.environ.get("TFS_STANDIN_LOAD_SECONDS", "0.3"))
    core = Core(flags=flags, load_seconds=load_seconds, load_options=options, stop=stop)
    threading.Thread(target=core.manage_forever, daemon=True).start()
    threading.Thread(target=_poll_versions, args=(core,), daemon=True).start()
    core.reload(config, first=True)
    return core, config


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
    address = f"[{bind}]:{flags['port']}" if ":" in bind else f"{bind}:{flags['port']}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        raise OSError(f"cannot bind gRPC to {address}: {error}") from None
    if not bound:
        raise OSError(f"cannot bind gRPC to {address}")
    if flags["grpc_socket_path"]:
        server.add_insecure_port(f"unix:{host_path(flags['grpc_socket_path'])}")
    rest = None
    if flags["rest_api_port"] > 0:
        rest = RestServer((bind, flags["rest_api_port"]), make_rest_handler(core))
        rest.daemon_threads = True
        threading.Thread(
            target=rest.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        ).start()
    server.start()
    log("I", f"Running gRPC ModelServer at {address} ...")
    if rest is not None:
        log("I", f"Exporting HTTP/REST API at:{bind}:{flags['rest_api_port']} ...")
    return server, rest


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
