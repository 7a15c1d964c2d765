"""Classify, regress and multi-inference records: the checks of TF Serving's
classifier.cc / regressor.cc / multi_inference.cc preprocessing on a warmup request."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tfsconf.warmup.served import (
    CLASSIFY_METHOD,
    CLASSIFY_OUTPUTS,
    DT_STRING,
    EXAMPLES_INPUT,
    REGRESS_METHOD,
    REGRESS_OUTPUT,
    CheckOptions,
    lookup_signature,
)
from tfsconf.warmup.signature import DEFAULT_SIGNATURE, Signature


def check_multi_inference(
    request: Any, signatures: Mapping[str, Signature], options: CheckOptions
) -> tuple[list[str], list[str]]:
    """multi_inference.cc: one model, distinct signatures, classify/regress tasks, one input."""
    problems: list[str] = []
    warnings: list[str] = []
    if not request.tasks:
        problems.append("multi_inference_log request has no tasks")
    model_names = sorted({task.model_spec.name for task in request.tasks})
    if "" in model_names:
        problems.append("a multi-inference task has an empty model_spec.name")
    elif len(model_names) > 1:
        problems.append(f"multi-inference tasks name different models ({', '.join(model_names)})")
    seen: set[str] = set()
    input_tensors: set[str] = set()
    for number, task in enumerate(request.tasks):
        name = task.model_spec.signature_name or DEFAULT_SIGNATURE
        if name in seen:
            problems.append(f"task {number}: signature '{name}' is evaluated twice")
            continue
        seen.add(name)
        if task.method_name not in (CLASSIFY_METHOD, REGRESS_METHOD):
            problems.append(
                f"task {number}: method_name '{task.method_name}': TF Serving runs only "
                f"{CLASSIFY_METHOD} and {REGRESS_METHOD}"
            )
            continue
        texts, notes = check_example_signature(name, task.method_name, signatures, options)
        problems += [f"task {number}: {text}" for text in texts]
        warnings += [f"task {number}: {text}" for text in notes]
        signature = signatures.get(name)
        if not texts and signature is not None:
            input_tensors.add(signature.input_tensors[EXAMPLES_INPUT])
    if len(input_tensors) > 1:
        problems.append("multi-inference tasks read different input tensors; TF Serving needs one")
    return problems + check_example_input(request.input), warnings


def check_example_signature(
    name: str, method: str, signatures: Mapping[str, Signature], options: CheckOptions
) -> tuple[list[str], list[str]]:
    """classifier.cc / regressor.cc preprocessing: one string input 'inputs', fixed outputs.

    The method_name must match only under --enable_signature_method_name_check (off by
    default, so native TF2 signatures of the right shape work); otherwise a mismatch is
    a warning.
    """
    signature = lookup_signature(name, signatures)
    if isinstance(signature, str):
        return [signature], []
    problems: list[str] = []
    warnings: list[str] = []
    verb = "Classify" if method == CLASSIFY_METHOD else "Regress"
    if signature.method_name != method:
        text = (
            f"signature '{signature.name}' has method_name '{signature.method_name}', not {method}"
        )
        if options.method_name_check:
            problems.append(text)
        else:
            warnings.append(
                f"{text}: accepted only while --enable_signature_method_name_check is off"
            )
    if len(signature.inputs) != 1:
        problems.append(
            f"signature '{signature.name}' has {len(signature.inputs)} inputs: {verb} needs "
            f"exactly one (the serialized tf.Example strings, '{EXAMPLES_INPUT}')"
        )
    elif EXAMPLES_INPUT not in signature.inputs:
        problems.append(
            f"signature '{signature.name}' has no input '{EXAMPLES_INPUT}': {verb} feeds the "
            f"serialized tf.Example strings there"
        )
    elif signature.inputs[EXAMPLES_INPUT].dtype != DT_STRING:
        spec = signature.inputs[EXAMPLES_INPUT]
        problems.append(
            f"signature '{signature.name}' input '{EXAMPLES_INPUT}' is {spec.dtype_name}: {verb} "
            "feeds serialized tf.Example strings"
        )
    problems += _check_example_outputs(signature, method)
    return problems, warnings


def _check_example_outputs(signature: Signature, method: str) -> list[str]:
    outputs = ", ".join(sorted(signature.outputs)) or "none"
    if method == CLASSIFY_METHOD:
        if len(signature.outputs) not in (1, 2) or not signature.outputs & set(CLASSIFY_OUTPUTS):
            return [
                f"signature '{signature.name}' outputs ({outputs}): Classify needs one or two "
                "outputs, among them 'classes' or 'scores'"
            ]
    elif signature.outputs != {REGRESS_OUTPUT}:
        return [
            f"signature '{signature.name}' outputs ({outputs}): Regress needs exactly one "
            f"output, '{REGRESS_OUTPUT}'"
        ]
    return []


def check_example_input(request_input: Any) -> list[str]:
    """InputToSerializedExampleTensor: 'Input is empty.' without examples."""
    kind = request_input.WhichOneof("kind")
    if kind is None or not getattr(request_input, kind).examples:
        return ["the request's input has no examples; TF Serving: Input is empty"]
    return []
