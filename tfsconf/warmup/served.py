"""Names and options the warmup checks share: serving method names, signature keys,
the server settings that change the checks, and signature lookup."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tfsconf.warmup.signature import DEFAULT_SIGNATURE, Signature

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# Signature keys fixed by tensorflow/cc/saved_model/signature_constants.h.
EXAMPLES_INPUT = "inputs"
CLASSIFY_OUTPUTS = ("classes", "scores")
REGRESS_OUTPUT = "outputs"
DT_STRING = 7


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """How the server runs: batching adds checks, the method-name check is a server flag."""

    batching: bool = False
    method_name_check: bool = False


def lookup_signature(name: str, signatures: Mapping[str, Signature]) -> Signature | str:
    """The signature, or the problem text when the SavedModel lacks it."""
    signature = signatures.get(name or DEFAULT_SIGNATURE)
    if signature is not None:
        return signature
    available = ", ".join(sorted(signatures)) or "none"
    shown = name or DEFAULT_SIGNATURE
    return f"signature '{shown}' is not in the SavedModel (signatures: {available})"


DEFAULT_OPTIONS = CheckOptions()
