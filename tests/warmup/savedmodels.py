"""Real SavedModels for the tests, built with TensorFlow (imported only when building).

Shared by tests/warmup and tests/modelcheck (which loads this file by path).
"""

from __future__ import annotations

from pathlib import Path

MIXED_INPUTS = ("count", "dense", "tags")

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
