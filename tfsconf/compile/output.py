"""Writing a bundle all-or-nothing, and checking a directory against one.

The bundle is written into a temporary directory beside the output and swapped in with
renames, so a reader sees either the old build or the new one, never a mix; a failure
leaves the old build untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfsconf.compile.bundle import MANIFEST, Bundle
from tfsconf.errors import UserError


@dataclass(frozen=True, slots=True)
class Staleness:
    missing: tuple[str, ...]
    changed: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def stale(self) -> bool:
        return bool(self.missing or self.changed or self.extra)


def _guard(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UserError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise UserError(
            f"{out}: not empty and not a tfsconf build (no {MANIFEST}); refusing to replace it",
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


def write_bundle(bundle: Bundle, out: Path) -> None:
    """Replace `out` with the bundle as a whole."""
    _guard(out)
    parent = out.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=parent))
    old: Path | None = None
    try:
        _write_tree(staging, bundle.files)
        os.chmod(staging, 0o755)  # noqa: S103 - a build is world-readable, like a checkout
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=parent))
            os.rename(out, old / "build")
        os.rename(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not out.exists():
            os.rename(old / "build", out)  # put the previous build back
        raise
    finally:
        if old is not None:
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
