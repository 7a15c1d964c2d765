"""tfsconf_model_sync's copy of a file, in-process (milliseconds): the digest checked is
that of the bytes written, not of the source read again, and without a manifest the
staged copy must read back as it was copied. The bandwidth limit's hook, called once per
chunk written, stands for another process writing at that moment."""

from __future__ import annotations

import importlib
import types
from pathlib import Path
from typing import Any

import pytest

from tests.apply_sync.harness import make_version, with_manifest

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
DATA_REL = "variables/variables.data-00000-of-00001"


def module_utils(name: str) -> Any:
    """playbooks/module_utils/<name> as Ansible imports it (ansible.module_utils.<name>)."""
    import ansible.module_utils

    if str(PLAYBOOKS / "module_utils") not in ansible.module_utils.__path__:
        ansible.module_utils.__path__.append(str(PLAYBOOKS / "module_utils"))
    return importlib.import_module(f"ansible.module_utils.{name}")


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


def test_the_digest_is_of_the_bytes_written_not_of_the_source_read_again(tmp_path: Path) -> None:
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


def test_a_staged_copy_that_reads_back_otherwise_is_refused(tmp_path: Path) -> None:
    """No manifest: the source's bytes as copied are the reference. A chunk of the staged
    copy changed just after it was written (a disk or another writer) is caught by the
    read-back, and nothing is published."""
    files = module_utils("tfsconf_sync_files")
    make_version(tmp_path / "source" / "1", 1, data_size=4 * 65536)
    base = tmp_path / "host"

    class SpoilTheStagedChunk(files.Throttle):
        def consume(self, n: int) -> None:
            if n == 65536 and not self.sent:
                (staged,) = (base / ".tfsconf-staging-1" / "variables").glob(".tfsconf-tmp-*")
                with staged.open("r+b") as handle:
                    handle.write(b"\0")
                self.sent = n

    sync = syncer(base, tmp_path / "source", SpoilTheStagedChunk(0))
    sync.chunk, sync.workers = 65536, 1
    with pytest.raises(files.SyncError) as refused:
        sync.sync(sync.expected_entries())
    assert str(tmp_path / "source" / "1" / DATA_REL) in str(refused.value)
    assert "the copy reads back as sha256 " in str(refused.value)
    assert not (base / "1").exists()
