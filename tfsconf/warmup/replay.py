"""Run warmup records through the SavedModel with TensorFlow, as TF Serving does at load.

TF Serving loads the SavedModel into a session and runs each predict request by feeding
the signature's input tensors and fetching its outputs. The same happens here through
TensorFlow's v1 session API, so a record that fails here fails the load there, and the
report carries the record number and TensorFlow's own message (seed 000's
"slice index 1 of dimension 0 out of bounds" is such a message).

Request tensors are decoded by TensorFlow's C++ Tensor::FromProto (tf.io.parse_tensor),
the decoder TF Serving uses, not by Python's tf.make_ndarray, which rejects value lists
the server accepts (a list longer than the shape is cut by the server).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsconf.errors import UserError
from tfsconf.warmup.signature import DEFAULT_SIGNATURE, SERVE_TAG


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    """How many records ran, which failed (record number or None, message), what was skipped."""

    replayed: int
    failures: tuple[tuple[int | None, str], ...]
    notes: tuple[str, ...]


def replay_logs(model_dir: Path, logs: Sequence[tuple[int, Any]]) -> ReplayOutcome:
    """Replay the predict records; other record types are counted in a note, not run."""
    tf = _import_tensorflow()
    failures: list[tuple[int | None, str]] = []
    replayed = 0
    skipped = 0
    session = tf.compat.v1.Session(graph=tf.Graph())
    try:
        try:
            meta_graph = _load(tf, session, model_dir)
        except (tf.errors.OpError, OSError, RuntimeError, ValueError) as exc:
            return ReplayOutcome(0, ((None, f"the SavedModel does not load: {exc}"),), ())
        for index, log in logs:
            if log.WhichOneof("log_type") != "predict_log":
                skipped += 1
                continue
            request = log.predict_log.request
            name = request.model_spec.signature_name or DEFAULT_SIGNATURE
            if name not in meta_graph.signature_def:
                failures.append((index, f"signature '{name}' is not in the SavedModel"))
                continue
            signature = meta_graph.signature_def[name]
            fetches, problem = _fetches(signature, list(request.output_filter))
            if problem:
                failures.append((index, problem))
                continue
            try:
                # Decoded eagerly, outside the session's graph, like the server's FromProto.
                feeds = {
                    signature.inputs[alias].name: _decode(tf, tensor)
                    for alias, tensor in request.inputs.items()
                }
            except tf.errors.OpError as exc:
                failures.append((index, f"TensorFlow cannot decode an input: {exc.message}"))
                continue
            except KeyError as exc:
                failures.append((index, f"input {exc} is not in signature '{name}'"))
                continue
            replayed += 1
            try:
                session.run(fetches, feed_dict=feeds)
            except tf.errors.OpError as exc:
                failures.append((index, f"TensorFlow: {exc.message}"))
            except (ValueError, TypeError, KeyError) as exc:
                failures.append((index, f"TensorFlow: {exc}"))
    finally:
        session.close()
    notes = (f"{skipped} non-predict record(s) checked statically only",) if skipped else ()
    return ReplayOutcome(replayed, tuple(failures), notes)


def _fetches(signature: Any, output_filter: list[str]) -> tuple[dict[str, str], str | None]:
    """The tensors to fetch by alias, or the message TF Serving's PreProcessPrediction gives
    for an output_filter alias the signature lacks or lists twice."""
    seen: set[str] = set()
    for alias in output_filter:
        if alias not in signature.outputs:
            outputs = ", ".join(sorted(signature.outputs))
            return {}, (
                f"output_filter: output tensor alias not found in signature: '{alias}' "
                f"(outputs: {outputs})"
            )
        if alias in seen:
            return {}, f"output_filter: duplicate output tensor alias: '{alias}'"
        seen.add(alias)
    wanted = output_filter or list(signature.outputs)
    return {alias: signature.outputs[alias].name for alias in sorted(wanted)}, None


def _decode(tf: Any, tensor: Any) -> Any:
    """A TensorProto as a numpy array, decoded by TensorFlow's C++ Tensor::FromProto."""
    dtype = tf.dtypes.as_dtype(tensor.dtype)
    return tf.io.parse_tensor(tensor.SerializeToString(), out_type=dtype).numpy()


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
    """TensorFlow, which only --replay needs: the base install does not bring it."""
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise UserError(
            f"warmup verify --replay runs the records with TensorFlow, which is not installed"
            f" ({exc})",
            hint="pip install 'tfsconf[tensorflow]' (or drop --replay: the static checks need"
            " no TensorFlow)",
        ) from None
    return tf
