"""Writing a bundle all-or-nothing, and checking a directory against one.

The bundle is written into a temporary directory beside the output and swapped in with
renames, so a reader sees either the old build or the new one, never a mix; a failure
leaves the old build untouched.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfsconf.compile.bundle import GENERATOR, MANIFEST, Bundle
from tfsconf.errors import UserError


@dataclass(frozen=True, slots=True)
class Staleness:
    missing: tuple[str, ...]
    changed: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def stale(self) -> bool:
        return bool(self.missing or self.changed or self.extra)


def is_build(directory: Path) -> bool:
    """Whether `directory` holds a tfsconf build: its manifest names tfsconf as generator."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == GENERATOR


def _guard(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"{out}: exists and is not a directory")
    if out.is_dir():
        if out.resolve() == Path.cwd().resolve() or os.path.ismount(out):
            raise UserError(
                f"{out}: the current directory or a mount point cannot be replaced",
                hint="compile into a subdirectory, e.g. --out build/<env>",
            )
        if any(out.iterdir()) and not is_build(out):
            raise UserError(
                f"{out}: not empty and not a tfsconf build; refusing to replace it",
                hint="choose an empty or new --out directory",
            )


def _write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    made: set[str] = set()
    for rel in sorted(files):
        parent = os.path.dirname(rel)
        if parent and parent not in made:
            os.makedirs(os.path.join(root, parent), exist_ok=True)
            made.add(parent)
        fd = os.open(os.path.join(root, rel), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, files[rel])
        finally:
            os.close(fd)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE), so a reader
    never finds the output missing; False where the kernel or filesystem cannot."""
    function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if function is None:
        return False
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    at_fdcwd, rename_exchange = -100, 2
    if function(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(error, os.strerror(error), str(second))


def write_bundle(bundle: Bundle, out: Path) -> None:
    """Replace `out` with the bundle as a whole; on any failure the old build stays."""
    _guard(out)
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=parent))
    except OSError as exc:
        raise UserError(f"{out}: cannot create the build: {exc.strerror}") from None
    try:
        _write_tree(staging, bundle.files)
        os.chmod(staging, 0o755)  # noqa: S103 - a build is world-readable, like a checkout
        if not out.exists():
            os.rename(staging, out)
        elif not _exchange(staging, out):
            _swap_by_renames(staging, out, parent)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the build: {exc.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # after an exchange: the old build


def _swap_by_renames(staging: Path, out: Path, parent: Path) -> None:
    """Fallback without RENAME_EXCHANGE: a short window where `out` does not exist."""
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
    try:
        os.rename(out, old / "build")
        try:
            os.rename(staging, out)
        except OSError:
            os.rename(old / "build", out)  # put the previous build back
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def check_bundle(bundle: Bundle, out: Path) -> Staleness:
    """Compare `out` with the bundle byte for byte, without writing anything."""
    on_disk: set[str] = set()
    if out.is_dir():
        for dirpath, _dirs, names in os.walk(out):
            for name in names:
                on_disk.add(os.path.relpath(os.path.join(dirpath, name), out))
    missing, changed = [], []
    for rel, data in sorted(bundle.files.items()):
        if rel not in on_disk:
            missing.append(rel)
            continue
        with open(os.path.join(out, rel), "rb") as handle:
            if handle.read() != data:
                changed.append(rel)
    extra = sorted(on_disk - set(bundle.files))
    return Staleness(tuple(missing), tuple(changed), tuple(extra))
