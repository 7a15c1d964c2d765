"""Extract a tar archive (``git archive`` output) without letting it write outside its target.

``TarFile.extractall(filter="data")`` does this, but only from Python 3.11.4 on, and tfsconf
runs on every 3.11 (Debian 12 ships 3.11.2). So every member is checked here, on all
versions, against the files already extracted (a symlink extracted earlier can redirect a
later member): a name or link that resolves outside the target, an absolute name, a device,
FIFO or other special file is refused before anything of it is written. Where the data
filter exists it is applied as well, as a second, independent check.
"""

from __future__ import annotations

import copy
import os
import stat
import tarfile
from pathlib import Path

# setuid, setgid and sticky bits are dropped; group/other write is kept off as well
_MODE_MASK = 0o755


class UnsafeMember(tarfile.TarError):
    """A member that would write outside the target or is not a plain file, dir or link."""


def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _check(member: tarfile.TarInfo, root: str) -> None:
    name = member.name
    if not name or name.startswith(("/", "\\")) or os.path.isabs(name):
        raise UnsafeMember(f"{name!r}: absolute path")
    target = os.path.realpath(os.path.join(root, name))
    if not _inside(root, target):
        raise UnsafeMember(f"{name!r}: outside the extraction directory")
    if member.issym():
        pointed = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname))
        if os.path.isabs(member.linkname) or not _inside(root, pointed):
            raise UnsafeMember(f"{name!r}: symlink to {member.linkname!r} leads outside")
    elif member.islnk():
        pointed = os.path.realpath(os.path.join(root, member.linkname))
        if os.path.isabs(member.linkname) or not _inside(root, pointed):
            raise UnsafeMember(f"{name!r}: hard link to {member.linkname!r} leads outside")
    elif not (member.isfile() or member.isdir()):
        raise UnsafeMember(f"{name!r}: special file (device, FIFO or similar) refused")


def _sanitised(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A copy owned by whoever extracts, without set-id bits or foreign ownership."""
    clean = copy.copy(member)  # TarInfo.replace is 3.11.4+ as well
    clean.uid, clean.gid, clean.uname, clean.gname = os.getuid(), os.getgid(), "", ""
    if not member.issym():
        clean.mode = stat.S_IMODE(member.mode) & _MODE_MASK | (0o700 if member.isdir() else 0o600)
    return clean


def extract_all(tar: tarfile.TarFile, target: Path) -> None:
    """Extract every member of `tar` under `target` (an existing, empty directory); raise
    a tarfile.TarError naming the first member that is refused."""
    root = os.path.realpath(target)
    has_data_filter = hasattr(tarfile, "data_filter")
    for member in tar:
        _check(member, root)
        clean = _sanitised(member)
        if has_data_filter:
            tar.extract(clean, root, set_attrs=not member.issym(), filter="data")
        else:
            tar.extract(clean, root, set_attrs=not member.issym())
