"""tfsconf_host's file primitives: paths under the host's root, durable atomic writes."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Dict

STATE_DIR = ".tfsconf"
Params = Dict[str, Any]
"""An action's module parameters."""


def rooted(root: str, path: str) -> str:
    return root.rstrip("/") + path if root else path


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def read_json(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return None


def existing_parent(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def size_text(n: int) -> str:
    return f"{n >> 20:d} MiB" if n >= 1 << 20 else f"{-(-n >> 10):d} KiB"
