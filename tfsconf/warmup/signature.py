"""A SavedModel's serving signatures, read from saved_model.pb without TensorFlow.

Warmup requests and model checks both need the inputs of one signature: the alias a
PredictRequest uses as key, its dtype and its shape (``None`` for a dimension of unknown
size, ``shape=None`` for unknown rank). TF Serving loads the meta graph tagged ``serve``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import message, text_format

from tfsconf.errors import UserError
from tfsconf.warmup.protos import tf_protos

DEFAULT_SIGNATURE = "serving_default"
SERVE_TAG = "serve"

# Keys like __saved_model_init_op hold the initializer, not a callable signature.
_INTERNAL_PREFIX = "__saved_model_"

Shape = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One signature input: the wire dtype (a DataType enum value) and its shape."""

    name: str
    dtype: int
    shape: Shape | None

    @property
    def dtype_name(self) -> str:
        return dtype_name(self.dtype)


@dataclass(frozen=True, slots=True)
class Signature:
    """One SignatureDef of the served meta graph: its method (predict, classify, regress),
    inputs by alias, the graph tensor each input feeds (multi-inference needs one shared
    input tensor), its output aliases, and the inputs a request may omit (defaults)."""

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    input_tensors: Mapping[str, str] = field(default_factory=dict)
    outputs: frozenset[str] = frozenset()
    defaults: frozenset[str] = frozenset()


def dtype_name(dtype: int) -> str:
    """'DT_FLOAT' -> 'float': how TensorFlow users name dtypes."""
    enum = tf_protos().types.DataType
    try:
        return str(enum.Name(dtype)).removeprefix("DT_").lower()
    except ValueError:
        return f"dtype {dtype}"


def format_shape(shape: Shape | None) -> str:
    """(None, 1) -> '[None, 1]'; unknown rank -> '<unknown rank>'."""
    if shape is None:
        return "<unknown rank>"
    return "[" + ", ".join("None" if d is None else str(d) for d in shape) + "]"


def shape_from_proto(proto: Any) -> Shape | None:
    """A TensorShapeProto as a tuple; -1 sizes become None."""
    if proto.unknown_rank:
        return None
    return tuple(None if dim.size < 0 else int(dim.size) for dim in proto.dim)


def load_saved_model(model_dir: Path) -> Any:
    """Parse <model_dir>/saved_model.pb (or .pbtxt, which TensorFlow also accepts)."""
    protos = tf_protos()
    binary = model_dir / "saved_model.pb"
    text = model_dir / "saved_model.pbtxt"
    saved_model = protos.saved_model.SavedModel()
    try:
        if binary.is_file():
            saved_model.ParseFromString(binary.read_bytes())
        elif text.is_file():
            _parse_text(text.read_text(encoding="utf-8"), saved_model)
        else:
            raise UserError(f"{model_dir}: no saved_model.pb: not a SavedModel version directory")
    except (message.DecodeError, text_format.ParseError) as exc:
        found = binary if binary.is_file() else text
        raise UserError(f"{found}: cannot parse the SavedModel: {exc}") from exc
    except OSError as exc:
        raise UserError(f"{model_dir}: cannot read the SavedModel: {exc}") from exc
    return saved_model


# Subtrees tfsconf's own SavedModel description leaves out (tfsconf/protos/tf_saved_model.proto).
_NOT_DESCRIBED = ("graph_def", "object_graph_def", "stripped_op_list", "type_spec")


def _parse_text(text: str, saved_model: Any) -> None:
    """Parse a text SavedModel. The binary format keeps the subtrees tfsconf does not
    describe as unknown fields; the text format cannot, so when (and only when) the strict
    parse stops at one of them, the text is parsed again skipping unknown fields."""
    try:
        text_format.Parse(text, saved_model)
    except text_format.ParseError as exc:
        if not any(f'field named "{name}"' in str(exc) for name in _NOT_DESCRIBED):
            raise
        saved_model.Clear()
        text_format.Parse(text, saved_model, allow_unknown_field=True)


def serving_meta_graph(model_dir: Path, saved_model: Any | None = None) -> Any:
    """The meta graph TF Serving loads: the one tagged exactly {serve}. TensorFlow's loader
    matches the whole tag set, so a graph tagged {serve, gpu} is not it."""
    saved_model = load_saved_model(model_dir) if saved_model is None else saved_model
    tag_sets = []
    for meta_graph in saved_model.meta_graphs:
        tags = set(meta_graph.meta_info_def.tags)
        if tags == {SERVE_TAG}:
            return meta_graph
        tag_sets.append("{" + ", ".join(sorted(tags)) + "}")
    found = ", ".join(tag_sets) or "none"
    raise UserError(
        f"{model_dir}/saved_model.pb: no meta graph tagged exactly {{{SERVE_TAG}}} "
        f"(tag sets: {found}); TF Serving loads tags 'serve'"
    )


def serving_signatures(model_dir: Path, meta_graph: Any | None = None) -> dict[str, Signature]:
    """Every callable signature of the meta graph TF Serving loads, by name (pass the
    meta graph when it is already parsed)."""
    meta_graph = serving_meta_graph(model_dir) if meta_graph is None else meta_graph
    return {
        name: _signature(name, definition)
        for name, definition in sorted(meta_graph.signature_def.items())
        if not name.startswith(_INTERNAL_PREFIX)
    }


def read_signature(
    model_dir: Path, signature_name: str = DEFAULT_SIGNATURE, meta_graph: Any | None = None
) -> Signature:
    """The named signature; the error lists the ones that do exist."""
    signatures = serving_signatures(model_dir, meta_graph)
    try:
        return signatures[signature_name]
    except KeyError:
        available = ", ".join(sorted(signatures)) or "none"
        raise UserError(
            f"{model_dir}/saved_model.pb: no signature '{signature_name}' (signatures: {available})"
        ) from None


def _signature(name: str, definition: Any) -> Signature:
    inputs = {
        alias: TensorSpec(alias, int(info.dtype), shape_from_proto(info.tensor_shape))
        for alias, info in sorted(definition.inputs.items())
    }
    return Signature(
        name=name,
        method_name=str(definition.method_name),
        inputs=inputs,
        input_tensors={alias: str(info.name) for alias, info in definition.inputs.items()},
        outputs=frozenset(definition.outputs),
        defaults=frozenset(definition.defaults),
    )
