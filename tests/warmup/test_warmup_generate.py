"""generate_warmup against real SavedModels, read back and replayed by TensorFlow."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from savedmodels import MIXED_SAMPLES

from tfsconf.errors import UserError
from tfsconf.warmup import WARMUP_RELATIVE_PATH, generate_warmup, verify_warmup
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.tfrecord import read_records, write_records

pytestmark = pytest.mark.slow


def decoded_requests(path: Path) -> list[dict[str, object]]:
    """Each record's inputs as numpy arrays, decoded by TensorFlow itself."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    requests = []
    for raw in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
        assert log.WhichOneof("log_type") == "predict_log"
        request = log.predict_log.request
        decoded: dict[str, object] = {
            name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()
        }
        decoded["_model"] = request.model_spec.name
        decoded["_signature"] = request.model_spec.signature_name
        requests.append(decoded)
    return requests


def test_generate_mixed_model(mixed_model: Path, mixed_samples: Path) -> None:
    result = generate_warmup(mixed_model, mixed_samples, records=5)
    assert result.path == mixed_model / WARMUP_RELATIVE_PATH
    assert (result.records, result.model_name, result.batch_sizes) == (5, "mixed", (1,))
    requests = decoded_requests(result.path)
    assert len(requests) == 5
    for i, request in enumerate(requests):
        row = MIXED_SAMPLES[i % len(MIXED_SAMPLES)]
        assert request["_model"] == "mixed"
        assert request["_signature"] == "serving_default"
        assert request["dense"].dtype.name == "float32"  # type: ignore[attr-defined]
        assert request["dense"].tolist() == [row["dense"]]  # type: ignore[attr-defined]
        assert request["count"].dtype.name == "int64"  # type: ignore[attr-defined]
        assert request["count"].tolist() == [row["count"]]  # type: ignore[attr-defined]
        # [None, 1] string input: one column per example, not a flat vector.
        assert request["tags"].tolist() == [[str(row["tags"]).encode()]]  # type: ignore[attr-defined]
        assert "label" not in request
    report = verify_warmup(mixed_model, replay=True)
    assert report.ok, report.problems
    assert (report.records, report.replayed) == (5, 5)


def test_batch_sizes_are_each_covered(mixed_model: Path, mixed_samples: Path) -> None:
    result = generate_warmup(mixed_model, mixed_samples, records=7, batch_sizes=[8, 1, 4])
    assert result.batch_sizes == (1, 4, 8)
    requests = decoded_requests(result.path)
    sizes = [len(r["count"]) for r in requests]  # type: ignore[arg-type]
    assert sizes == [1, 4, 8, 1, 4, 8, 1]
    for request, size in zip(requests, sizes, strict=True):
        assert request["dense"].shape == (size, 4)  # type: ignore[attr-defined]
        assert request["tags"].shape == (size, 1)  # type: ignore[attr-defined]
    report = verify_warmup(mixed_model, replay=True)
    assert report.ok, report.problems
    assert report.replayed == 7


def test_other_signature_and_out_file(
    mixed_model: Path, mixed_samples: Path, tmp_path: Path
) -> None:
    out = tmp_path / "elsewhere" / "warmup"
    result = generate_warmup(
        mixed_model, mixed_samples, records=2, signature_name="by_count", model_name="ctr", out=out
    )
    assert result.path == out
    assert not (mixed_model / WARMUP_RELATIVE_PATH).exists()
    (first, _) = decoded_requests(out)
    assert set(first) == {"count", "_model", "_signature"}
    assert (first["_model"], first["_signature"]) == ("ctr", "by_count")
    assert verify_warmup(mixed_model, path=out, replay=True).ok


def test_csv_and_tfrecord_samples_give_the_same_records(
    mixed_model: Path, mixed_samples: Path, tmp_path: Path
) -> None:
    csv_path = tmp_path / "mixed.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["count", "tags"])
        for row in MIXED_SAMPLES:
            writer.writerow([row["count"], row["tags"]])
    example_type = tf_protos().example.Example
    examples = []
    for row in MIXED_SAMPLES:
        example = example_type()
        example.features.feature["count"].int64_list.value.append(int(row["count"]))  # type: ignore[call-overload]
        example.features.feature["tags"].bytes_list.value.append(str(row["tags"]).encode())
        examples.append(example.SerializeToString())
    tfrecord_path = tmp_path / "mixed.tfrecord"
    write_records(tfrecord_path, examples)
    outputs = {}
    for source in (mixed_samples, csv_path, tfrecord_path):
        out = tmp_path / f"warmup-{source.suffix}"
        generate_warmup(mixed_model, source, records=4, signature_name="by_count", out=out)
        outputs[source.suffix] = list(read_records(out))
    assert outputs[".jsonl"] == outputs[".csv"] == outputs[".tfrecord"]
    assert len(outputs[".jsonl"]) == 4


def test_seed_000_split_model_generates_and_replays(split_model: Path, tmp_path: Path) -> None:
    samples = tmp_path / "ids.jsonl"
    samples.write_text("".join(json.dumps({"ids": ids}) + "\n" for ids in ["1,2,3", "7,8,9"]))
    generate_warmup(split_model, samples, records=4, batch_sizes=[1, 2])
    report = verify_warmup(split_model, replay=True)
    assert report.ok, report.problems
    assert report.replayed == 4


def test_sample_missing_an_input(mixed_model: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"dense": [1, 2, 3, 4], "count": 1}) + "\n")
    with pytest.raises(UserError, match=r"s.jsonl:1: the sample has no value for input 'tags'"):
        generate_warmup(mixed_model, samples, records=1)
    assert not (mixed_model / WARMUP_RELATIVE_PATH).exists()


def test_wrong_dtype_in_sample(mixed_model: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"dense": [1, 2, 3, 4], "count": "many", "tags": "a"}) + "\n")
    with pytest.raises(
        UserError, match=r"s.jsonl:1: input 'count' expects int64 values, got 'many'"
    ):
        generate_warmup(mixed_model, samples, records=1)


@pytest.mark.parametrize("records", [0, 1001, 5000])
def test_record_count_out_of_range(mixed_model: Path, mixed_samples: Path, records: int) -> None:
    with pytest.raises(UserError, match=f"{records} warmup records requested: .* 1 to 1000"):
        generate_warmup(mixed_model, mixed_samples, records=records)


def test_too_few_records_for_the_batch_sizes(mixed_model: Path, mixed_samples: Path) -> None:
    with pytest.raises(UserError, match=r"2 records cannot cover the 3 allowed batch sizes"):
        generate_warmup(mixed_model, mixed_samples, records=2, batch_sizes=[1, 2, 4])


def test_missing_signature(mixed_model: Path, mixed_samples: Path) -> None:
    with pytest.raises(
        UserError, match=r"no signature 'predict' \(signatures: by_count, serving_default\)"
    ):
        generate_warmup(mixed_model, mixed_samples, signature_name="predict")


def test_not_a_saved_model(tmp_path: Path, mixed_samples: Path) -> None:
    with pytest.raises(UserError, match=r"no saved_model\.pb"):
        generate_warmup(tmp_path, mixed_samples)
