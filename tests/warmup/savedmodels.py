"""Real SavedModels for the tests, built with TensorFlow (imported only when building).

Shared by tests/warmup and tests/modelcheck (which loads this file by path).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MIXED_INPUTS = ("count", "dense", "tags")
CLASSIFY = "tensorflow/serving/classify"
REGRESS = "tensorflow/serving/regress"

# Samples for the mixed model; "label" is there to show extra features are ignored.
MIXED_SAMPLES = [
    {"dense": [0.5, 1.0, 1.5, 2.0], "count": 3, "tags": "a,b", "label": 1},
    {"dense": [0.0, -1.0, 0.25, 4.0], "count": 0, "tags": "x", "label": 0},
    {"dense": [1.0, 1.0, 1.0, 1.0], "count": 7, "tags": "p,q,r", "label": 1},
]


def build_mixed_model(version_dir: Path) -> Path:
    """float [None, 4], int64 [None] and a seed-000-style string [None, 1] input.

    The string input is split the way seed 000's fixed model does it: reshape to [-1]
    first, then tf.strings.split. A second signature 'by_count' takes only the int input.
    """
    import tensorflow as tf

    class Mixed(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable([0.5, -1.0, 2.0, 0.25], name="weights")
            self.bias = tf.Variable(0.1, name="bias")

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 4], tf.float32, name="dense"),
                tf.TensorSpec([None], tf.int64, name="count"),
                tf.TensorSpec([None, 1], tf.string, name="tags"),
            ]
        )
        def serve(self, dense: tf.Tensor, count: tf.Tensor, tags: tf.Tensor) -> dict:
            tokens = tf.strings.split(tf.reshape(tags, [-1]), sep=",")
            n_tokens = tf.cast(tokens.row_lengths(), tf.float32)
            linear = tf.linalg.matvec(dense, self.weights) + self.bias
            return {"score": linear + tf.cast(count, tf.float32) + n_tokens}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64, name="count")])
        def by_count(self, count: tf.Tensor) -> dict:
            return {"twice": count * 2}

    module = Mixed()
    tf.saved_model.save(
        module,
        str(version_dir),
        signatures={"serving_default": module.serve, "by_count": module.by_count},
    )
    return version_dir


def build_split_model(version_dir: Path) -> Path:
    """A string [None] input split into exactly three ids per example.

    The signature accepts any string; only running the graph shows that "a,b" (two
    tokens) breaks the reshape, like seed 000's tf.strings.split failure at load time.
    """
    import tensorflow as tf

    class Split(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = tf.Variable(tf.ones([16, 2]), name="embedding")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="ids")])
        def serve(self, ids: tf.Tensor) -> dict:
            tokens = tf.strings.split(ids, sep=",")
            hashed = tf.strings.to_hash_bucket_fast(tokens.flat_values, 16)
            triples = tf.reshape(hashed, [-1, 3])
            vectors = tf.nn.embedding_lookup(self.embedding, triples)
            return {"pooled": tf.reduce_mean(vectors, axis=1)}

    module = Split()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir


def build_sharded_model(version_dir: Path) -> Path:
    """Variables saved into several data shards (variables.data-0000N-of-00004)."""
    import tensorflow as tf

    class Sharded(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = tf.Variable(tf.ones([1000]), name="table")
            self.dense = tf.Variable(tf.zeros([500, 3]), name="dense")

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict:
            return {"y": x * self.table[0] + self.dense[0, 0]}

    module = Sharded()
    options = tf.saved_model.SaveOptions(
        experimental_sharding_callback=tf.train.experimental.MaxShardSizePolicy(max_shard_size=3000)
    )
    tf.saved_model.save(
        module, str(version_dir), signatures={"serving_default": module.serve}, options=options
    )
    return version_dir


def build_examples_model(version_dir: Path) -> Path:
    """TF1 signatures over serialized tf.Examples: the shapes Classify and Regress need,
    and the ways to get them wrong (TF Serving reads them from the SignatureDef alone)."""
    import tensorflow as tf

    v1 = tf.compat.v1
    info = v1.saved_model.utils.build_tensor_info
    graph = tf.Graph()
    with graph.as_default():
        serialized = v1.placeholder(tf.string, [None], name="tf_example")
        features = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([2], tf.float32)})
        scores = tf.nn.softmax(features["x"])
        classes = tf.tile(tf.constant([["a", "b"]]), [tf.shape(serialized)[0], 1])
        value = tf.reduce_sum(features["x"], axis=1, keepdims=True)
        dense = v1.placeholder(tf.float32, [None, 2], name="dense")

        def signature(inputs: dict, outputs: dict, method: str) -> Any:
            return v1.saved_model.build_signature_def(
                {k: info(v) for k, v in inputs.items()},
                {k: info(v) for k, v in outputs.items()},
                method,
            )

        signatures = {
            "classify": v1.saved_model.classification_signature_def(serialized, classes, scores),
            "regress": v1.saved_model.regression_signature_def(serialized, value),
            "predict": v1.saved_model.predict_signature_def({"x": dense}, {"y": dense * 2.0}),
            # A native TF2 export: predict method, but the classify shape.
            "tf2_classify": signature(
                {"inputs": serialized}, {"scores": scores}, "tensorflow/serving/predict"
            ),
            "two_inputs": signature(
                {"inputs": serialized, "dense": dense}, {"scores": scores}, CLASSIFY
            ),
            "float_inputs": signature({"inputs": dense}, {"scores": dense}, CLASSIFY),
            "wrong_output": signature({"inputs": serialized}, {"value": value}, REGRESS),
        }
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(version_dir))
            builder.add_meta_graph_and_variables(
                session, ["serve"], signature_def_map=signatures, main_op=tf.no_op()
            )
            builder.save()
    return version_dir
