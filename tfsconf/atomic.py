"""Writing one file so that readers see it complete or not at all (temp file + rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

# mkstemp creates 0600 files; the files tfsconf puts into model versions are read by the
# serving process, often another user, so they get the mode of a normally written file.
FILE_MODE = 0o644


def write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Write chunks to path via a temporary file in the same directory and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        Path(tmp_name).replace(path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
