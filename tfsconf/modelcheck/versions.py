"""A model base path as TF Serving's file-system source sees it.

TF Serving loads every child whose name parses as an integer (`1` and `001` are the same
version), ignores other names, and loads a numeric directory even while it is still being
copied. So the scan separates version directories, duplicates, and names that look like
the remains of an interrupted copy or publish (`.incoming-43`, `43.partial`, `43.tmp`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# The remains of an interrupted copy or publish: a version number with a staging or temp
# marker (`43.partial`, `.43.tmp`), or a staging name with a version number
# (`.incoming-43`, `tmp_43`). Anything else (`.DS_Store`, `README-v2.md`) is ignored, as
# TF Serving ignores it.
_MARKERS = r"(partial|part|tmp|temp|incoming|staging|new|old|bak|copy|sync)"
_LEFTOVER = re.compile(
    rf"^\.?\d+([._-]{_MARKERS}\w*)+$|^\.?{_MARKERS}[._-]?\d+([._-]\w+)*$", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class BaseScan:
    """What a base path holds, sorted by version then name."""

    versions: dict[int, list[str]]
    leftovers: list[str]
    numeric_files: list[str]
    ignored: list[str]


def is_version_name(name: str) -> bool:
    """TF Serving's test: the whole name is a non-negative decimal integer."""
    return name.isascii() and name.isdigit()


def scan_base_path(base_path: Path) -> BaseScan:
    """Classify the children of base_path (which must be a readable directory)."""
    versions: dict[int, list[str]] = {}
    leftovers: list[str] = []
    numeric_files: list[str] = []
    ignored: list[str] = []
    for child in sorted(base_path.iterdir(), key=lambda p: p.name):
        name = child.name
        if is_version_name(name):
            if child.is_dir():
                versions.setdefault(int(name), []).append(name)
            else:
                numeric_files.append(name)
        elif _LEFTOVER.match(name):
            leftovers.append(name)
        else:
            ignored.append(name)
    return BaseScan(
        versions=dict(sorted(versions.items())),
        leftovers=leftovers,
        numeric_files=numeric_files,
        ignored=ignored,
    )
