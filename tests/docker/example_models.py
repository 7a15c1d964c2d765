"""Real SavedModels (built with TensorFlow) for the bundled example environments: one per
model the examples name, with the inputs their warmup samples hold
(environments/samples/*.jsonl), so that apply generates the warmup records from the real
signatures and the server loads and replays them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def build_ctr(version_dir: Path) -> Path:
    """ctr.jsonl: user_id (string), item_ids (comma-separated string), dense (4 floats)."""
    import tensorflow as tf

    class Ctr(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable([0.3, -0.2, 0.5, 0.1], name="weights")

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None], tf.string, name="item_ids"),
                tf.TensorSpec([None, 4], tf.float32, name="dense"),
            ]
        )
        def serve(self, user_id: tf.Tensor, item_ids: tf.Tensor, dense: tf.Tensor) -> dict:
            items = tf.cast(tf.strings.split(item_ids, sep=",").row_lengths(), tf.float32)
            users = tf.cast(tf.strings.length(user_id), tf.float32)
            logit = tf.linalg.matvec(dense, self.weights) + 0.01 * (items + users)
            return {"ctr": tf.sigmoid(logit)}

    module = Ctr()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir


def build_cvr(version_dir: Path) -> Path:
    """cvr.jsonl: user_id (string), item_id (integer), price (float)."""
    import tensorflow as tf

    class Cvr(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = tf.Variable(0.01, name="scale")

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.string, name="user_id"),
                tf.TensorSpec([None], tf.int64, name="item_id"),
                tf.TensorSpec([None], tf.float32, name="price"),
            ]
        )
        def serve(self, user_id: tf.Tensor, item_id: tf.Tensor, price: tf.Tensor) -> dict:
            users = tf.cast(tf.strings.length(user_id), tf.float32)
            logit = self.scale * (price - tf.cast(item_id % 100, tf.float32)) + 0.001 * users
            return {"cvr": tf.sigmoid(logit)}

    module = Cvr()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir


def build_mnist(version_dir: Path) -> Path:
    """mnist.jsonl: input_image (28x28x1 floats); a 10-class dense layer."""
    import tensorflow as tf

    class Mnist(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = tf.Variable(tf.random.stateless_normal([784, 10], seed=[1, 2]) * 0.01)
            self.bias = tf.Variable(tf.zeros([10]))

        @tf.function(
            input_signature=[tf.TensorSpec([None, 28, 28, 1], tf.float32, name="input_image")]
        )
        def serve(self, input_image: tf.Tensor) -> dict:
            flat = tf.reshape(input_image, [-1, 784])
            return {"probabilities": tf.nn.softmax(tf.matmul(flat, self.kernel) + self.bias)}

    module = Mnist()
    tf.saved_model.save(module, str(version_dir), signatures={"serving_default": module.serve})
    return version_dir


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "ctr": build_ctr,
    "cvr": build_cvr,
    "mnist": build_mnist,
}
