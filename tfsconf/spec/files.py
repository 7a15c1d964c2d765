"""Reading the files a spec names, without trusting the names.

A spec is often written by someone other than the person who runs tfsconf (a pull request,
a generated file), so every file it makes tfsconf read must be: inside the spec's directory
tree or a root the user chose on the command line, after symbolic links are followed; a
regular file (a FIFO would block, /dev/zero or /proc/self/mem would never end); and of a
bounded size. The same reader opens the spec itself.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

# An environment spec of 10,000 hosts is under 800 KB; anything larger is a mistake or
# an attack, and the YAML of it would be composed in memory.
MAX_SPEC_BYTES = 1024 * 1024
# Warmup samples: at most 1000 records of features are replayed, a few MB at most.
MAX_SAMPLES_BYTES = 64 * 1024 * 1024


class FileRefused(Exception):
    """A referenced file that tfsconf will not read; the message says why (no path)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def confine(path: Path, root: Path) -> Path:
    """The real path of `path` (links followed), which must lie inside the real `root`."""
    real = Path(os.path.realpath(path))
    real_root = Path(os.path.realpath(root))
    if real != real_root and real_root not in real.parents:
        shown = f" ({real})" if real != path else ""
        raise FileRefused(
            f"lies outside {real_root}{shown}: files a spec names must be inside the spec's "
            "directory tree (or the directory given with --root)"
        )
    return real


def _open_regular(path: Path, limit: int) -> tuple[int, int]:
    """A read-only descriptor of a regular file of at most `limit` bytes, and its size.
    Opened without blocking (a FIFO would wait for a writer) and checked on the descriptor,
    so that the file checked is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileRefused("no such file") from None
    except IsADirectoryError:
        raise FileRefused("is a directory, not a file") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket or a FIFO without a writer
            raise FileRefused("is not a regular file") from None
        raise FileRefused(f"cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused("is not a regular file (a device, FIFO or socket)")
        if info.st_size > limit:
            raise FileRefused(f"is {info.st_size} bytes, more than the limit of {limit} bytes")
        if info.st_size == 0 and _has_content(fd):
            # /proc and /sys files say 0 bytes whatever they hold (/proc/self/mem: the
            # process's memory), so their size bounds nothing
            raise FileRefused("is a pseudo file (it reports 0 bytes but is not empty)")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def _has_content(fd: int) -> bool:
    try:
        return bool(os.pread(fd, 1, 0))
    except OSError:
        return True  # unreadable (/proc/self/mem at offset 0): not an ordinary empty file


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (re-checked while reading: a
    file can grow, and /proc files report a size of 0)."""
    fd, _ = _open_regular(path, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise FileRefused(f"is more than the limit of {limit} bytes")
            chunks.append(chunk)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def check_readable(path: Path, limit: int) -> None:
    """Refuse a file read_bounded would refuse, without reading it."""
    fd, _ = _open_regular(path, limit)
    os.close(fd)


def sha256_bounded(path: Path, limit: int) -> str:
    """SHA-256 of a regular file of at most `limit` bytes, read in chunks."""
    fd, _ = _open_regular(path, limit)
    digest = hashlib.sha256()
    total = 0
    try:
        while chunk := os.read(fd, 1 << 20):
            total += len(chunk)
            if total > limit:
                raise FileRefused(f"is more than the limit of {limit} bytes")
            digest.update(chunk)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return digest.hexdigest()
