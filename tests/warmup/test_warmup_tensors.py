"""Sample values -> TensorProto: shapes against the signature, dtype conversion, errors."""

from __future__ import annotations

import struct

import pytest

from tfsconf.errors import UserError
from tfsconf.warmup.samples import Sample, ValueKind
from tfsconf.warmup.signature import TensorSpec
from tfsconf.warmup.tensors import batch_tensor

DT_FLOAT, DT_INT32, DT_STRING, DT_INT64, DT_BOOL, DT_COMPLEX64 = 1, 3, 7, 9, 10, 8


def sample(kind: ValueKind = ValueKind.JSON, **values: object) -> Sample:
    return Sample("s.jsonl:1", kind, values)


def dims(tensor: object) -> list[int]:
    return [d.size for d in tensor.tensor_shape.dim]  # type: ignore[attr-defined]


def test_string_batch_dimension_follows_the_signature() -> None:
    rows = [sample(tags="a,b"), sample(tags="c")]
    flat = batch_tensor(TensorSpec("tags", DT_STRING, (None,)), rows)
    column = batch_tensor(TensorSpec("tags", DT_STRING, (None, 1)), rows)
    assert dims(flat) == [2]
    assert dims(column) == [2, 1]
    assert list(flat.string_val) == list(column.string_val) == [b"a,b", b"c"]


def test_float_vector_packed_little_endian() -> None:
    tensor = batch_tensor(TensorSpec("dense", DT_FLOAT, (None, 3)), [sample(dense=[1, 2.5, -3.0])])
    assert tensor.dtype == DT_FLOAT
    assert dims(tensor) == [1, 3]
    assert struct.unpack("<3f", tensor.tensor_content) == (1.0, 2.5, -3.0)


def test_flat_list_reshaped_to_known_per_example_shape() -> None:
    tensor = batch_tensor(TensorSpec("m", DT_INT64, (None, 2, 2)), [sample(m=[1, 2, 3, 4])])
    assert dims(tensor) == [1, 2, 2]
    assert struct.unpack("<4q", tensor.tensor_content) == (1, 2, 3, 4)


def test_unknown_inner_dimension_takes_the_sample_length() -> None:
    tensor = batch_tensor(TensorSpec("ids", DT_INT64, (None, None)), [sample(ids=[5, 6, 7])])
    assert dims(tensor) == [1, 3]


def test_single_values_use_the_typed_field_like_make_tensor_proto() -> None:
    row = sample(x=2.5, n=-4, b=True, s="7")
    assert list(batch_tensor(TensorSpec("x", DT_FLOAT, (None,)), [row]).float_val) == [2.5]
    assert list(batch_tensor(TensorSpec("n", DT_INT32, (None,)), [row]).int_val) == [-4]
    assert list(batch_tensor(TensorSpec("n", DT_INT64, (None,)), [row]).int64_val) == [-4]
    assert list(batch_tensor(TensorSpec("b", DT_BOOL, (None,)), [row]).bool_val) == [True]
    two = [row, row]
    assert batch_tensor(TensorSpec("n", DT_INT64, (None,)), two).tensor_content == struct.pack(
        "<2q", -4, -4
    )
    assert list(batch_tensor(TensorSpec("b", DT_BOOL, (None,)), two).bool_val) == [True, True]


def test_csv_text_is_parsed_by_dtype() -> None:
    row = sample(ValueKind.TEXT, x="2.5", n="-4", b="true", s="7")
    assert list(batch_tensor(TensorSpec("x", DT_FLOAT, (None,)), [row]).float_val) == [2.5]
    assert list(batch_tensor(TensorSpec("n", DT_INT32, (None,)), [row]).int_val) == [-4]
    assert list(batch_tensor(TensorSpec("b", DT_BOOL, (None,)), [row]).bool_val) == [True]
    assert list(batch_tensor(TensorSpec("s", DT_STRING, (None,)), [row]).string_val) == [b"7"]


def test_example_lists_fit_scalar_inputs() -> None:
    row = sample(ValueKind.EXAMPLE, n=[3], s=[b"\xff\x00raw"])
    assert dims(batch_tensor(TensorSpec("n", DT_INT64, (None,)), [row])) == [1]
    assert list(batch_tensor(TensorSpec("s", DT_STRING, (None,)), [row]).string_val) == [
        b"\xff\x00raw"
    ]


def test_b64_json_object_gives_raw_bytes() -> None:
    tensor = batch_tensor(TensorSpec("img", DT_STRING, (None,)), [sample(img={"b64": "AAEC"})])
    assert list(tensor.string_val) == [b"\x00\x01\x02"]


def test_missing_input_names_sample_and_input() -> None:
    with pytest.raises(UserError, match=r"s.jsonl:1: the sample has no value for input 'dense'"):
        batch_tensor(TensorSpec("dense", DT_FLOAT, (None,)), [sample(other=1.0)])


@pytest.mark.parametrize(
    ("dtype", "value", "expected"),
    [
        (DT_FLOAT, "1.5", "expects float values, got '1.5'"),
        (DT_INT64, 1.5, "expects int64 values, got 1.5"),
        (DT_INT64, True, "expects int64 values, got True"),
        (DT_STRING, 3, "expects string values, got 3"),
        (DT_BOOL, 1, "expects bool values, got 1"),
        (DT_INT32, 2**31, "2147483648 is out of range for int32"),
        (DT_FLOAT, 1e39, "1e\\+39 is out of range for float"),
    ],
)
def test_wrong_dtype(dtype: int, value: object, expected: str) -> None:
    with pytest.raises(UserError, match=rf"s.jsonl:1: input 'x'.*{expected}"):
        batch_tensor(TensorSpec("x", dtype, (None,)), [sample(x=value)])


def test_shape_that_does_not_fit() -> None:
    with pytest.raises(
        UserError, match=r"shape \[2\] does not fit the signature shape \[None, 3\]"
    ):
        batch_tensor(TensorSpec("x", DT_FLOAT, (None, 3)), [sample(x=[1.0, 2.0])])


def test_ragged_list_rejected() -> None:
    with pytest.raises(UserError, match="ragged nested list"):
        batch_tensor(TensorSpec("x", DT_FLOAT, (None, None, None)), [sample(x=[[1.0], [1.0, 2.0]])])


def test_batch_of_different_lengths_rejected() -> None:
    rows = [sample(x=[1, 2]), sample(x=[1, 2, 3])]
    with pytest.raises(UserError, match=r"shape \[3\] differs from \[2\]"):
        batch_tensor(TensorSpec("x", DT_INT64, (None, None)), rows)


def test_unsupported_dtype() -> None:
    with pytest.raises(UserError, match="dtype complex64, which tfsconf cannot generate"):
        batch_tensor(TensorSpec("x", DT_COMPLEX64, (None,)), [sample(x=1.0)])


def test_scalar_input_cannot_batch() -> None:
    spec = TensorSpec("x", DT_FLOAT, ())
    assert dims(batch_tensor(spec, [sample(x=1.0)])) == []
    with pytest.raises(UserError, match=r"scalar .*cannot batch 2 samples"):
        batch_tensor(spec, [sample(x=1.0), sample(x=2.0)])
