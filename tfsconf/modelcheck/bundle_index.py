"""Read a checkpoint's variables.index without TensorFlow.

The index is a LevelDB-format table (TensorFlow's lib/io/table): data blocks of
prefix-compressed key/value entries, an index block pointing at them, and a 48-byte footer.
Key "" holds a BundleHeaderProto (the number of data shards); every other key is a
tensor name whose BundleEntryProto says which shard holds its bytes, at which offset and
how many. That is what turns "the copy looks complete" into "every byte the loader will
read is there": a truncated shard passes a file-exists check but not this one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import message

from tfsconf.errors import UserError
from tfsconf.warmup.crc32c import masked_crc32c
from tfsconf.warmup.protos import tf_protos

_FOOTER_SIZE = 48
_MAGIC = 0xDB4775248B80FB57
_BLOCK_TRAILER = 5  # compression type byte + masked CRC-32C
_NO_COMPRESSION = 0


@dataclass(frozen=True, slots=True)
class TensorLocation:
    """Where one saved tensor's bytes live."""

    name: str
    shard: int
    offset: int
    size: int


@dataclass(frozen=True, slots=True)
class BundleIndex:
    """The shard count and every tensor stored in the data shards."""

    num_shards: int
    tensors: tuple[TensorLocation, ...]


def shard_name(prefix: str, shard: int, num_shards: int) -> str:
    """variables.data-00000-of-00002, as TensorFlow names data shards."""
    return f"{prefix}.data-{shard:05d}-of-{num_shards:05d}"


def read_bundle_index(path: Path) -> BundleIndex:
    """Parse variables.index; a damaged or unsupported file is a UserError naming it."""
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        entries = _table_entries(blob)
    except (IndexError, ValueError, struct.error) as exc:
        raise UserError(f"{path}: damaged checkpoint index: {exc}") from exc
    protos = tf_protos().tensor_bundle
    num_shards = 0
    tensors = []
    for key, value in entries:
        try:
            if key == b"":
                num_shards = int(protos.BundleHeaderProto.FromString(value).num_shards)
                continue
            entry = protos.BundleEntryProto.FromString(value)
        except message.DecodeError as exc:
            raise UserError(f"{path}: damaged checkpoint index entry {key!r}: {exc}") from exc
        if entry.size > 0:
            tensors.append(
                TensorLocation(
                    _display_name(key), int(entry.shard_id), int(entry.offset), int(entry.size)
                )
            )
    return BundleIndex(num_shards=num_shards, tensors=tuple(tensors))


def _display_name(key: bytes) -> str:
    """A partitioned tensor's slices have keys "\\0<name>\\0<encoded slice>"."""
    if key.startswith(b"\x00"):
        return key.split(b"\x00")[1].decode("utf-8", "replace") + " (a slice)"
    return key.decode("utf-8", "replace")


def _table_entries(blob: bytes) -> list[tuple[bytes, bytes]]:
    if len(blob) < _FOOTER_SIZE:
        raise ValueError(f"{len(blob)} bytes is shorter than a table footer")
    footer = blob[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, _FOOTER_SIZE - 8)
    if magic != _MAGIC:
        raise ValueError("bad table magic number (truncated or not a checkpoint index)")
    _, position = _read_handle(footer, 0)  # the metaindex block is not needed
    index_handle, _ = _read_handle(footer, position)
    entries = []
    for _, handle_bytes in _block_entries(blob, index_handle):
        data_handle, _ = _read_handle(handle_bytes, 0)
        entries.extend(_block_entries(blob, data_handle))
    return entries


def _block_entries(blob: bytes, handle: tuple[int, int]) -> list[tuple[bytes, bytes]]:
    offset, size = handle
    if offset + size + _BLOCK_TRAILER > len(blob) - _FOOTER_SIZE:
        raise ValueError(f"block at {offset} (+{size}) runs past the end of the file")
    contents = blob[offset : offset + size]
    compression = blob[offset + size]
    (stored_crc,) = struct.unpack_from("<I", blob, offset + size + 1)
    if masked_crc32c(blob[offset : offset + size + 1]) != stored_crc:
        raise ValueError(f"block at {offset}: CRC mismatch")
    if compression != _NO_COMPRESSION:
        raise ValueError(f"block at {offset}: compression type {compression} is not supported")
    (num_restarts,) = struct.unpack_from("<I", contents, len(contents) - 4)
    limit = len(contents) - 4 - 4 * num_restarts
    entries = []
    key = b""
    position = 0
    while position < limit:
        shared, position = _varint(contents, position)
        unshared, position = _varint(contents, position)
        value_size, position = _varint(contents, position)
        key = key[:shared] + contents[position : position + unshared]
        position += unshared
        entries.append((key, contents[position : position + value_size]))
        position += value_size
    return entries


def _read_handle(data: bytes, position: int) -> tuple[tuple[int, int], int]:
    offset, position = _varint(data, position)
    size, position = _varint(data, position)
    return (offset, size), position


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")
