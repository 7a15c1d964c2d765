"""Build a warmup file from a SavedModel's signature and a sample file.

TF Serving replays the file's PredictionLog records when it loads the version; a record
whose inputs do not match the signature fails the load. So every input is shaped and
typed from the signature itself, and the records are spread over the server's allowed
batch sizes, because a batching server pads each request to one of them and each padded
size runs (and must be warmed) separately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfsconf.errors import UserError
from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, warmup_path
from tfsconf.warmup.examples import build_example_logs, takes_examples
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.samples import Sample, take_samples
from tfsconf.warmup.signature import DEFAULT_SIGNATURE, Signature, read_signature
from tfsconf.warmup.tensors import batch_tensor
from tfsconf.warmup.tfrecord import write_records


@dataclass(frozen=True, slots=True)
class WarmupResult:
    """What generate_warmup wrote."""

    path: Path
    records: int
    model_name: str
    signature_name: str
    batch_sizes: tuple[int, ...]


def generate_warmup(
    model_dir: Path,
    samples: Path,
    *,
    records: int = 100,
    model_name: str | None = None,
    signature_name: str = DEFAULT_SIGNATURE,
    batch_sizes: Sequence[int] | None = None,
    out: Path | None = None,
    sample_format: str = "auto",
) -> WarmupResult:
    """Write the warmup file of one model version and return what was written.

    model_dir is the version directory (<base_path>/<version>); the file goes to its
    assets.extra/ unless out is given. model_name defaults to the base path's name, which
    is what a model config usually calls the model. sample_format is "auto" (by file
    extension), "jsonl", "csv" or "tfrecord", as in the spec's warmup section.
    """
    sizes = plan_batch_sizes(records, batch_sizes)
    signature = read_signature(model_dir, signature_name)
    name = model_name or model_dir.resolve().parent.name
    rows = take_samples(samples, sum(sizes), sample_format)
    if takes_examples(signature):
        payloads = build_example_logs(signature, rows, sizes, model_name=name)
    else:
        payloads = build_requests(signature, rows, sizes, model_name=name)
    target = out or warmup_path(model_dir)
    write_records(target, payloads)
    return WarmupResult(
        path=target,
        records=len(payloads),
        model_name=name,
        signature_name=signature.name,
        batch_sizes=tuple(sorted(set(sizes))),
    )


def plan_batch_sizes(records: int, batch_sizes: Sequence[int] | None) -> list[int]:
    """The batch size of each record: the allowed sizes in turn, or 1 without batching."""
    if not 1 <= records <= MAX_WARMUP_RECORDS:
        raise UserError(
            f"{records} warmup records requested: TF Serving accepts 1 to {MAX_WARMUP_RECORDS} "
            "(more fails the model load)"
        )
    allowed = sorted(set(batch_sizes or [1]))
    if allowed[0] < 1:
        raise UserError(f"batch sizes must be positive, got {allowed[0]}")
    if records < len(allowed):
        raise UserError(
            f"{records} records cannot cover the {len(allowed)} allowed batch sizes "
            f"{allowed}: ask for at least {len(allowed)} records"
        )
    return [allowed[i % len(allowed)] for i in range(records)]


def build_requests(
    signature: Signature, samples: Sequence[Sample], sizes: Sequence[int], *, model_name: str
) -> list[bytes]:
    """Serialized PredictionLog(predict_log) records, consuming samples in order."""
    protos = tf_protos()
    payloads: list[bytes] = []
    start = 0
    for size in sizes:
        batch = samples[start : start + size]
        start += size
        log = protos.prediction_log.PredictionLog()
        request = log.predict_log.request  # filled in place: no copy of a whole request
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature.name
        for spec in signature.inputs.values():
            batch_tensor(spec, batch, into=request.inputs[spec.name])
        payloads.append(log.SerializeToString(deterministic=True))
    return payloads
