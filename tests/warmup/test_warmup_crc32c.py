"""CRC-32C against published vectors (RFC 3720 B.4, the iSCSI check value)."""

from __future__ import annotations

import pytest

from tfsconf.warmup import crc32c as crc_module
from tfsconf.warmup.crc32c import crc32c, mask, masked_crc32c, python_crc32c, unmask


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x00000000),
        (b"123456789", 0xE3069283),
        (bytes(32), 0x8A9136AA),
        (b"\xff" * 32, 0x62A8AB43),
        (bytes(range(32)), 0x46DD794E),
        (bytes(range(31, -1, -1)), 0x113FDB5C),
    ],
)
def test_known_vectors(data: bytes, expected: int) -> None:
    assert crc32c(data) == expected
    assert python_crc32c(data) == expected


def test_the_c_extension_is_used_where_installed() -> None:
    """The dev install has google-crc32c with its C extension: crc32c must use it."""
    assert crc_module.IMPLEMENTATION == "c"


def test_c_and_python_agree_on_running_checksums() -> None:
    data = bytes(range(256)) * 41 + b"tail"
    for cut in (0, 1, 100, len(data)):
        head = python_crc32c(data[:cut])
        assert crc32c(data[cut:], head) == python_crc32c(data[cut:], head) == crc32c(data)


def test_running_checksum_equals_one_pass() -> None:
    data = bytes(range(256)) * 3
    assert crc32c(data[100:], crc32c(data[:100])) == crc32c(data)


@pytest.mark.parametrize("value", [0, 1, 0xE3069283, 0xFFFFFFFF, 0x12345678])
def test_unmask_inverts_mask(value: int) -> None:
    assert unmask(mask(value)) == value
    assert 0 <= mask(value) <= 0xFFFFFFFF


def test_masked_value_of_empty_record_length() -> None:
    # The masked CRC of the 8-byte little-endian length 0, as every TFRecord writer
    # stores it for an empty record: mask(crc32c(8 zero bytes)).
    assert masked_crc32c(bytes(8)) == mask(crc32c(bytes(8)))
    assert masked_crc32c(bytes(8)) != crc32c(bytes(8))
