"""The tar extraction plan --base uses: refuses anything that would land outside its target,
on every Python 3.11 (the data filter is 3.11.4+), and keeps links that stay inside."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from tfsconf.plan.safetar import UnsafeMember, extract_all


def _archive(*members: tuple[str, str, str]) -> tarfile.TarFile:
    """(kind, name, data or link target) -> an in-memory tar, in that order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                info.mode = 0o6755  # set-id bits must not survive
                tar.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "hard": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[kind]
            info.linkname = value
            tar.addfile(info)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


def test_plain_tree_with_links_inside(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    tar = _archive(
        ("dir", "env", ""),
        ("file", "env/spec.yaml", "a: 1\n"),
        ("file", "env/run.sh", "true\n"),
        ("sym", "env/alias.yaml", "spec.yaml"),
        ("hard", "env/copy.yaml", "env/spec.yaml"),
    )
    extract_all(tar, target)
    assert (target / "env" / "alias.yaml").read_text() == "a: 1\n"
    assert (target / "env" / "copy.yaml").read_text() == "a: 1\n"
    assert (target / "env" / "alias.yaml").is_symlink()
    assert (target / "env" / "run.sh").stat().st_mode & 0o7777 == 0o755


@pytest.mark.parametrize(
    ("members", "says"),
    [
        ([("file", "../escape", "x")], "outside the extraction directory"),
        ([("file", "/etc/escape", "x")], "absolute path"),
        ([("sym", "link", "/etc/hostname")], "leads outside"),
        ([("sym", "link", "../../etc")], "leads outside"),
        ([("hard", "link", "/etc/hostname")], "leads outside"),
        ([("hard", "link", "../outside")], "leads outside"),
        ([("fifo", "pipe", "")], "special file"),
        ([("chr", "null", "")], "special file"),
        # a link that stays inside, then a member written through it that does not
        ([("sym", "here", "."), ("sym", "here/up", "..")], "leads outside"),
        ([("dir", "d", ""), ("sym", "d/x", ".."), ("file", "d/x/../../escape", "x")], "outside"),
    ],
)
def test_refused(tmp_path: Path, members: list[tuple[str, str, str]], says: str) -> None:
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(UnsafeMember, match=says):
        extract_all(_archive(*members), target)
    assert not (tmp_path / "escape").exists()
    assert not (target / "up").exists()
