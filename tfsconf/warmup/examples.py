"""Warmup records for Classify and Regress signatures, which take serialized tf.Examples.

Estimator-style ranking models export classification or regression signatures whose one
input is a batch of serialized tf.Example protos. Their warmup records are classify_log /
regress_log requests carrying an example list: TFRecord samples are used as written; a
JSONL or CSV sample becomes an Example (strings -> bytes_list, integers and booleans ->
int64_list, any float -> float_list).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from tfsconf.errors import UserError
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.samples import Sample, ValueKind
from tfsconf.warmup.served import CLASSIFY_METHOD, REGRESS_METHOD
from tfsconf.warmup.signature import Signature

EXAMPLE_METHODS = {CLASSIFY_METHOD: "classify_log", REGRESS_METHOD: "regress_log"}


def takes_examples(signature: Signature) -> bool:
    """Whether warmup for this signature is a Classify or Regress request."""
    return signature.method_name in EXAMPLE_METHODS


def build_example_logs(
    signature: Signature, samples: Sequence[Sample], sizes: Sequence[int], *, model_name: str
) -> list[bytes]:
    """Serialized PredictionLog records (classify_log or regress_log), one per size."""
    protos = tf_protos()
    kind = EXAMPLE_METHODS[signature.method_name]
    payloads: list[bytes] = []
    start = 0
    for size in sizes:
        log = protos.prediction_log.PredictionLog()
        request = getattr(log, kind).request
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature.name
        for sample in samples[start : start + size]:
            request.input.example_list.examples.add().ParseFromString(serialized_example(sample))
        start += size
        payloads.append(log.SerializeToString(deterministic=True))
    return payloads


def serialized_example(sample: Sample) -> bytes:
    """The sample as a serialized tf.Example."""
    if sample.example is not None:
        return sample.example
    example = tf_protos().example.Example()
    for name, value in sorted(sample.values.items()):
        values = _flat(value)
        feature = example.features.feature[name]
        numbers = [v for v in values if isinstance(v, int | float)]
        typed = sample.kind is ValueKind.JSON and len(numbers) == len(values)
        if typed and all(isinstance(v, int) for v in numbers):
            feature.int64_list.value.extend(int(v) for v in numbers)  # bools included
        elif typed:
            feature.float_list.value.extend(float(v) for v in numbers)
        else:
            feature.bytes_list.value.extend(_as_bytes(v, sample, name) for v in values)
    return bytes(example.SerializeToString(deterministic=True))


def _flat(value: object) -> list[object]:
    if isinstance(value, list):
        return [item for part in value for item in _flat(part)]
    return [value]


def _as_bytes(value: object, sample: Sample, name: str) -> bytes:
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(str(value["b64"]), validate=True)
        except binascii.Error:
            raise UserError(f"{sample.where}: feature '{name}': invalid base64") from None
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value).encode()  # a CSV cell or mixed list: keep the text
    raise UserError(f"{sample.where}: feature '{name}': cannot put {value!r} in a tf.Example")
