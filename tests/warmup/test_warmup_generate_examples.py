"""Classify and Regress signatures get classify_log / regress_log warmup records carrying
serialized tf.Examples: from TFRecord samples as written, or built from JSONL features."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from savedmodels import build_examples_model

from tfsconf.warmup import generate_warmup, verify_warmup, warmup_path
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.tfrecord import read_records, write_records

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_examples_model(tmp_path_factory.mktemp("examples") / "ranker" / "1")


@pytest.fixture
def model(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "ranker" / "1"))


def _logs(model: Path) -> list[object]:
    log_type = tf_protos().prediction_log.PredictionLog
    return [log_type.FromString(record) for record in read_records(warmup_path(model))]


def test_tfrecord_examples_become_classify_requests_as_written(model: Path, tmp_path: Path) -> None:
    protos = tf_protos()
    examples = []
    for i in range(4):
        example = protos.example.Example()
        example.features.feature["x"].float_list.value.extend([float(i), 1.0])
        examples.append(example.SerializeToString())
    samples = tmp_path / "samples.tfrecord"
    write_records(samples, examples)

    result = generate_warmup(
        model, samples, records=2, signature_name="classify", batch_sizes=[1, 3]
    )
    assert result.records == 2
    logs = _logs(model)
    assert [log.WhichOneof("log_type") for log in logs] == ["classify_log", "classify_log"]
    sent = [
        e.SerializeToString()
        for log in logs
        for e in log.classify_log.request.input.example_list.examples
    ]
    assert sent == examples  # batch of 1, then batch of 3, in sample order
    assert logs[0].classify_log.request.model_spec.signature_name == "classify"
    assert not verify_warmup(model).problems


def test_jsonl_features_become_regress_examples(model: Path, tmp_path: Path) -> None:
    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"x": [0.5, 2], "user": "u1", "clicks": 3}) + "\n")
    generate_warmup(model, samples, records=1, signature_name="regress")
    [log] = _logs(model)
    assert log.WhichOneof("log_type") == "regress_log"
    [example] = log.regress_log.request.input.example_list.examples
    feature = example.features.feature
    assert list(feature["x"].float_list.value) == [0.5, 2.0]
    assert list(feature["user"].bytes_list.value) == [b"u1"]
    assert list(feature["clicks"].int64_list.value) == [3]
    assert not verify_warmup(model).problems


def test_the_model_really_parses_the_examples(model: Path, tmp_path: Path) -> None:
    """Run the serialized examples through the exported graph, as Classify does."""
    import tensorflow as tf

    samples = tmp_path / "samples.jsonl"
    samples.write_text(json.dumps({"x": [1.0, 3.0]}) + "\n")
    generate_warmup(model, samples, records=1, signature_name="regress")
    [log] = _logs(model)
    serialized = [
        e.SerializeToString() for e in log.regress_log.request.input.example_list.examples
    ]
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(model))
        signature = meta.signature_def["regress"]
        outputs = session.run(
            signature.outputs["outputs"].name,
            {signature.inputs["inputs"].name: serialized},
        )
    assert outputs.tolist() == [[4.0]]
