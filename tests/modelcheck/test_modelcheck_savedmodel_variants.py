"""SavedModels that are loadable, or not, for reasons beyond the common layout: the tag
set TF Serving loads, asset files, exports without variables, manifests that disagree,
and harmless files beside the versions. Each model is built with TensorFlow here."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from tfsconf.modelcheck import check_model

pytestmark = pytest.mark.slow


def _tf1_export(version_dir: Path, tags: list[str], *, with_variable: bool) -> None:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 2], name="x")
        if with_variable:
            w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0, 2.0]))
            y = tf.identity(x * w, name="y")
        else:
            y = tf.identity(x * 3.0, name="y")
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            builder = tf.compat.v1.saved_model.Builder(str(version_dir))
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
            builder.add_meta_graph_and_variables(
                session, tags, signature_def_map={"serving_default": signature}
            )
            builder.save()


def _vocab_export(version_dir: Path, vocab: Path) -> None:
    import tensorflow as tf

    vocab.write_text("a\nb\nc\n")

    class Vocab(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            initializer = tf.lookup.TextFileInitializer(
                str(vocab),
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
            )
            self.table = tf.lookup.StaticHashTable(initializer, -1)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="w")])
        def serve(self, w: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"id": self.table.lookup(w)}

    module = Vocab()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("variants")
    _tf1_export(root / "gputag" / "1", ["serve", "gpu"], with_variable=True)
    _tf1_export(root / "novars" / "1", ["serve"], with_variable=False)
    _tf1_export(root / "plain" / "1", ["serve"], with_variable=True)
    _vocab_export(root / "vocab" / "1", root / "vocab.txt")
    return root


def _copy(variants: Path, name: str, tmp_path: Path) -> Path:
    base = tmp_path / name
    shutil.copytree(variants / name, base)
    return base


def test_a_graph_tagged_serve_and_gpu_is_not_what_tf_serving_loads(
    variants: Path, tmp_path: Path
) -> None:
    report = check_model(_copy(variants, "gputag", tmp_path))
    assert not report.ok
    [version] = report.versions
    assert any("no meta graph tagged exactly {serve}" in p for p in version.problems)
    assert any("{gpu, serve}" in p for p in version.problems)


def test_a_missing_asset_file_is_a_problem(variants: Path, tmp_path: Path) -> None:
    base = _copy(variants, "vocab", tmp_path)
    assert check_model(base).ok
    (base / "1" / "assets" / "vocab.txt").unlink()
    report = check_model(base)
    assert report.versions[0].problems == (
        "assets/vocab.txt: missing (the graph reads it at load: a partial copy?)",
    )


def test_an_export_without_variables_is_loadable(variants: Path, tmp_path: Path) -> None:
    base = _copy(variants, "novars", tmp_path)
    shutil.rmtree(base / "1" / "variables", ignore_errors=True)
    report = check_model(base)
    assert report.ok, report.versions[0].problems


def test_a_variable_export_still_needs_its_index(variants: Path, tmp_path: Path) -> None:
    base = _copy(variants, "plain", tmp_path)
    (base / "1" / "variables" / "variables.index").unlink()
    assert check_model(base).versions[0].problems == ("variables/variables.index: missing",)


def test_write_manifest_never_reapproves_changed_content(variants: Path, tmp_path: Path) -> None:
    base = _copy(variants, "plain", tmp_path)
    written = check_model(base, write_manifest=True)
    assert written.versions[0].manifest == "written"
    manifest = base / "1" / ".tfsconf-manifest.json"
    assert stat.S_IMODE(manifest.stat().st_mode) == 0o644  # readable by the serving user
    data = next((base / "1" / "variables").glob("variables.data-*"))
    content = bytearray(data.read_bytes())
    content[-1] ^= 0xFF  # same size, different bytes
    data.write_bytes(bytes(content))
    before = manifest.read_bytes()
    again = check_model(base, write_manifest=True)
    assert not again.ok
    assert again.versions[0].manifest == "mismatch"
    assert any("not rewritten" in p for p in again.versions[0].problems)
    assert manifest.read_bytes() == before


def test_only_staging_leftovers_are_problems(variants: Path, tmp_path: Path) -> None:
    base = _copy(variants, "plain", tmp_path)
    for harmless in (".DS_Store", "README-v2.md", "notes.txt"):
        (base / harmless).write_text("x\n")
    for leftover in (".incoming-2", "2.partial", "tmp_3"):
        (base / leftover).mkdir()
    report = check_model(base)
    assert sorted(p.split(":")[0] for p in report.problems) == [".incoming-2", "2.partial", "tmp_3"]
    assert sorted(report.ignored) == [".DS_Store", "README-v2.md", "notes.txt"]


def test_batching_adds_the_batched_warmup_checks(variants: Path, tmp_path: Path) -> None:
    """A scalar input is checked against batching only when the server batches."""
    from tfsconf.tfserving.warmup import WARMUP_RELATIVE_PATH
    from tfsconf.warmup.protos import tf_protos
    from tfsconf.warmup.tfrecord import write_records

    base = _copy(variants, "plain", tmp_path)
    protos = tf_protos()
    log = protos.prediction_log.PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = "plain"
    request.model_spec.signature_name = "serving_default"
    tensor = request.inputs["x"]
    tensor.dtype = 1  # DT_FLOAT
    tensor.tensor_shape.dim.add().size = 2
    tensor.tensor_shape.dim.add().size = 2
    tensor.float_val.extend([1.0, 2.0, 3.0, 4.0])
    write_records(base / "1" / WARMUP_RELATIVE_PATH, [log.SerializeToString()])
    assert check_model(base).ok
    assert check_model(base, batching=True).ok  # one input: nothing to disagree
    scalar = request.inputs["x"]
    del scalar.tensor_shape.dim[:]
    del scalar.float_val[:]
    scalar.float_val.append(1.0)
    write_records(base / "1" / WARMUP_RELATIVE_PATH, [log.SerializeToString()])
    unbatched = check_model(base).versions[0].problems
    batched = check_model(base, batching=True).versions[0].problems
    assert not any("with batching" in p for p in unbatched)
    assert any("with batching, TF Serving needs at least one dimension" in p for p in batched)
