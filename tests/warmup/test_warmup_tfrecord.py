"""TFRecord framing: round trip, corruption, and identity with TensorFlow's writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconf.errors import UserError
from tfsconf.warmup.tfrecord import frame, parse_records, read_records, write_records

RECORDS = [b"", b"a", b"hello world", bytes(range(256)) * 40]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "file.tfrecord"
    assert write_records(path, RECORDS) == len(RECORDS)
    assert list(read_records(path)) == RECORDS
    assert [p.name for p in path.parent.iterdir()] == ["file.tfrecord"]  # no temp left


def test_frame_layout() -> None:
    framed = frame(b"abc")
    assert len(framed) == 8 + 4 + 3 + 4
    assert framed[:8] == (3).to_bytes(8, "little")
    assert framed[12:15] == b"abc"


def test_corrupted_data_names_the_record() -> None:
    blob = bytearray(b"".join(frame(r) for r in RECORDS))
    second_data = len(frame(RECORDS[0])) + 12
    blob[second_data] ^= 0x01
    with pytest.raises(UserError, match=r"f: record 1 \(byte offset 16\): data CRC mismatch"):
        list(parse_records(bytes(blob), source="f"))


def test_corrupted_length_is_reported() -> None:
    blob = bytearray(frame(b"abc"))
    blob[0] = 200
    with pytest.raises(UserError, match=r"record 0 .*length CRC mismatch"):
        list(parse_records(bytes(blob), source="f"))


@pytest.mark.parametrize("cut", [1, 5, 13])
def test_truncated_file(cut: int) -> None:
    blob = frame(b"first") + frame(b"second record")
    with pytest.raises(UserError, match=r"record 1 .*truncated"):
        list(parse_records(blob[:-cut], source="f"))


@pytest.mark.slow
def test_byte_identical_to_tensorflow_writer(tmp_path: Path) -> None:
    import tensorflow as tf

    theirs = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(theirs)) as writer:
        for record in RECORDS:
            writer.write(record)
    ours = tmp_path / "ours.tfrecord"
    write_records(ours, RECORDS)
    assert ours.read_bytes() == theirs.read_bytes()
    assert list(read_records(theirs)) == RECORDS


@pytest.mark.slow
def test_tensorflow_reads_our_file(tmp_path: Path) -> None:
    import tensorflow as tf

    ours = tmp_path / "ours.tfrecord"
    write_records(ours, RECORDS)
    read_back = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(str(ours))]
    assert read_back == RECORDS
