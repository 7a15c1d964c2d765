"""Check a warmup file the way TF Serving will use it, without TensorFlow.

Everything that fails a load and can be decided from the bytes and saved_model.pb is
checked here: framing and CRCs, the record limit, the record types TF Serving replays,
every predict request's inputs and output_filter against its signature, and the
classify / regress / multi-inference preprocessing (signature method and shape, a
non-empty example list). What only running the graph reveals is replay.py's job.

What TF Serving accepts, verify accepts: an empty PredictionLog, a predict_streamed_log
and an empty file are skipped by the server, so they are reported as notes, not
problems. Checks the server makes only with --enable_batching (a batch dimension on every
input, one batch size across inputs) run only with ``batching=True``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import message

from tfsconf.errors import UserError
from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, warmup_path
from tfsconf.warmup.dtypes import dtype_info
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.served import (
    CLASSIFY_METHOD,
    DEFAULT_OPTIONS,
    PREDICT_METHOD,
    REGRESS_METHOD,
    CheckOptions,
    lookup_signature,
)
from tfsconf.warmup.signature import (
    Signature,
    dtype_name,
    format_shape,
    serving_signatures,
    shape_from_proto,
)
from tfsconf.warmup.tfrecord import read_records
from tfsconf.warmup.verify_examples import (
    check_example_input,
    check_example_signature,
    check_multi_inference,
)

# PredictionLog oneof members that saved_model_warmup.cc replays.
REPLAYED_LOG_TYPES = ("predict_log", "classify_log", "regress_log", "multi_inference_log")
# The one member that fails the load (Unimplemented); every other one is skipped.
FAILING_LOG_TYPE = "session_run_log"
EMPTY_LOG = "empty"


@dataclass(frozen=True, slots=True)
class WarmupProblem:
    """One finding; record is None for whole-file findings."""

    record: int | None
    message: str

    def render(self) -> str:
        return self.message if self.record is None else f"record {self.record}: {self.message}"


@dataclass(frozen=True, slots=True)
class WarmupReport:
    """The outcome of verify_warmup. Notes (including per-record warnings) never fail it."""

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
class Findings:
    """Problems fail the load; warnings are what TF Serving accepts but may surprise."""

    problems: tuple[WarmupProblem, ...] = ()
    warnings: tuple[WarmupProblem, ...] = ()

    def __add__(self, other: Findings) -> Findings:
        return Findings(self.problems + other.problems, self.warnings + other.warnings)


@dataclass(frozen=True, slots=True)
class ParsedWarmup:
    """The records that parsed, and what reading the file found."""

    logs: tuple[tuple[int, Any], ...]
    count: int
    findings: Findings


def verify_warmup(
    model_dir: Path,
    *,
    path: Path | None = None,
    replay: bool = False,
    batching: bool = False,
    method_name_check: bool = False,
) -> WarmupReport:
    """Verify <model_dir>'s warmup file (or path) against the model's signatures.

    batching: the server batches this model (--enable_batching), which adds checks.
    method_name_check: the server runs with --enable_signature_method_name_check.
    With replay, the records also run through the SavedModel with TensorFlow, as TF
    Serving does at load; that only happens when the static checks pass.
    """
    target = path or warmup_path(model_dir)
    if not target.is_file():
        raise UserError(f"{target}: warmup file not found")
    signatures = serving_signatures(model_dir)
    parsed = parse_warmup(target)
    options = CheckOptions(batching=batching, method_name_check=method_name_check)
    findings = parsed.findings + check_logs(parsed.logs, signatures, options)
    notes = [warning.render() for warning in findings.warnings]
    replayed = 0
    problems = findings.problems
    if replay and not problems:
        from tfsconf.warmup.replay import replay_logs

        outcome = replay_logs(model_dir, parsed.logs)
        replayed = outcome.replayed
        problems = tuple(WarmupProblem(i, text) for i, text in outcome.failures)
        notes.extend(outcome.notes)
    elif replay:
        notes.append("replay skipped: fix the problems above first")
    return WarmupReport(
        path=target,
        records=parsed.count,
        log_types=count_log_types(log for _, log in parsed.logs),
        problems=problems,
        replayed=replayed,
        notes=tuple(notes),
    )


def count_log_types(logs: Iterable[Any]) -> dict[str, int]:
    """Records per PredictionLog type, sorted; a record without a type counts as empty."""
    counts: dict[str, int] = {}
    for log in logs:
        kind = log.WhichOneof("log_type") or EMPTY_LOG
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))


def parse_warmup(path: Path) -> ParsedWarmup:
    """Read and parse every record; framing errors end the read, as they end TF's."""
    log_type = tf_protos().prediction_log.PredictionLog
    logs: list[tuple[int, Any]] = []
    problems: list[WarmupProblem] = []
    warnings: list[WarmupProblem] = []
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
        warnings.append(
            WarmupProblem(None, "the file has no records: TF Serving loads the model unwarmed")
        )
    return ParsedWarmup(
        logs=tuple(logs), count=count, findings=Findings(tuple(problems), tuple(warnings))
    )


def check_logs(
    logs: Iterable[tuple[int, Any]],
    signatures: Mapping[str, Signature],
    options: CheckOptions = DEFAULT_OPTIONS,
) -> Findings:
    """Findings of every parsed record, in record order."""
    findings = Findings()
    for index, log in logs:
        findings = findings + check_log(index, log, signatures, options)
    return findings


def check_log(
    index: int,
    log: Any,
    signatures: Mapping[str, Signature],
    options: CheckOptions = DEFAULT_OPTIONS,
) -> Findings:
    """Findings of one PredictionLog record."""
    kind = log.WhichOneof("log_type")
    if kind == FAILING_LOG_TYPE:
        replayed = ", ".join(REPLAYED_LOG_TYPES)
        text = f"{kind}: TF Serving fails the load on it (it replays only {replayed})"
        return Findings(problems=(WarmupProblem(index, text),))
    if kind not in REPLAYED_LOG_TYPES:
        shown = kind or "an empty PredictionLog"
        return Findings(warnings=(WarmupProblem(index, f"{shown}: TF Serving skips it"),))
    if kind == "predict_log":
        texts, notes = _check_predict(log.predict_log.request, signatures, options)
    elif kind == "multi_inference_log":
        texts, notes = check_multi_inference(log.multi_inference_log.request, signatures, options)
    else:
        request = getattr(log, kind).request
        method = CLASSIFY_METHOD if kind == "classify_log" else REGRESS_METHOD
        texts, notes = check_example_signature(
            request.model_spec.signature_name, method, signatures, options
        )
        texts += check_example_input(request.input)
    return Findings(
        problems=tuple(WarmupProblem(index, text) for text in texts),
        warnings=tuple(WarmupProblem(index, text) for text in notes),
    )


def _check_predict(
    request: Any, signatures: Mapping[str, Signature], options: CheckOptions
) -> tuple[list[str], list[str]]:
    """predict_util.cc: the signature, its method (when checked), inputs, output_filter."""
    signature = lookup_signature(request.model_spec.signature_name, signatures)
    if isinstance(signature, str):
        return [signature], []
    problems = []
    allowed = (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD)
    if options.method_name_check and signature.method_name not in allowed:
        problems.append(
            f"signature '{signature.name}' has method_name '{signature.method_name}': "
            "with --enable_signature_method_name_check, Predict needs predict, classify or regress"
        )
    texts, notes = check_inputs(request.inputs, signature, batching=options.batching)
    problems += texts
    problems += check_output_filter(request.output_filter, signature)
    return problems, notes


def check_output_filter(output_filter: Iterable[str], signature: Signature) -> list[str]:
    """PreProcessPrediction rejects an alias the signature lacks, and one listed twice."""
    problems = []
    seen: set[str] = set()
    outputs = ", ".join(sorted(signature.outputs)) or "none"
    for alias in output_filter:
        if alias in seen:
            problems.append(
                f"output_filter: '{alias}' is listed twice; TF Serving: duplicate output "
                "tensor alias"
            )
        elif alias not in signature.outputs:
            problems.append(
                f"output_filter: '{alias}' is not an output of signature '{signature.name}' "
                f"(outputs: {outputs}); TF Serving: output tensor alias not found in signature"
            )
        seen.add(alias)
    return problems


def check_inputs(
    inputs: Mapping[str, Any], signature: Signature, *, batching: bool = False
) -> tuple[list[str], list[str]]:
    """A PredictRequest's inputs against the signature: (problems, warnings).

    Without batching TF Serving feeds the tensors as they are; with it, the batching
    session also needs a batch dimension on every input and one batch size across them.
    """
    problems = []
    warnings = []
    for name in sorted(set(signature.inputs) - set(inputs) - signature.defaults):
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
        size_problem, size_warning = _size_findings(tensor, shape)
        if size_problem:
            problems.append(f"input '{name}': {size_problem}")
        if size_warning:
            warnings.append(f"input '{name}': {size_warning}")
        if not batching:
            continue
        if shape:
            batch_sizes[name] = int(shape[0] or 0)
        else:
            problems.append(
                f"input '{name}' is a scalar: with batching, TF Serving needs at least one "
                "dimension on every input"
            )
    if len(set(batch_sizes.values())) > 1:
        shown = ", ".join(f"{k}={v}" for k, v in batch_sizes.items())
        problems.append(f"inputs disagree on the batch size ({shown}); batching rejects that")
    return problems, warnings


def _fits(shape: tuple[int | None, ...], wanted: tuple[int | None, ...]) -> bool:
    return len(shape) == len(wanted) and all(
        w is None or w == s for s, w in zip(shape, wanted, strict=True)
    )


def _size_findings(tensor: Any, shape: tuple[int | None, ...]) -> tuple[str | None, str | None]:
    """(problem, warning) about how the content fills the shape, as Tensor::FromProto sees it.

    tensor_content must be exactly the shape's bytes. A *_val list is more forgiving: a
    longer one is cut to the shape, a shorter one repeats its last value, an empty one
    means zeros. TF Serving accepts all three, so they are only warnings (a single value
    for many elements is the broadcast form tf.make_tensor_proto writes: no warning).
    """
    info = dtype_info(int(tensor.dtype))
    if info is None:
        return None, None
    elements = math.prod(d or 0 for d in shape)
    if tensor.tensor_content and info.struct_code is not None:
        itemsize = struct.calcsize("<" + info.struct_code)
        if len(tensor.tensor_content) != elements * itemsize:
            return (
                f"tensor_content has {len(tensor.tensor_content)} bytes, shape "
                f"{format_shape(shape)} needs {elements * itemsize}"
            ), None
        return None, None
    values = len(getattr(tensor, info.val_field))
    shown = f"{values} values for shape {format_shape(shape)} ({elements} elements)"
    if values > elements:
        return None, f"{shown}: TensorFlow keeps the first {elements}"
    if 1 < values < elements:
        # One value for many elements is tf.make_tensor_proto's broadcast form: intended.
        return None, f"{shown}: TensorFlow repeats the last value to fill the shape"
    if values == 0 and elements > 0:
        return None, f"no values for shape {format_shape(shape)}: TensorFlow fills it with zeros"
    return None, None
