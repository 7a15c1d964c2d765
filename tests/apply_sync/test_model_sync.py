"""tfsconf_model_sync run for real: ansible-playbook (ansible-runner) on localhost.

Each test builds SavedModel-like version trees (random bytes), writes source manifests
with tfsconf's own manifest code, runs the module through ansible-runner with a fresh
private_data_dir and checks the host tree afterwards. The module trusts a published
version's manifest: an unchanged run stats files but reads no contents (see
test_unchanged_run_trusts_the_manifest).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from tests.apply_sync.harness import (
    SyncRun,
    WebHdfsHandler,
    make_version,
    module_result,
    prepare,
    run_sync,
    serve,
    tree_bytes,
    with_manifest,
    write_md5sums,
)
from tfsconf.modelcheck.manifest import (
    MANIFEST_NAME,
    compare_manifest,
    digest_tree,
    render_manifest,
    write_manifest,
)

VERSION = 7
WARMUP_REL = "assets.extra/tf_serving_warmup_requests"
BATCHING_REL = "batching_params.pbtxt"
DATA_REL = "variables/variables.data-00000-of-00001"


class Bed:
    """One test's source tree, host base_path and numbered runner directories."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.source = tmp_path / "source"
        self.base = tmp_path / "host" / "srv" / "models" / "m"
        self.version_dir = self.base / str(VERSION)
        self.staging = self.base / f".tfsconf-staging-{VERSION}"
        self.runs = 0

    def args(self, **overrides: Any) -> dict[str, Any]:
        args: dict[str, Any] = {
            "base_path": str(self.base),
            "version": VERSION,
            "source": {"kind": "local", "location": str(self.source)},
            "retry_delay": 0.05,
        }
        args.update(overrides)
        return args

    def private_dir(self) -> Path:
        self.runs += 1
        return self.tmp / f"runner-{self.runs}"

    def sync(self, *, check: bool = False, **overrides: Any) -> SyncRun:
        return run_sync(self.private_dir(), self.args(**overrides), check=check)


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return Bed(tmp_path)


def source_version(bed: Bed, *, data_size: int = 256 * 1024, manifest: bool = True) -> Path:
    version = make_version(bed.source / str(VERSION), VERSION, data_size=data_size)
    return with_manifest(version) if manifest else version


def assert_published(bed: Bed, expected: dict[str, bytes]) -> None:
    """The version holds exactly expected plus a manifest byte-identical to tfsconf's."""
    got = tree_bytes(bed.version_dir)
    manifest = got.pop(MANIFEST_NAME)
    assert got == expected
    assert manifest == render_manifest(digest_tree(bed.version_dir))
    assert compare_manifest(bed.version_dir) == []
    assert not bed.staging.exists()


def source_files(bed: Bed) -> dict[str, bytes]:
    files = tree_bytes(bed.source / str(VERSION))
    files.pop(MANIFEST_NAME, None)
    files.pop("MD5SUMS", None)
    return files


def test_first_sync_publishes_by_rename_with_tfsconf_manifest(bed: Bed) -> None:
    source_version(bed)
    warmup = bed.tmp / "warmup.tfrecord"
    warmup.write_bytes(b"\x05warmup-records")
    run = bed.sync(warmup_file=str(warmup))
    assert not run.failed, run.result
    result = run.result
    assert result["changed"] is True
    assert result["version_dir"] == str(bed.version_dir)
    assert (result["files_copied"], result["files_skipped"]) == (4, 0)
    expected = {**source_files(bed), WARMUP_REL: warmup.read_bytes()}
    assert result["bytes_copied"] == sum(len(content) for content in expected.values())
    assert_published(bed, expected)
    manifest = json.loads((bed.version_dir / MANIFEST_NAME).read_bytes())
    assert result["tree_sha256"] == manifest["tree_sha256"]
    assert result["seconds"] >= 0
    assert sorted(p.name for p in bed.base.iterdir()) == [str(VERSION)]
    assert (bed.version_dir / DATA_REL).stat().st_mode & 0o777 == 0o644
    # the tfsconf writer and the module agree byte for byte
    written = (bed.version_dir / MANIFEST_NAME).read_bytes()
    write_manifest(bed.version_dir)
    assert (bed.version_dir / MANIFEST_NAME).read_bytes() == written


def test_unchanged_run_trusts_the_manifest(bed: Bed) -> None:
    """A second run stats the published files and reads none of them (nor the source's).

    Same-size garbage in a published file and in the source file stays unnoticed: the
    manifest written at publish time vouches for the content (the version directory is
    never written after the rename). Only the small warmup file is hashed.
    """
    source_version(bed)
    warmup = bed.tmp / "warmup.tfrecord"
    warmup.write_bytes(b"warm")
    assert not bed.sync(warmup_file=str(warmup)).failed
    published = bed.version_dir / DATA_REL
    garbage = os.urandom(published.stat().st_size)
    published.write_bytes(garbage)
    (bed.source / str(VERSION) / DATA_REL).write_bytes(os.urandom(len(garbage)))
    run = bed.sync(warmup_file=str(warmup))
    assert not run.failed, run.result
    assert run.result["changed"] is False
    assert (run.result["files_copied"], run.result["bytes_copied"]) == (0, 0)
    assert published.read_bytes() == garbage
    manifest = json.loads((bed.version_dir / MANIFEST_NAME).read_bytes())
    assert run.result["tree_sha256"] == manifest["tree_sha256"]
    # a size change is visible to stat, and a different warmup to its hash: both refuse
    warmup.write_bytes(b"WARM")
    run = bed.sync(warmup_file=str(warmup))
    assert run.failed
    assert f"{WARMUP_REL}: content (sha256) differs" in run.result["msg"]


def test_corrupted_source_fails_after_retries_without_numeric_dir(bed: Bed) -> None:
    version = source_version(bed)
    data = version / DATA_REL
    corrupt = bytearray(data.read_bytes())
    corrupt[1000] ^= 0xFF
    data.write_bytes(bytes(corrupt))
    run = bed.sync(retries=2)
    assert run.failed
    msg = run.result["msg"]
    assert str(data) in msg
    assert "does not match the manifest" in msg
    assert "after 3 attempts" in msg
    assert not bed.version_dir.exists()
    assert run.result["staging_dir"] == str(bed.staging)
    # what stays in staging are verified files only, no temp files (two files are copied
    # at once, so variables.index may have been staged while the data file failed)
    leftovers = {
        p.relative_to(bed.staging).as_posix(): p.read_bytes()
        for p in bed.staging.rglob("*")
        if p.is_file()
    }
    assert "saved_model.pb" in leftovers
    assert set(leftovers) <= {"saved_model.pb", "variables/variables.index"}
    assert all(leftovers[rel] == (version / rel).read_bytes() for rel in leftovers)


def test_resume_keeps_verified_staged_files(bed: Bed) -> None:
    version = source_version(bed)
    (bed.staging / "variables").mkdir(parents=True)
    (bed.staging / "saved_model.pb").write_bytes((version / "saved_model.pb").read_bytes())
    index = (version / "variables" / "variables.index").read_bytes()
    (bed.staging / "variables" / "variables.index").write_bytes(index)
    data = (version / DATA_REL).read_bytes()
    (bed.staging / DATA_REL).write_bytes(data[: len(data) // 2])
    (bed.staging / "variables" / ".tfsconf-tmp-abandoned").write_bytes(b"partial")
    (bed.staging / "stray-from-another-source").write_bytes(b"x")
    run = bed.sync()
    assert not run.failed, run.result
    assert (run.result["files_copied"], run.result["files_skipped"]) == (1, 2)
    assert run.result["bytes_copied"] == len(data)
    assert_published(bed, source_files(bed))


def python_pids_running_from(directory: Path) -> list[int]:
    """Pids of python processes whose command line runs a file under directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"python" in Path(argv[0].decode(errors="replace")).name.encode() and any(
            str(directory).encode() in arg for arg in argv[1:]
        ):
            pids.append(int(entry.name))
    return pids


def test_sigkill_mid_copy_never_leaves_a_numeric_dir(bed: Bed) -> None:
    source_version(bed, data_size=1024 * 1024)
    private_dir = bed.private_dir()
    kwargs = prepare(private_dir, bed.args(bwlimit=256 * 1024))
    thread, runner = ansible_runner.run_async(**kwargs)
    killed: list[int] = []
    seen_numeric = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (thread.is_alive() or not killed):
        seen_numeric = seen_numeric or bed.version_dir.exists()
        partial = list((bed.staging / "variables").glob(".tfsconf-tmp-*"))
        if not killed and partial and partial[0].stat().st_size >= 128 * 1024:
            killed = python_pids_running_from(private_dir / "remote_tmp")
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)
    thread.join(timeout=10)
    assert killed, "the module never got to the data file"
    assert not seen_numeric
    assert not bed.version_dir.exists()
    assert module_result(runner).get("failed") or runner.status != "successful"
    # the next run resumes: saved_model.pb (copied before the kill) is kept
    run = bed.sync()
    assert not run.failed, run.result
    assert (run.result["files_copied"], run.result["files_skipped"]) == (2, 1)
    assert_published(bed, source_files(bed))


@pytest.mark.parametrize("checksums", ["sha256", "md5"])
def test_http_source(bed: Bed, checksums: str) -> None:
    version = source_version(bed, manifest=checksums == "sha256")
    if checksums == "md5":
        write_md5sums(version)
    with serve(bed.source) as address:
        location = f"http://{address}/"
        run = bed.sync(source={"kind": "http", "location": location, "checksums": checksums})
        assert not run.failed, run.result
        assert run.result["files_copied"] == 3
        assert_published(bed, source_files(bed))
        again = bed.sync(source={"kind": "http", "location": location, "checksums": checksums})
    assert not again.failed, again.result
    assert again.result["changed"] is False


def test_http_md5_mismatch_and_missing_file_name_the_url(bed: Bed) -> None:
    version = source_version(bed, manifest=False)
    write_md5sums(version)
    index = "variables/variables.index"
    sums = (version / "MD5SUMS").read_text().replace(index, f"{index}.gone")
    (version / "MD5SUMS").write_text(sums)
    with serve(bed.source) as address:
        source = {"kind": "http", "location": f"http://user:secret@{address}", "checksums": "md5"}
        run = bed.sync(source=source, retries=5, retry_delay=5)
    assert run.failed
    msg = run.result["msg"]
    assert f"http://{address}/{VERSION}/variables/variables.index.gone: HTTP 404" in msg
    assert "after 1 attempt)" in msg  # a 404 is not retried
    assert "secret" not in json.dumps(run.result)
    assert not bed.version_dir.exists()


@pytest.mark.parametrize("checksums", ["sha256", "md5"])
def test_webhdfs_source(bed: Bed, checksums: str) -> None:
    """md5 is the spec's default for webhdfs sources: MD5SUMS is read through op=OPEN."""
    version = source_version(bed, manifest=checksums == "sha256")
    if checksums == "md5":
        write_md5sums(version)
    with serve(bed.tmp, WebHdfsHandler) as address:
        location = f"webhdfs://{address}/source"
        run = bed.sync(source={"kind": "webhdfs", "location": location, "checksums": checksums})
    assert not run.failed, run.result
    assert run.result["files_copied"] == 3
    assert_published(bed, source_files(bed))


def test_batching_params_staged_then_replaced_in_place(bed: Bed) -> None:
    """Mirrors servables/tensorflow/bundle_factory_util.cc GetPerModelBatchingParams, which
    reads <version>/batching_params.pbtxt when the version loads: the file is staged before
    the rename publishes the version, later replaced whole (rename) or removed in the
    published version with its manifest entry, and a source's own copy is refused."""
    source_version(bed)
    first, second = b"max_batch_size { value: 4 }\n", b"max_batch_size { value: 8 }\n"
    run = bed.sync(batching_params=first.decode())
    assert not run.failed, run.result
    assert_published(bed, {**source_files(bed), BATCHING_REL: first})
    again = bed.sync(batching_params=first.decode())
    assert again.result["changed"] is False, again.result
    replaced = bed.sync(only_batching=True, batching_params=second.decode(), source=None)
    assert replaced.result["changed"] is True, replaced.result
    assert_published(bed, {**source_files(bed), BATCHING_REL: second})
    assert replaced.result["tree_sha256"] != run.result["tree_sha256"]
    removed = bed.sync(only_batching=True, source=None)
    assert removed.result["changed"] is True, removed.result
    assert_published(bed, source_files(bed))
    (bed.source / str(VERSION) / BATCHING_REL).write_bytes(first)
    write_manifest(bed.source / str(VERSION))
    bed.version_dir.rename(bed.tmp / "moved")
    refused = bed.sync(batching_params=second.decode())
    assert refused.failed and "the source ships batching_params.pbtxt" in refused.result["msg"]
    assert not bed.version_dir.exists()


def test_local_source_without_manifest(bed: Bed) -> None:
    source_version(bed, manifest=False)
    run = bed.sync()
    assert not run.failed, run.result
    assert_published(bed, source_files(bed))
    again = bed.sync()
    assert again.result["changed"] is False


def test_bwlimit_limits_throughput(bed: Bed) -> None:
    source_version(bed, data_size=2 * 1024 * 1024)
    run = bed.sync(bwlimit=4 * 1024 * 1024)
    assert not run.failed, run.result
    assert run.result["bytes_copied"] > 2 * 1024 * 1024
    assert run.result["seconds"] >= 0.4
    assert run.result["bytes_copied"] / run.result["seconds"] <= 4.2 * 1024 * 1024


def test_check_mode_writes_nothing(bed: Bed) -> None:
    source_version(bed)
    run = bed.sync(check=True)
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert not bed.base.exists()
    assert not bed.sync().failed
    before = tree_bytes(bed.base)
    run = bed.sync(check=True)
    assert run.result["changed"] is False
    assert tree_bytes(bed.base) == before


def test_existing_version_with_other_content_fails_untouched(bed: Bed) -> None:
    source_version(bed)
    make_version(bed.version_dir, 99)
    write_manifest(bed.version_dir)
    (bed.base / f".tfsconf-staging-{VERSION}").mkdir()
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in bed.version_dir.rglob("*.*")}
    run = bed.sync()
    assert run.failed
    msg = run.result["msg"]
    assert f"{bed.version_dir} is already published with other content" in msg
    assert "saved_model.pb: 4195 bytes published, source has 4103" in msg
    assert "never modified in place or deleted" in msg
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in bed.version_dir.rglob("*.*")}
    assert after == before


def test_unsafe_names_in_a_source_manifest_are_refused(bed: Bed) -> None:
    version = source_version(bed)
    document = json.loads((version / MANIFEST_NAME).read_bytes())
    document["files"]["../../escape"] = {"sha256": hashlib.sha256(b"").hexdigest(), "size": 0}
    (version / MANIFEST_NAME).write_text(json.dumps(document))
    run = bed.sync()
    assert run.failed
    assert "unsafe or reserved file name '../../escape'" in run.result["msg"]
    assert not bed.base.exists()


def test_concurrent_reader_never_sees_partial_numeric_dir(bed: Bed) -> None:
    """While a throttled sync runs, a watcher polling like TF Serving sees no numeric dir
    until it appears complete (all files and the manifest at once)."""
    source_version(bed, data_size=512 * 1024)
    observed: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if bed.version_dir.exists():
                observed.append(len(list(bed.version_dir.rglob("*"))))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run = bed.sync(bwlimit=1024 * 1024)
    finally:
        done.set()
        watcher.join()
    assert not run.failed, run.result
    assert observed and set(observed) == {5}  # 3 files + variables/ + manifest


def test_version_without_saved_model_is_refused_before_publishing(bed: Bed) -> None:
    """A source version whose manifest lists no saved_model.pb nor
    saved_model.pbtxt would be published and then fail to load at the health gate:
    the sync refuses it, saying why, and publishes nothing."""
    version = make_version(bed.source / str(VERSION), VERSION)
    (version / "saved_model.pb").unlink()
    with_manifest(version)
    run = bed.sync()
    assert run.failed
    msg = run.result["msg"]
    assert f"{version}/saved_model.pb: No such file in the source's listing" in msg, msg
    assert "nor saved_model.pbtxt" in msg and "not published" in msg, msg
    assert not bed.version_dir.exists() and not bed.staging.exists()
    # a text SavedModel is one too
    (version / "saved_model.pbtxt").write_text("saved_model_schema_version: 1\n")
    with_manifest(version)
    run = bed.sync()
    assert not run.failed, run.result
    assert (bed.version_dir / "saved_model.pbtxt").is_file()


def test_full_disk_is_not_retried_and_gives_the_space_back(bed: Bed) -> None:
    """The base path is a 1 MiB filesystem and the version's data file 2 MiB: the write
    fails with ENOSPC, the message says so and where, no attempt is repeated, and the
    staged files are removed (a full disk starves the host's server and logs). With room
    made, the next run publishes."""
    source_version(bed, data_size=2 * 1024 * 1024)
    bed.base.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tfsconf-sync-test", str(bed.base)], check=True
    )
    try:
        run = bed.sync(retries=3)
        assert run.failed
        msg = run.result["msg"]
        # Two files are staged at once: once the data file has filled the disk, the file
        # beside it may meet ENOSPC too, and either is then the truthful one to name.
        named = [
            rel
            for rel in source_files(bed)
            if msg.startswith(
                f"{bed.base}: No space left on device (ENOSPC) while writing version "
                f"{VERSION} ({rel}); the partly staged version was removed, leaving "
            )
        ]
        assert len(named) == 1, msg
        assert "free of 1 MiB on that filesystem; nothing was published" in msg, msg
        assert "attempt" not in msg  # not retried: another attempt cannot get further
        assert sorted(p.name for p in bed.base.iterdir()) == []
        assert "staging_dir" not in run.result
        fs = os.statvfs(bed.base)
        assert fs.f_bfree == fs.f_blocks  # every staged byte given back

        subprocess.run(["mount", "-o", "remount,size=8m", str(bed.base)], check=True)
        run = bed.sync()
        assert not run.failed, run.result
        assert_published(bed, source_files(bed))
    finally:
        subprocess.run(["umount", "-l", str(bed.base)], check=False)
