"""The plan's unified diffs: cut to the changed region for speed, yet the diff of the whole
files. Checked by applying each diff back to the old text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from tfsconf.plan.diffs import unified as _unified

HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$")


def apply(old: list[str], diff: str) -> list[str]:
    """Apply a unified diff (as _unified writes it) to `old`, checking every context and
    removed line against the old text and every hunk header against its body."""
    lines = diff.splitlines(keepends=True)
    assert lines[0].startswith("--- ") and lines[1].startswith("+++ ")
    out: list[str] = []
    position = 0  # next old line (0-based) not yet copied
    index = 2
    while index < len(lines):
        match = HUNK.match(lines[index].rstrip("\n"))
        assert match, lines[index]
        old_start, old_len = int(match[1]), int(match[2] or 1)
        new_len = int(match[4] or 1)
        first = old_start - 1 if old_len else old_start
        assert first >= position
        out.extend(old[position:first])
        position = first
        index += 1
        seen_old = seen_new = 0
        while index < len(lines) and not lines[index].startswith("@@"):
            line = lines[index]
            body = line[1:]
            if index + 1 < len(lines) and lines[index + 1].startswith("\\"):
                body = body.removesuffix("\n")
                index += 1
            if line[0] in " -":
                assert old[position] == body, (position, body)
                position += 1
                seen_old += 1
            if line[0] in " +":
                out.append(body)
                seen_new += 1
            index += 1
        assert (seen_old, seen_new) == (old_len, new_len)
    out.extend(old[position:])
    return out


LINES = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "]\n", "}\n", "  x\n"]), max_size=40)


ENDS = st.sampled_from(["", "z", "]"])  # a last line without a newline, or none


@settings(max_examples=400, deadline=None)
@given(LINES, LINES, LINES, LINES, ENDS, ENDS)
def test_a_diff_applied_to_the_old_text_gives_the_new(
    head: list[str],
    old_mid: list[str],
    new_mid: list[str],
    tail: list[str],
    old_end: str,
    new_end: str,
) -> None:
    old = head + old_mid + tail + ([old_end] if old_end else [])
    new = head + new_mid + tail + ([new_end] if new_end else [])
    diff = _unified("f", "".join(old).encode(), "".join(new).encode())
    if old == new:
        assert diff == ""
        return
    assert apply(old, diff) == new


def test_line_numbers_count_from_the_start_of_the_whole_file() -> None:
    old = [f"line {i}\n" for i in range(100)]
    new = list(old)
    new[60] = "changed\n"
    diff = _unified("f", "".join(old).encode(), "".join(new).encode())
    assert "@@ -58,7 +58,7 @@\n" in diff
    assert apply(old, diff) == new


def test_added_and_removed_files() -> None:
    assert _unified("f", None, b"x\n").startswith("--- /dev/null\n+++ new\n@@ -0,0 +1 @@\n+x\n")
    assert _unified("f", b"x\n", None).startswith("--- old\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n")
    assert _unified("f", b"\xff", b"x") == "Binary files differ\n"


def test_a_new_file_and_an_emptied_one_do_not_share_a_diff() -> None:
    from tfsconf.plan.diffs import Diffs as _Diffs

    diffs = _Diffs()
    added = diffs.file("a", None, b"x\n")
    grown = diffs.file("b", b"", b"x\n")
    assert added.diff != grown.diff
    assert diffs.texts[added.diff].startswith("--- /dev/null\n")
    assert diffs.texts[grown.diff].startswith("--- old\n")
