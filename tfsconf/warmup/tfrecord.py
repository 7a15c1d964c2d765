"""TFRecord framing, written and read without TensorFlow.

Each record is ``uint64 length | uint32 masked_crc32c(length) | data |
uint32 masked_crc32c(data)``, little-endian. Reading checks both CRCs and reports the
record number and byte offset of the first bad frame, because TF Serving only says that
the warmup file failed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from tfsconf.atomic import write_atomically
from tfsconf.errors import UserError
from tfsconf.warmup.crc32c import masked_crc32c

_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_HEADER_SIZE = _LENGTH.size + _CRC.size


def frame(data: bytes) -> bytes:
    """One record's bytes as they appear in the file."""
    length = _LENGTH.pack(len(data))
    return b"".join(
        (length, _CRC.pack(masked_crc32c(length)), data, _CRC.pack(masked_crc32c(data)))
    )


def write_records(path: Path, records: Iterable[bytes]) -> int:
    """Write records atomically (temp file + rename): a reader never sees half a file.

    TF Serving may load a version while its warmup file is being written; a rename makes
    the file appear complete or not at all. Returns the number of records written.
    """
    count = 0

    def framed() -> Iterator[bytes]:
        nonlocal count
        for record in records:
            count += 1
            yield frame(record)

    write_atomically(path, framed())
    return count


def read_records(path: Path) -> Iterator[bytes]:
    """Yield each record's payload; raise UserError at the first bad frame."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    yield from parse_records(blob, source=str(path))


def parse_records(blob: bytes, *, source: str) -> Iterator[bytes]:
    """Yield each record of an in-memory TFRecord file, checking lengths and CRCs."""
    offset = 0
    index = 0
    end = len(blob)
    while offset < end:
        where = f"{source}: record {index} (byte offset {offset})"
        if end - offset < _HEADER_SIZE:
            raise UserError(f"{where}: truncated header ({end - offset} bytes left)")
        (length,) = _LENGTH.unpack_from(blob, offset)
        (length_crc,) = _CRC.unpack_from(blob, offset + _LENGTH.size)
        if masked_crc32c(blob[offset : offset + _LENGTH.size]) != length_crc:
            raise UserError(f"{where}: length CRC mismatch: corrupted or not a TFRecord file")
        start = offset + _HEADER_SIZE
        stop = start + length
        if stop + _CRC.size > end:
            raise UserError(
                f"{where}: truncated: header says {length} bytes of data, "
                f"{max(end - start - _CRC.size, 0)} present"
            )
        data = blob[start:stop]
        (data_crc,) = _CRC.unpack_from(blob, stop)
        if masked_crc32c(data) != data_crc:
            raise UserError(f"{where}: data CRC mismatch: the record is corrupted")
        yield data
        offset = stop + _CRC.size
        index += 1
