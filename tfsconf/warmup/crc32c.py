"""CRC-32C (Castagnoli), table-driven, in pure Python.

TFRecord framing and TensorFlow's checkpoint tables checksum with CRC-32C, then "mask" the
value so that a CRC stored inside checksummed data does not checksum to a fixed point.
No extension module is needed for warmup-sized files (a few MB at most).
"""

from __future__ import annotations

_POLYNOMIAL = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8
_U32 = 0xFFFFFFFF


def _make_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of data; pass a previous result as crc to continue a running checksum."""
    table = _TABLE
    crc ^= _U32
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def mask(crc: int) -> int:
    """TensorFlow's masking: rotate right by 15 bits, then add a constant (mod 2**32)."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & _U32


def unmask(masked: int) -> int:
    """Inverse of mask, for reading CRCs stored by TensorFlow."""
    rotated = (masked - _MASK_DELTA) & _U32
    return ((rotated >> 17) | (rotated << 15)) & _U32


def masked_crc32c(data: bytes) -> int:
    """The checksum TFRecord and TF tables store: mask(crc32c(data))."""
    return mask(crc32c(data))
