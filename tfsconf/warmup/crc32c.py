"""CRC-32C (Castagnoli): google-crc32c's C extension, or a table-driven pure-Python
fallback when that extension is not installed.

TFRecord framing and TensorFlow's checkpoint tables checksum with CRC-32C, then "mask" the
value so that a CRC stored inside checksummed data does not checksum to a fixed point.
The C extension is about 3,000x faster (10 MB: about 0.6 ms against 1.6 s).
"""

from __future__ import annotations

from collections.abc import Callable

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


def python_crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of data in pure Python; pass a previous result as crc to continue."""
    table = _TABLE
    crc ^= _U32
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _U32


def _c_extension() -> Callable[[bytes, int], int] | None:
    try:
        import google_crc32c
    except ImportError:
        return None
    if google_crc32c.implementation != "c":  # its own fallback is slower than ours
        return None
    extend = google_crc32c.extend

    def c_crc32c(data: bytes, crc: int = 0) -> int:
        return int(extend(crc, data))

    return c_crc32c


IMPLEMENTATION = "python"
_c_crc32c = _c_extension()
if _c_crc32c is not None:
    IMPLEMENTATION = "c"


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C of data; pass a previous result as crc to continue a running checksum."""
    if _c_crc32c is not None:
        return _c_crc32c(bytes(data), crc)
    return python_crc32c(data, crc)


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
