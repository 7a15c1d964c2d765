"""Check a warmup file the way TF Serving will use it, without TensorFlow.

Everything that fails a load and can be decided from the bytes and saved_model.pb is
checked here: framing and CRCs, the record limit, the record types TF Serving replays,
and every predict request's inputs against its signature (names, dtypes, shapes, sizes).
What only running the graph reveals is replay.py's job.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import message

from tfsconf.errors import UserError
from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, warmup_path
from tfsconf.warmup.dtypes import dtype_info
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.signature import (
    DEFAULT_SIGNATURE,
    Signature,
    dtype_name,
    format_shape,
    serving_signatures,
    shape_from_proto,
)
from tfsconf.warmup.tfrecord import read_records

# PredictionLog oneof members that saved_model_warmup_util.cc replays; others fail the load.
REPLAYED_LOG_TYPES = ("predict_log", "classify_log", "regress_log", "multi_inference_log")


@dataclass(frozen=True, slots=True)
class WarmupProblem:
    """One reason the file would fail a load; record is None for whole-file problems."""

    record: int | None
    message: str

    def render(self) -> str:
        return self.message if self.record is None else f"record {self.record}: {self.message}"


@dataclass(frozen=True, slots=True)
class WarmupReport:
    """The outcome of verify_warmup."""

    path: Path
    records: int
    log_types: Mapping[str, int]
    problems: tuple[WarmupProblem, ...]
    replayed: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class ParsedWarmup:
    """The records that parsed, with the problems found so far."""

    logs: list[tuple[int, Any]]
    count: int
    problems: list[WarmupProblem]


def verify_warmup(
    model_dir: Path, *, path: Path | None = None, replay: bool = False
) -> WarmupReport:
    """Verify <model_dir>'s warmup file (or path) against the model's signatures.

    With replay, the records also run through the SavedModel with TensorFlow, as TF
    Serving does at load; that only happens when the static checks pass.
    """
    target = path or warmup_path(model_dir)
    if not target.is_file():
        raise UserError(f"{target}: warmup file not found")
    signatures = serving_signatures(model_dir)
    parsed = parse_warmup(target)
    for index, log in parsed.logs:
        parsed.problems.extend(check_log(index, log, signatures))
    counts: dict[str, int] = {}
    for _, log in parsed.logs:
        kind = str(log.WhichOneof("log_type"))
        counts[kind] = counts.get(kind, 0) + 1
    replayed = 0
    notes: list[str] = []
    if replay and not parsed.problems:
        from tfsconf.warmup.replay import replay_logs

        outcome = replay_logs(model_dir, parsed.logs)
        replayed = outcome.replayed
        parsed.problems.extend(WarmupProblem(i, text) for i, text in outcome.failures)
        notes.extend(outcome.notes)
    elif replay:
        notes.append("replay skipped: fix the problems above first")
    return WarmupReport(
        path=target,
        records=parsed.count,
        log_types=dict(sorted(counts.items())),
        problems=tuple(parsed.problems),
        replayed=replayed,
        notes=tuple(notes),
    )


def parse_warmup(path: Path) -> ParsedWarmup:
    """Read and parse every record; framing errors end the read, as they end TF's."""
    log_type = tf_protos().prediction_log.PredictionLog
    logs: list[tuple[int, Any]] = []
    problems: list[WarmupProblem] = []
    count = 0
    try:
        for index, payload in enumerate(read_records(path)):
            count += 1
            log = log_type()
            try:
                log.ParseFromString(payload)
            except message.DecodeError as exc:
                problems.append(WarmupProblem(index, f"not a PredictionLog: {exc}"))
                continue
            logs.append((index, log))
    except UserError as exc:
        problems.append(WarmupProblem(None, exc.message))
    if count > MAX_WARMUP_RECORDS:
        problems.append(
            WarmupProblem(
                None, f"{count} records: TF Serving fails the load above {MAX_WARMUP_RECORDS}"
            )
        )
    if count == 0 and not problems:
        problems.append(WarmupProblem(None, "the file has no records"))
    return ParsedWarmup(logs=logs, count=count, problems=problems)


def check_log(index: int, log: Any, signatures: Mapping[str, Signature]) -> list[WarmupProblem]:
    """Problems of one PredictionLog record."""
    kind = log.WhichOneof("log_type")
    if kind not in REPLAYED_LOG_TYPES:
        shown = kind or "an empty log"
        return [WarmupProblem(index, f"{shown}: TF Serving only replays {REPLAYED_LOG_TYPES}")]
    if kind == "multi_inference_log":
        names = [task.model_spec.signature_name for task in log.multi_inference_log.request.tasks]
    else:
        names = [getattr(log, kind).request.model_spec.signature_name]
    problems = []
    for name in names:
        signature = signatures.get(name or DEFAULT_SIGNATURE)
        if signature is None:
            available = ", ".join(sorted(signatures)) or "none"
            problems.append(
                WarmupProblem(
                    index,
                    f"signature '{name or DEFAULT_SIGNATURE}' is not in the SavedModel "
                    f"(signatures: {available})",
                )
            )
        elif kind == "predict_log":
            problems.extend(
                WarmupProblem(index, text)
                for text in check_inputs(log.predict_log.request.inputs, signature)
            )
    return problems


def check_inputs(inputs: Mapping[str, Any], signature: Signature) -> list[str]:
    """A PredictRequest's inputs against the signature, as TF Serving's predict checks them."""
    problems = []
    for name in sorted(set(signature.inputs) - set(inputs)):
        problems.append(f"input '{name}' of signature '{signature.name}' is missing")
    for name in sorted(set(inputs) - set(signature.inputs)):
        problems.append(f"input '{name}' is not in signature '{signature.name}'")
    batch_sizes: dict[str, int] = {}
    for name in sorted(set(inputs) & set(signature.inputs)):
        spec = signature.inputs[name]
        tensor = inputs[name]
        if tensor.dtype != spec.dtype:
            problems.append(
                f"input '{name}': dtype {dtype_name(tensor.dtype)}, the signature expects "
                f"{spec.dtype_name}"
            )
            continue
        shape = shape_from_proto(tensor.tensor_shape)
        if shape is None or any(d is None for d in shape):
            problems.append(f"input '{name}': a request tensor needs a fully known shape")
            continue
        if spec.shape is not None and not _fits(shape, spec.shape):
            problems.append(
                f"input '{name}': shape {format_shape(shape)} does not match the signature "
                f"shape {format_shape(spec.shape)}"
            )
        size_problem = _size_problem(tensor, shape)
        if size_problem:
            problems.append(f"input '{name}': {size_problem}")
        if shape:
            batch_sizes[name] = int(shape[0] or 0)
    if len(set(batch_sizes.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in batch_sizes.items())
        problems.append(f"inputs disagree on the batch size ({shown}); batching rejects that")
    return problems


def _fits(shape: tuple[int | None, ...], wanted: tuple[int | None, ...]) -> bool:
    return len(shape) == len(wanted) and all(
        w is None or w == s for s, w in zip(shape, wanted, strict=True)
    )


def _size_problem(tensor: Any, shape: tuple[int | None, ...]) -> str | None:
    """TensorFlow rejects a tensor whose content does not fill its shape."""
    info = dtype_info(int(tensor.dtype))
    if info is None:
        return None
    elements = math.prod(d or 0 for d in shape)
    if tensor.tensor_content and info.struct_code is not None:
        itemsize = struct.calcsize("<" + info.struct_code)
        if len(tensor.tensor_content) != elements * itemsize:
            return (
                f"tensor_content has {len(tensor.tensor_content)} bytes, shape "
                f"{format_shape(shape)} needs {elements * itemsize}"
            )
        return None
    values = len(getattr(tensor, info.val_field))
    if values > elements:
        return f"{values} values for shape {format_shape(shape)} ({elements} elements)"
    return None
