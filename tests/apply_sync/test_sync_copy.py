"""tfsconf_model_sync's copy of a local file, in-process (milliseconds): the way down from
copy_file_range when the kernel refuses it, and the digest being that of the staged copy,
not of the source the copy read."""

from __future__ import annotations

import hashlib
import importlib
import os
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.apply_sync.harness import make_version, with_manifest

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SHM = Path("/dev/shm")
DATA_REL = "variables/variables.data-00000-of-00001"


def module_utils(name: str) -> Any:
    """playbooks/module_utils/<name> as Ansible imports it (ansible.module_utils.<name>)."""
    import ansible.module_utils

    if str(PLAYBOOKS / "module_utils") not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(PLAYBOOKS / "module_utils"))
    return importlib.import_module(f"ansible.module_utils.{name}")


@pytest.fixture
def shm_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on tmpfs (/dev/shm), another filesystem than tmp_path's."""
    if os.stat(SHM).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("/dev/shm and the pytest tmp_path must be two filesystems")
    where = SHM / f"tfsconf-sync-copy-{os.getpid()}-{tmp_path.name}"
    where.mkdir()
    try:
        yield where
    finally:
        for path in sorted(where.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        where.rmdir()


def test_copy_across_filesystems_falls_back_from_copy_file_range(
    shm_dir: Path, tmp_path: Path
) -> None:
    """copy_file_range between two filesystems of different types is EXDEV (Linux 5.19 on,
    and before 5.3): the copy goes on by sendfile, from the offset reached."""
    files = module_utils("tfsconf_sync_files")
    data = os.urandom(3 * 65536 + 123)
    (shm_dir / "src").write_bytes(data)
    src_fd = os.open(shm_dir / "src", os.O_RDONLY)
    dst_fd = os.open(tmp_path / "dst", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        copier = files.KernelCopy(src_fd, dst_fd, 65536)
        sizes = []
        while n := copier.step(sum(sizes)):
            sizes.append(n)
        assert copier.way == "sendfile"
        assert sizes == [65536, 65536, 65536, 123]
        hasher = files.RangeHasher(dst_fd)
        hasher.add(0, len(data))
        assert hasher.digest() == (hashlib.sha256(data).hexdigest(), len(data))
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert (tmp_path / "dst").read_bytes() == data
    # within one filesystem the kernel copies
    src_fd = os.open(shm_dir / "src", os.O_RDONLY)
    dst_fd = os.open(shm_dir / "dst", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        copier = files.KernelCopy(src_fd, dst_fd, 1 << 20)
        assert (copier.step(0), copier.step(len(data)), copier.way) == (
            len(data),
            0,
            "copy_file_range",
        )
    finally:
        os.close(src_fd)
        os.close(dst_fd)
    assert (shm_dir / "dst").read_bytes() == data


def syncer(base: Path, source: Path, throttle: Any = None, **params: Any) -> Any:
    publish = module_utils("tfsconf_sync_publish")
    args = {
        "base_path": str(base),
        "version": 1,
        "source": {"kind": "local", "location": str(source), "checksums": "sha256"},
        "retries": 0,
        "retry_delay": 0.0,
        "bwlimit": 0,
        "timeout": 5.0,
        "warmup_file": None,
        "batching_params": None,
    }
    args.update(params)
    made = publish.Syncer(types.SimpleNamespace(params=args))
    if throttle is not None:
        made.throttle = throttle
    return made


def test_the_digest_is_of_the_staged_copy_not_of_the_source(tmp_path: Path) -> None:
    """Each 64 KiB chunk of the source's data file is wrong while it is copied and put
    right just after (a writer fixing the source mid-copy): the source ends matching its
    manifest, the staged copy does not, and the copy is refused. Then it publishes."""
    files = module_utils("tfsconf_sync_files")
    chunk, chunks = 65536, 16
    version = with_manifest(make_version(tmp_path / "source" / "1", 1, data_size=chunks * chunk))
    data_path = version / DATA_REL
    good = data_path.read_bytes()
    bad = bytearray(good)
    for offset in range(0, len(bad), chunk):
        bad[offset] ^= 0xFF
    data_path.write_bytes(bad)

    class FixSourceBehindTheCopy(files.Throttle):
        """The bandwidth hook runs once per chunk copied: the data file's chunks are the
        whole ones; restore the one just copied."""

        def consume(self, n: int) -> None:
            if n == chunk:
                with data_path.open("r+b") as handle:
                    handle.seek(self.sent)
                    handle.write(good[self.sent : self.sent + 1])
                self.sent += n

    base = tmp_path / "host"
    sync = syncer(base, tmp_path / "source", FixSourceBehindTheCopy(0))
    sync.chunk, sync.workers = chunk, 1
    entries = sync.expected_entries()
    with pytest.raises(files.SyncError) as refused:
        sync.sync(entries)
    assert str(data_path) in str(refused.value)
    assert "does not match the manifest" in str(refused.value)
    assert data_path.read_bytes() == good
    assert not (base / "1").exists()
    # the source is right now: published
    syncer(base, tmp_path / "source").sync(entries)
    assert (base / "1" / DATA_REL).read_bytes() == good
