"""verify_warmup accepts what TF Serving accepts at load and rejects what it rejects.

Each case mirrors a rule of saved_model_warmup.cc, predict_util.cc, classifier.cc,
regressor.cc, multi_inference.cc or the batching session, on real SavedModels built
here and warmup files written with tfsconf's own TFRecord writer.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from savedmodels import build_examples_model

from tfsconf.warmup import verify_warmup, warmup_path
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.replay import replay_logs
from tfsconf.warmup.tfrecord import write_records
from tfsconf.warmup.verify import Findings, parse_warmup

pytestmark = pytest.mark.slow

DT_FLOAT, DT_STRING, DT_INT64 = 1, 7, 9
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"


# --- SavedModels -------------------------------------------------------------------


def build_ragged_model(version_dir: Path) -> Path:
    """values + row_splits (different lengths) and a scalar side input: fine unbatched."""
    import tensorflow as tf

    class Ragged(tf.Module):
        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.int64, name="values"),
                tf.TensorSpec([None], tf.int64, name="row_splits"),
                tf.TensorSpec([], tf.int64, name="scale"),
            ]
        )
        def serve(self, values: tf.Tensor, row_splits: tf.Tensor, scale: tf.Tensor) -> dict:
            rows = tf.RaggedTensor.from_row_splits(values, row_splits)
            return {"sum": tf.reduce_sum(rows, axis=1) * scale, "count": rows.row_lengths()}

    module = Ragged()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir


@pytest.fixture(scope="module")
def rule_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rules")
    build_examples_model(root / "examples" / "1")
    build_ragged_model(root / "ragged" / "1")
    return root


@pytest.fixture
def examples_model(rule_models: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rule_models / "examples" / "1", tmp_path / "examples" / "1"))


@pytest.fixture
def ragged_model(rule_models: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(rule_models / "ragged" / "1", tmp_path / "ragged" / "1"))


# --- Records -------------------------------------------------------------------------


def int64s(values: list[int], dims: list[int] | None = None) -> Any:
    proto = tf_protos().tensor.TensorProto(dtype=DT_INT64)
    for size in [len(values)] if dims is None else dims:
        proto.tensor_shape.dim.add(size=size)
    proto.int64_val.extend(values)
    return proto


def new_log() -> Any:
    return tf_protos().prediction_log.PredictionLog()


def predict(
    inputs: dict[str, Any], signature: str = "", output_filter: list[str] | None = None
) -> Any:
    log = new_log()
    request = log.predict_log.request
    request.model_spec.name = "m"
    request.model_spec.signature_name = signature
    for name, proto in inputs.items():
        request.inputs[name].CopyFrom(proto)
    request.output_filter.extend(output_filter or [])
    return log


def example() -> Any:
    proto = tf_protos().example.Example()
    proto.features.feature["x"].float_list.value.extend([1.0, 2.0])
    return proto


def classify(signature: str, *, examples: int = 1, kind: str = "classify_log") -> Any:
    log = new_log()
    request = getattr(log, kind).request
    request.model_spec.name = "m"
    request.model_spec.signature_name = signature
    for _ in range(examples):
        request.input.example_list.examples.add().CopyFrom(example())
    return log


def multi(tasks: list[tuple[str, str]], *, examples: int = 1, model: str = "m") -> Any:
    log = new_log()
    request = log.multi_inference_log.request
    for signature, method in tasks:
        task = request.tasks.add()
        task.model_spec.name = model
        task.model_spec.signature_name = signature
        task.method_name = method
    for _ in range(examples):
        request.input.example_list_with_context.examples.add().CopyFrom(example())
    return log


def write(model_dir: Path, *logs: Any) -> Path:
    path = warmup_path(model_dir)
    write_records(path, [log.SerializeToString() for log in logs])
    return path


def good_ragged() -> Any:
    return predict(
        {"values": int64s([1, 2, 3, 4]), "row_splits": int64s([0, 2, 4]), "scale": int64s([2], [])}
    )


def rendered(problems: Any) -> list[str]:
    return [problem.render() for problem in problems]


def tfsconf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsconf", *args], capture_output=True, text=True, check=False
    )


# --- 1. What the server skips is a note ------------------------------------------------


def test_empty_and_streamed_logs_are_notes_not_problems(ragged_model: Path) -> None:
    streamed = new_log()
    streamed.predict_streamed_log.request.add().CopyFrom(good_ragged().predict_log.request)
    write(ragged_model, good_ragged(), new_log(), streamed)
    report = verify_warmup(ragged_model, replay=True)
    assert report.ok, rendered(report.problems)
    assert report.log_types == {"empty": 1, "predict_log": 1, "predict_streamed_log": 1}
    assert "record 1: an empty PredictionLog: TF Serving skips it" in report.notes
    assert "record 2: predict_streamed_log: TF Serving skips it" in report.notes
    assert report.replayed == 1


def test_cli_shows_skipped_records_and_counts_them_as_empty(ragged_model: Path) -> None:
    write(ragged_model, good_ragged(), new_log())
    result = tfsconf("warmup", "verify", str(ragged_model))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(1 empty, 1 predict_log)" in result.stdout
    assert "None" not in result.stdout
    assert "note: record 1: an empty PredictionLog: TF Serving skips it" in result.stdout


def test_file_without_records_is_a_note(ragged_model: Path) -> None:
    write(ragged_model)
    report = verify_warmup(ragged_model)
    assert report.ok
    assert report.records == 0
    assert report.notes == ("the file has no records: TF Serving loads the model unwarmed",)


def test_session_run_log_still_fails(ragged_model: Path) -> None:
    log = new_log()
    log.session_run_log.request.feed.add().name = "x"
    write(ragged_model, good_ragged(), log)
    report = verify_warmup(ragged_model)
    assert [p.record for p in report.problems] == [1]
    assert "session_run_log: TF Serving fails the load" in report.problems[0].message


# --- 1. Value lists as Tensor::FromProto reads them ------------------------------------


def test_longer_and_shorter_value_lists_pass_with_notes_and_replay(ragged_model: Path) -> None:
    longer = good_ragged()
    longer.predict_log.request.inputs["values"].CopyFrom(int64s([1, 2, 3, 4, 5, 6], [4]))
    shorter = good_ragged()
    shorter.predict_log.request.inputs["values"].CopyFrom(int64s([1, 2], [4]))
    write(ragged_model, longer, shorter)
    report = verify_warmup(ragged_model, replay=True)
    assert report.ok, rendered(report.problems)
    assert report.replayed == 2
    assert (
        "record 0: input 'values': 6 values for shape [4] (4 elements): "
        "TensorFlow keeps the first 4" in report.notes
    )
    assert (
        "record 1: input 'values': 2 values for shape [4] (4 elements): "
        "TensorFlow repeats the last value to fill the shape" in report.notes
    )


def test_tensor_content_of_the_wrong_size_stays_a_problem(ragged_model: Path) -> None:
    log = good_ragged()
    values = log.predict_log.request.inputs["values"]
    values.ClearField("int64_val")
    values.tensor_content = bytes(8 * 3)
    write(ragged_model, log)
    report = verify_warmup(ragged_model)
    assert rendered(report.problems) == [
        "record 0: input 'values': tensor_content has 24 bytes, shape [4] needs 32"
    ]


# --- 2. output_filter ----------------------------------------------------------------


def test_output_filter_unknown_and_duplicate_aliases(ragged_model: Path) -> None:
    good = good_ragged()
    good.predict_log.request.output_filter.append("sum")
    unknown = good_ragged()
    unknown.predict_log.request.output_filter.extend(["sum", "no_such_output"])
    twice = good_ragged()
    twice.predict_log.request.output_filter.extend(["count", "count"])
    unknown_twice = good_ragged()
    unknown_twice.predict_log.request.output_filter.extend(["x", "x"])
    write(ragged_model, good, unknown, twice, unknown_twice)
    report = verify_warmup(ragged_model, replay=True)
    assert rendered(report.problems) == [
        "record 1: output_filter: 'no_such_output' is not an output of signature "
        "'serving_default' (outputs: count, sum); TF Serving: output tensor alias not found "
        "in signature",
        "record 2: output_filter: 'count' is listed twice; TF Serving: duplicate output "
        "tensor alias",
        "record 3: output_filter: 'x' is not an output of signature 'serving_default' "
        "(outputs: count, sum); TF Serving: output tensor alias not found in signature",
        "record 3: output_filter: 'x' is listed twice; TF Serving: duplicate output tensor alias",
    ]
    assert report.notes == ("replay skipped: fix the problems above first",)


def test_replay_checks_output_filter_before_running(ragged_model: Path) -> None:
    good = good_ragged()
    unknown = good_ragged()
    unknown.predict_log.request.output_filter.append("nope")
    twice = good_ragged()
    twice.predict_log.request.output_filter.extend(["sum", "sum"])
    outcome = replay_logs(ragged_model, [(0, good), (1, unknown), (2, twice)])
    assert outcome.replayed == 1
    assert outcome.failures == (
        (1, "output_filter: output tensor alias not found in signature: 'nope' "
            "(outputs: count, sum)"),
        (2, "output_filter: duplicate output tensor alias: 'sum'"),
    )  # fmt: skip


# --- 3. classify / regress / multi-inference -------------------------------------------


def test_good_classify_regress_and_multi_inference_records(examples_model: Path) -> None:
    write(
        examples_model,
        classify("classify"),
        classify("regress", kind="regress_log"),
        multi([("classify", CLASSIFY), ("regress", REGRESS)]),
    )
    report = verify_warmup(examples_model, replay=True, method_name_check=True)
    assert report.ok, rendered(report.problems)
    assert report.notes == ("3 non-predict record(s) checked statically only",)


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (classify("nope"), "signature 'nope' is not in the SavedModel"),
        (
            classify("predict"),
            "signature 'predict' has no input 'inputs': Classify feeds the serialized "
            "tf.Example strings there",
        ),
        (
            classify("two_inputs"),
            "signature 'two_inputs' has 2 inputs: Classify needs exactly one",
        ),
        (
            classify("float_inputs"),
            "signature 'float_inputs' input 'inputs' is float: Classify feeds serialized "
            "tf.Example strings",
        ),
        (
            classify("wrong_output", kind="regress_log"),
            "signature 'wrong_output' outputs (value): Regress needs exactly one output, 'outputs'",
        ),
        (classify("classify", examples=0), "the request's input has no examples"),
        (
            classify("classify", kind="regress_log"),
            "Regress needs exactly one output, 'outputs'",
        ),
        (
            multi([("classify", CLASSIFY), ("regress", "tensorflow/serving/predict")]),
            "task 1: method_name 'tensorflow/serving/predict': TF Serving runs only",
        ),
        (
            multi([("classify", CLASSIFY), ("classify", CLASSIFY)]),
            "task 1: signature 'classify' is evaluated twice",
        ),
        (multi([("classify", CLASSIFY)], model=""), "empty model_spec.name"),
        (multi([("classify", CLASSIFY)], examples=0), "the request's input has no examples"),
        (multi([]), "multi_inference_log request has no tasks"),
    ],
)
def test_bad_example_records(examples_model: Path, log: Any, expected: str) -> None:
    write(examples_model, classify("classify"), log)
    report = verify_warmup(examples_model)
    assert not report.ok
    assert [p.record for p in report.problems] == [1] * len(report.problems)
    assert any(expected in p.message for p in report.problems), rendered(report.problems)


def test_method_name_matters_only_with_the_server_check(examples_model: Path) -> None:
    write(examples_model, classify("tf2_classify"))
    lenient = verify_warmup(examples_model)
    assert lenient.ok
    assert lenient.notes == (
        "record 0: signature 'tf2_classify' has method_name 'tensorflow/serving/predict', "
        "not tensorflow/serving/classify: accepted only while "
        "--enable_signature_method_name_check is off",
    )
    strict = verify_warmup(examples_model, method_name_check=True)
    assert rendered(strict.problems) == [
        "record 0: signature 'tf2_classify' has method_name 'tensorflow/serving/predict', "
        "not tensorflow/serving/classify"
    ]
    cli = tfsconf("warmup", "verify", str(examples_model), "--method-name-check")
    assert cli.returncode == 1
    assert "problem: record 0: signature 'tf2_classify' has method_name" in cli.stdout


# --- 4. Batching-only checks -----------------------------------------------------------


def test_unbatched_inputs_of_different_lengths_verify_and_replay(ragged_model: Path) -> None:
    write(ragged_model, good_ragged())
    report = verify_warmup(ragged_model, replay=True)
    assert report.ok, rendered(report.problems)
    assert report.replayed == 1
    cli = tfsconf("warmup", "verify", str(ragged_model), "--replay")
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "replayed 1 records with TensorFlow" in cli.stdout


def test_batching_needs_one_batch_size_and_a_batch_dimension(ragged_model: Path) -> None:
    write(ragged_model, good_ragged())
    report = verify_warmup(ragged_model, batching=True)
    assert rendered(report.problems) == [
        "record 0: input 'scale' is a scalar: with batching, TF Serving needs at least one "
        "dimension on every input",
        "record 0: inputs disagree on the batch size (row_splits=3, values=4); batching "
        "rejects that",
    ]
    cli = tfsconf("warmup", "verify", str(ragged_model), "--batching")
    assert cli.returncode == 1
    assert "inputs disagree on the batch size" in cli.stdout


# --- 5. Replay load failures, immutable stages -----------------------------------------


def test_replay_load_failure_has_no_record_number(ragged_model: Path) -> None:
    write(ragged_model, good_ragged())
    shutil.rmtree(ragged_model / "variables")
    report = verify_warmup(ragged_model, replay=True)
    assert [p.record for p in report.problems] == [None]
    assert report.problems[0].render().startswith("the SavedModel does not load: ")


def test_parse_stage_returns_immutable_values(ragged_model: Path) -> None:
    path = write(ragged_model, good_ragged(), new_log())
    parsed = parse_warmup(path)
    assert isinstance(parsed.logs, tuple)
    assert isinstance(parsed.findings, Findings)
    assert parsed.findings == Findings()
    verify_warmup(ragged_model)
    assert parsed.findings == Findings()
    assert [index for index, _ in parsed.logs] == [0, 1]
