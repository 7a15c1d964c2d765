"""verify_warmup: static checks of hand-made bad files, and replay through TensorFlow."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tfsconf.errors import UserError
from tfsconf.warmup import generate_warmup, verify_warmup, warmup_path
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.tfrecord import write_records

pytestmark = pytest.mark.slow

DT_FLOAT, DT_INT32, DT_STRING, DT_INT64 = 1, 3, 7, 9


def tensor(
    dtype: int, dims: list[int], *, strings: list[bytes] | None = None, content: bytes = b""
) -> Any:
    proto = tf_protos().tensor.TensorProto(dtype=dtype, tensor_content=content)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    proto.string_val.extend(strings or [])
    return proto


def predict_log(inputs: dict[str, Any], signature: str = "by_count") -> bytes:
    log = tf_protos().prediction_log.PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = "mixed"
    request.model_spec.signature_name = signature
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    return bytes(log.SerializeToString())


def good_count() -> Any:
    return tensor(DT_INT64, [2], content=(3).to_bytes(8, "little") * 2)


def test_good_file_verifies(mixed_model: Path) -> None:
    write_records(warmup_path(mixed_model), [predict_log({"count": good_count()})] * 3)
    report = verify_warmup(mixed_model)
    assert report.ok
    assert report.records == 3
    assert report.log_types == {"predict_log": 3}


@pytest.mark.parametrize(
    ("inputs", "signature", "expected"),
    [
        ({}, "by_count", "input 'count' of signature 'by_count' is missing"),
        (
            {"count": good_count(), "extra": good_count()},
            "by_count",
            "input 'extra' is not in signature 'by_count'",
        ),
        (
            {"count": tensor(DT_INT32, [1], content=bytes(4))},
            "by_count",
            "input 'count': dtype int32, the signature expects int64",
        ),
        (
            {"count": tensor(DT_INT64, [1, 1], content=bytes(8))},
            "by_count",
            r"input 'count': shape \[1, 1\] does not match the signature shape \[None\]",
        ),
        (
            {"count": tensor(DT_INT64, [2], content=bytes(8))},
            "by_count",
            r"input 'count': tensor_content has 8 bytes, shape \[2\] needs 16",
        ),
        ({"count": good_count()}, "nope", "signature 'nope' is not in the SavedModel"),
    ],
)
def test_bad_requests(
    mixed_model: Path, inputs: dict[str, Any], signature: str, expected: str
) -> None:
    good = predict_log({"count": good_count()})
    write_records(warmup_path(mixed_model), [good, predict_log(inputs, signature)])
    report = verify_warmup(mixed_model)
    assert not report.ok
    assert len(report.problems) == 1
    assert report.problems[0].record == 1

    assert re.search(expected, report.problems[0].render()), report.problems[0].render()


def test_record_type_not_replayed(mixed_model: Path) -> None:
    log = tf_protos().prediction_log.PredictionLog()
    log.session_run_log.request.feed.add().name = "x"
    write_records(warmup_path(mixed_model), [log.SerializeToString()])
    report = verify_warmup(mixed_model)
    assert [p.render() for p in report.problems] == [
        "record 0: session_run_log: TF Serving fails the load on it (it replays only "
        "predict_log, classify_log, regress_log, multi_inference_log)"
    ]


def test_more_than_1000_records(mixed_model: Path) -> None:
    write_records(warmup_path(mixed_model), [predict_log({"count": good_count()})] * 1001)
    report = verify_warmup(mixed_model)
    assert [p.render() for p in report.problems] == [
        "1001 records: TF Serving fails the load above 1000"
    ]


def test_corrupted_warmup_file(mixed_model: Path, mixed_samples: Path) -> None:
    path = generate_warmup(mixed_model, mixed_samples, records=3).path
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    report = verify_warmup(mixed_model, replay=True)
    assert not report.ok
    assert report.problems[0].record is None
    assert "CRC mismatch" in report.problems[0].message
    assert str(path) in report.problems[0].message
    assert report.replayed == 0
    assert report.notes == ("replay skipped: fix the problems above first",)


def test_missing_warmup_file(mixed_model: Path) -> None:
    with pytest.raises(UserError, match="tf_serving_warmup_requests: warmup file not found"):
        verify_warmup(mixed_model)


def test_replay_catches_what_static_checks_cannot(split_model: Path, tmp_path: Path) -> None:
    samples = tmp_path / "ids.jsonl"
    # Record 2 has two ids where the model reshapes to three: valid shape, fails at run time.
    rows = ["1,2,3", "4,5,6", "7,8", "9,10,11"]
    samples.write_text("".join(json.dumps({"ids": ids}) + "\n" for ids in rows))
    generate_warmup(split_model, samples, records=4)
    assert verify_warmup(split_model).ok
    report = verify_warmup(split_model, replay=True)
    assert report.replayed == 4
    assert [p.record for p in report.problems] == [2]
    message = report.problems[0].message
    assert message.startswith("TensorFlow: ")
    assert "Input to reshape is a tensor with 2 values" in message
