"""Run warmup records through the SavedModel with TensorFlow, as TF Serving does at load.

TF Serving loads the SavedModel into a session and runs each predict request by feeding
the signature's input tensors and fetching its outputs. The same happens here through
TensorFlow's v1 session API, so a record that fails here fails the load there, and the
report carries the record number and TensorFlow's own message (seed 000's
"slice index 1 of dimension 0 out of bounds" is such a message).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsconf.warmup.signature import DEFAULT_SIGNATURE, SERVE_TAG


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """How many records ran, which failed (record number, message), and what was skipped."""

    replayed: int
    failures: tuple[tuple[int, str], ...]
    notes: tuple[str, ...]


def replay_logs(model_dir: Path, logs: Sequence[tuple[int, Any]]) -> ReplayOutcome:
    """Replay the predict records; other record types are counted in a note, not run."""
    tf = _import_tensorflow()
    failures: list[tuple[int, str]] = []
    replayed = 0
    skipped = 0
    graph = tf.Graph()
    with tf.compat.v1.Session(graph=graph) as session:
        try:
            meta_graph = _load(tf, session, model_dir)
        except (tf.errors.OpError, OSError, RuntimeError, ValueError) as exc:
            return ReplayOutcome(0, ((0, f"the SavedModel does not load: {exc}"),), ())
        for index, log in logs:
            if log.WhichOneof("log_type") != "predict_log":
                skipped += 1
                continue
            request = log.predict_log.request
            signature = meta_graph.signature_def[
                request.model_spec.signature_name or DEFAULT_SIGNATURE
            ]
            feeds = {
                signature.inputs[alias].name: tf.make_ndarray(tensor)
                for alias, tensor in request.inputs.items()
            }
            wanted = set(request.output_filter) or set(signature.outputs)
            fetches = {alias: signature.outputs[alias].name for alias in sorted(wanted)}
            replayed += 1
            try:
                session.run(fetches, feed_dict=feeds)
            except tf.errors.OpError as exc:
                failures.append((index, f"TensorFlow: {exc.message}"))
            except (ValueError, TypeError, KeyError) as exc:
                failures.append((index, f"TensorFlow: {exc}"))
    notes = (f"{skipped} non-predict record(s) checked statically only",) if skipped else ()
    return ReplayOutcome(replayed, tuple(failures), notes)


def _load(tf: Any, session: Any, model_dir: Path) -> Any:
    """The v1 loader TF Serving mirrors; its deprecation warning is noise for our users."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")
    try:
        return tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(model_dir))
    finally:
        logger.setLevel(level)


def _import_tensorflow() -> Any:
    """The real TensorFlow package (never the stand-in protos.py uses for a moment)."""
    import tensorflow as tf

    return tf
