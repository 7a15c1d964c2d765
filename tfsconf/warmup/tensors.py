"""Sample values -> TensorProto, shaped and typed as a signature input expects.

A signature input's first dimension is the batch; the rest is the per-example shape. A
sample value is fitted to the per-example shape: exactly, or, when every per-example
dimension is known, by reshaping a scalar or flat list with the same number of elements
(so "a,b" becomes [["a,b"]] for a [None, 1] string input but stays ["a,b"] for [None]).
Anything else is an error naming the sample and the input.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Sequence
from typing import Any

from tfsconf.errors import UserError
from tfsconf.warmup.dtypes import DtypeInfo, Family, dtype_info
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.samples import Sample, ValueKind
from tfsconf.warmup.signature import Shape, TensorSpec, format_shape

Scalar = float | int | bool | bytes

# TensorFlow's own limit on tensor rank (TensorShape::MaxDimensions).
MAX_RANK = 254

_TRUE_TEXT = frozenset({"1", "true", "True", "TRUE"})
_FALSE_TEXT = frozenset({"0", "false", "False", "FALSE"})


def batch_tensor(spec: TensorSpec, samples: Sequence[Sample], *, into: Any = None) -> Any:
    """One TensorProto holding the samples' values for spec, stacked along the batch;
    written into `into` (an empty TensorProto, say a request's map entry) when given."""
    info = dtype_info(spec.dtype)
    if info is None:
        raise UserError(
            f"input '{spec.name}' has dtype {spec.dtype_name}, which tfsconf cannot "
            "generate warmup values for"
        )
    if spec.shape == () and len(samples) != 1:
        raise UserError(
            f"input '{spec.name}' is a scalar (no batch dimension): "
            f"cannot batch {len(samples)} samples into one request"
        )
    flat: list[Scalar] = []
    example_shape: Shape | None = None
    for sample in samples:
        values, shape = _fit(spec, sample)
        if example_shape is not None and shape != example_shape:
            raise UserError(
                f"{sample.where}: input '{spec.name}': shape {format_shape(shape)} differs "
                f"from {format_shape(example_shape)} of the other samples in the batch"
            )
        example_shape = shape
        flat.extend(_convert(info, sample, spec.name, value) for value in values)
    assert example_shape is not None  # samples is never empty
    if spec.shape and spec.shape[0] is not None and spec.shape[0] != len(samples):
        raise UserError(
            f"input '{spec.name}' has a fixed batch dimension of {spec.shape[0]} "
            f"(shape {format_shape(spec.shape)}): a batch of {len(samples)} does not fit; "
            f"use --batch-sizes {spec.shape[0]}"
        )
    dims = example_shape if spec.shape == () else (len(samples), *example_shape)
    return _tensor_proto(spec.dtype, info, dims, flat, into)


def _fit(spec: TensorSpec, sample: Sample) -> tuple[list[object], Shape]:
    """The sample's value for spec, flattened, and its per-example shape."""
    if spec.name not in sample.values:
        raise UserError(f"{sample.where}: the sample has no value for input '{spec.name}'")
    flat, shape = _flatten(sample.values[spec.name], sample, spec.name)
    if spec.shape is None:
        return flat, shape
    wanted = spec.shape[1:] if spec.shape else ()
    if _compatible(shape, wanted):
        return flat, shape
    if all(d is not None for d in wanted) and len(shape) <= 1:
        fixed = tuple(d for d in wanted if d is not None)
        if math.prod(fixed) == len(flat):
            return flat, fixed
    raise UserError(
        f"{sample.where}: input '{spec.name}': a value of shape {format_shape(shape)} does "
        f"not fit the signature shape {format_shape(spec.shape)} "
        f"(per example: {format_shape(wanted)})"
    )


def _compatible(shape: Shape, wanted: Shape) -> bool:
    return len(shape) == len(wanted) and all(
        w is None or w == s for s, w in zip(shape, wanted, strict=True)
    )


def _flatten(
    value: object, sample: Sample, name: str, depth: int = 0
) -> tuple[list[object], Shape]:
    """Nested lists -> (row-major elements, shape); ragged nesting is an error."""
    if not isinstance(value, list):
        return [value], ()
    if not value:
        return [], (0,)
    if depth > MAX_RANK:
        raise UserError(f"{sample.where}: input '{name}': nested deeper than {MAX_RANK} levels")
    parts = [_flatten(item, sample, name, depth + 1) for item in value]
    inner = parts[0][1]
    if any(shape != inner for _, shape in parts):
        raise UserError(f"{sample.where}: input '{name}': ragged nested list")
    return [x for flat, _ in parts for x in flat], (len(value), *inner)


def _convert(info: DtypeInfo, sample: Sample, name: str, value: object) -> Scalar:
    """One element to the Python type of its dtype, or an error saying what was found."""
    converted = _CONVERTERS[info.family](value, sample.kind)
    if converted is None:
        raise UserError(
            f"{sample.where}: input '{name}' expects {info.name} values, got {_shown(value)}"
        )
    if info.struct_code is not None:
        try:
            struct.pack(f"<{info.struct_code}", converted)
        except (struct.error, OverflowError):
            raise UserError(
                f"{sample.where}: input '{name}': {_shown(value)} is out of range for {info.name}"
            ) from None
    return converted


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _to_float(value: object, kind: ValueKind) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return float(value)
        if kind is ValueKind.TEXT and isinstance(value, str):
            return float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer beyond any float
        return None
    return None


def _to_int(value: object, kind: ValueKind) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if kind is ValueKind.TEXT and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _to_bool(value: object, kind: ValueKind) -> bool | None:
    if isinstance(value, bool):
        return value
    if kind is ValueKind.EXAMPLE and value in (0, 1):
        return bool(value)
    if kind is ValueKind.TEXT and isinstance(value, str):
        if value.strip() in _TRUE_TEXT:
            return True
        if value.strip() in _FALSE_TEXT:
            return False
    return None


def _to_bytes(value: object, kind: ValueKind) -> bytes | None:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if kind is ValueKind.JSON and isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(str(value["b64"]), validate=True)
        except binascii.Error:
            return None
    return None


_CONVERTERS = {
    Family.FLOAT: _to_float,
    Family.INT: _to_int,
    Family.BOOL: _to_bool,
    Family.STRING: _to_bytes,
}


def _tensor_proto(
    dtype: int, info: DtypeInfo, dims: Shape, flat: list[Scalar], into: Any = None
) -> Any:
    tensor = tf_protos().tensor.TensorProto() if into is None else into
    tensor.dtype = dtype
    for size in dims:
        tensor.tensor_shape.dim.add(size=size)
    if info.struct_code is not None and info.packs_content and len(flat) > 1:
        tensor.tensor_content = struct.pack(f"<{len(flat)}{info.struct_code}", *flat)
    elif info.val_field == "half_val":  # IEEE half bits, stored as integers
        tensor.half_val.extend(
            struct.unpack(f"<{len(flat)}H", struct.pack(f"<{len(flat)}e", *flat))
        )
    else:
        getattr(tensor, info.val_field).extend(flat)
    return tensor
