"""The signatures of the meta graph TF Serving loads, as the warmup checks see them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfsconf.warmup.signature import (
    DEFAULT_SIGNATURE,
    TensorSpec,
    serving_meta_graph,
    shape_from_proto,
)

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# Signature keys fixed by tensorflow/cc/saved_model/signature_constants.h.
EXAMPLES_INPUT = "inputs"
CLASSIFY_OUTPUTS = ("classes", "scores")
REGRESS_OUTPUT = "outputs"
DT_STRING = 7

# Keys like __saved_model_init_op hold the initializer, not a callable signature.
_INTERNAL_PREFIX = "__saved_model_"


@dataclass(frozen=True, slots=True)
class ServedSignature:
    """What the warmup checks need of one SignatureDef of the served meta graph.

    inputs maps alias -> spec; input_tensors alias -> graph tensor name (multi-inference
    requires one shared input tensor); defaults are the aliases a request may omit.
    """

    name: str
    method_name: str
    inputs: Mapping[str, TensorSpec]
    input_tensors: Mapping[str, str]
    outputs: frozenset[str]
    defaults: frozenset[str]


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """How the server runs: batching adds checks, the method-name check is a server flag."""

    batching: bool = False
    method_name_check: bool = False


def served_signatures(model_dir: Path) -> dict[str, ServedSignature]:
    """Every callable signature of the meta graph TF Serving loads, by name."""
    meta_graph = serving_meta_graph(model_dir)
    return {
        name: ServedSignature(
            name=name,
            method_name=str(definition.method_name),
            inputs={
                alias: TensorSpec(alias, int(info.dtype), shape_from_proto(info.tensor_shape))
                for alias, info in sorted(definition.inputs.items())
            },
            input_tensors={alias: str(info.name) for alias, info in definition.inputs.items()},
            outputs=frozenset(definition.outputs),
            defaults=frozenset(definition.defaults),
        )
        for name, definition in sorted(meta_graph.signature_def.items())
        if not name.startswith(_INTERNAL_PREFIX)
    }


def lookup_signature(name: str, signatures: Mapping[str, ServedSignature]) -> ServedSignature | str:
    """The signature, or the problem text when the SavedModel lacks it."""
    signature = signatures.get(name or DEFAULT_SIGNATURE)
    if signature is not None:
        return signature
    available = ", ".join(sorted(signatures)) or "none"
    shown = name or DEFAULT_SIGNATURE
    return f"signature '{shown}' is not in the SavedModel (signatures: {available})"


DEFAULT_OPTIONS = CheckOptions()
