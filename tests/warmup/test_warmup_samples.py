"""Sample readers: JSONL, CSV, TFRecord of tf.Example, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconf.errors import UserError
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.samples import ValueKind, read_samples, take_samples
from tfsconf.warmup.tfrecord import write_records


def test_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1, "b": "x"}\n\n{"a": [2, 3], "b": "y"}\n')
    rows = list(read_samples(path))
    assert [r.values for r in rows] == [{"a": 1, "b": "x"}, {"a": [2, 3], "b": "y"}]
    assert [r.where for r in rows] == [f"{path}:1", f"{path}:3"]
    assert {r.kind for r in rows} == {ValueKind.JSON}


def test_csv(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text('a,b\n1.5,"x,y"\n2,z\n')
    rows = list(read_samples(path))
    assert [r.values for r in rows] == [{"a": "1.5", "b": "x,y"}, {"a": "2", "b": "z"}]
    assert rows[1].where == f"{path}:3"
    assert rows[0].kind is ValueKind.TEXT


def test_tfrecord_of_examples(tmp_path: Path) -> None:
    example = tf_protos().example.Example()
    example.features.feature["f"].float_list.value.extend([1.5, 2.0])
    example.features.feature["i"].int64_list.value.append(7)
    example.features.feature["s"].bytes_list.value.append(b"abc")
    path = tmp_path / "s.tfrecord"
    write_records(path, [example.SerializeToString()])
    (row,) = read_samples(path)
    assert row.values == {"f": [1.5, 2.0], "i": [7], "s": [b"abc"]}
    assert row.where == f"{path}: record 0"


def test_take_samples_reuses_a_short_file(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n')
    assert [r.values["a"] for r in take_samples(path, 5)] == [1, 2, 1, 2, 1]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("s.jsonl", '{"a": 1}\n{"a": \n', r"s.jsonl:2: not valid JSON"),
        ("s.jsonl", "[1, 2]\n", r"s.jsonl:1: expected a JSON object of features, got list"),
        ("s.jsonl", "\n", r"s.jsonl: no samples in the file"),
        ("s.csv", "a,b\n1,2,3\n", r"s.csv:2: more cells than header columns"),
        ("s.csv", "a,b\n1\n", r"s.csv:2: fewer cells than header columns"),
        ("s.parquet", "x", r"unknown sample format '.parquet'"),
        (
            "s.tfrecord",
            "not a tfrecord",
            r"s.tfrecord: record 0 .*length CRC mismatch: corrupted or not a TFRecord",
        ),
    ],
)
def test_bad_sample_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UserError, match=message):
        take_samples(path, 3)


def test_missing_sample_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="sample file not found"):
        take_samples(tmp_path / "nope.jsonl", 1)


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "samples.txt"
    path.write_text('{"a": 1}\n')
    with pytest.raises(UserError, match=r"unknown sample format '\.txt'.*name the format"):
        take_samples(path, 1)
    assert [r.values for r in take_samples(path, 1, "jsonl")] == [{"a": 1}]
    with pytest.raises(UserError, match=r"unknown sample format 'yaml'"):
        take_samples(path, 1, "yaml")
