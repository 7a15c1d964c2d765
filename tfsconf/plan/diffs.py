"""Unified diffs of artifacts for a plan, each distinct text stored once by id."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from tfsconf.plan.model import FileDiff, text_id


@dataclass
class Diffs:
    """Unified diffs, computed once per distinct (old, new) pair and stored by id."""

    texts: dict[str, str] = field(default_factory=dict)
    _ids: dict[tuple[bytes | None, bytes | None], str] = field(default_factory=dict)

    def file(self, path: str, old: bytes | None, new: bytes | None) -> FileDiff:
        status = "added" if old is None else "removed" if new is None else "changed"
        key = (old, new)
        found = self._ids.get(key)
        if found is None:
            text = unified(path, old, new)
            found = text_id(text)
            self.texts[found] = text
            self._ids[key] = found
        return FileDiff(path, status, found)  # type: ignore[arg-type]


_CONTEXT = 3
_HUNK = re.compile(r"^@@ -(\d+)((?:,\d+)?) \+(\d+)((?:,\d+)?) @@$")


def unified(path: str, old: bytes | None, new: bytes | None) -> str:
    try:
        before = old.decode("utf-8").splitlines(keepends=True) if old is not None else []
        after = new.decode("utf-8").splitlines(keepends=True) if new is not None else []
    except UnicodeDecodeError:
        return "Binary files differ\n"
    # Lines both sides share at the ends, beyond the context, are cut before difflib runs
    # (its matcher is quadratic-ish and most of a changed file is unchanged), then the hunk
    # headers are shifted back: the text is the diff of the whole files.
    shortest = min(len(before), len(after))
    head = 0
    while head < shortest and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < shortest - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    start = max(0, head - _CONTEXT)
    cut_tail = max(0, tail - _CONTEXT)
    lines = difflib.unified_diff(
        before[start : len(before) - cut_tail],
        after[start : len(after) - cut_tail],
        # the path is left out of the headers: one text serves every host with this change
        "/dev/null" if old is None else "old",
        "/dev/null" if new is None else "new",
        n=_CONTEXT,
    )
    out: list[str] = []
    for raw in lines:
        line = _shift_hunk(raw, start) if start and raw.startswith("@@") else raw
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _shift_hunk(line: str, offset: int) -> str:
    match = _HUNK.match(line.rstrip("\n"))
    if match is None:
        return line
    old_start, old_len, new_start, new_len = match.groups()
    return f"@@ -{int(old_start) + offset}{old_len} +{int(new_start) + offset}{new_len} @@\n"
