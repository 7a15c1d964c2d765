"""The TensorFlow dtypes tfsconf can write into and check in a TensorProto.

For each DataType: the struct code of one element in ``tensor_content`` (little-endian,
as TensorFlow packs it) and the repeated ``*_val`` field TensorFlow also accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Family(Enum):
    """What Python values a dtype takes."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"


@dataclass(frozen=True, slots=True)
class DtypeInfo:
    """How one DataType is encoded. struct_code is None for strings (no tensor_content).

    packs_content mirrors tf.make_tensor_proto: those dtypes go into tensor_content when
    a tensor has more than one element, everything else into the *_val field, so tfsconf
    writes the same TensorProto as the scripts it replaces.
    """

    name: str
    family: Family
    struct_code: str | None
    val_field: str
    packs_content: bool = True


# DataType enum values from tensorflow/core/framework/types.proto.
_DTYPES: dict[int, DtypeInfo] = {
    1: DtypeInfo("float", Family.FLOAT, "f", "float_val"),
    2: DtypeInfo("double", Family.FLOAT, "d", "double_val"),
    3: DtypeInfo("int32", Family.INT, "i", "int_val"),
    4: DtypeInfo("uint8", Family.INT, "B", "int_val"),
    5: DtypeInfo("int16", Family.INT, "h", "int_val"),
    6: DtypeInfo("int8", Family.INT, "b", "int_val"),
    7: DtypeInfo("string", Family.STRING, None, "string_val", packs_content=False),
    9: DtypeInfo("int64", Family.INT, "q", "int64_val"),
    10: DtypeInfo("bool", Family.BOOL, "?", "bool_val", packs_content=False),
    17: DtypeInfo("uint16", Family.INT, "H", "int_val", packs_content=False),
    19: DtypeInfo("half", Family.FLOAT, "e", "half_val"),
    22: DtypeInfo("uint32", Family.INT, "I", "uint32_val"),
    23: DtypeInfo("uint64", Family.INT, "Q", "uint64_val"),
}


def dtype_info(dtype: int) -> DtypeInfo | None:
    """The encoding of a DataType, or None when tfsconf does not handle it."""
    return _DTYPES.get(dtype)
