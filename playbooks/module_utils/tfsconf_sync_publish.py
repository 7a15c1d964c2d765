"""tfsconf_model_sync's publishing: check an already published version against the
source, or assemble the version in a staging directory, verify every file, write its
manifest and rename it into place; the per-model batching file is kept in step."""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import posixpath
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tfsconf_sync_copy import ParallelCopy
from ansible.module_utils.tfsconf_sync_files import (
    BATCHING_REL,
    CHUNK,
    DIR_MODE,
    DISK_FULL,
    FILE_MODE,
    MANIFEST_NAME,
    SAVED_MODEL_FILES,
    STAGING_PREFIX,
    TMP_PREFIX,
    WARMUP_REL,
    Cancelled,
    DiskFull,
    Entry,
    RangeHasher,
    SyncError,
    Throttle,
    TransferError,
    canonical,
    describe_error,
    disk_full_error,
    fsync_dir,
    hash_file,
    is_permanent,
    parse_manifest,
    render_manifest,
    tree_of,
    walk_files,
    write_atomic,
)
from ansible.module_utils.tfsconf_sync_sources import Source, make_source


class Syncer(ParallelCopy):
    def __init__(self, module: AnsibleModule) -> None:
        params = module.params
        self.module = module
        self.base = os.path.abspath(params["base_path"])
        self.version = params["version"]
        self.version_dir = os.path.join(self.base, str(self.version))
        self.staging = os.path.join(self.base, f"{STAGING_PREFIX}{self.version}")
        self.retries = max(0, params["retries"])
        self.retry_delay = max(0.0, params["retry_delay"])
        self.throttle = Throttle(params["bwlimit"])
        # smaller chunks under a low limit keep the flow even instead of 1 MiB bursts
        rate = params["bwlimit"]
        self.chunk = CHUNK if rate <= 0 else max(64 * 1024, min(CHUNK, rate // 8))
        self.source = (
            make_source(params["source"], self.version, params["timeout"], params.get("auth"))
            if params["source"] is not None
            else None
        )
        self.warmup_file = params["warmup_file"]
        batching = params["batching_params"]
        self.batching = None if batching is None else batching.encode()
        self.files_copied = 0
        self.files_skipped = 0
        self.bytes_copied = 0
        self.init_copy(rate)

    @property
    def src(self) -> Source:
        """The source (every step but only_batching has one)."""
        if self.source is None:
            raise SyncError("source is required unless only_batching is set")
        return self.source

    # what the version must hold ------------------------------------------------------

    def expected_entries(self) -> list[Entry]:
        entries = {e.rel: e for e in self.src.entries()}
        if not any(name in entries for name in SAVED_MODEL_FILES):
            # published, it would only fail to load at the health gate
            raise SyncError(
                f"{self.src.where(SAVED_MODEL_FILES[0])}: No such file in the source's "
                f"listing of version {self.version}, nor {SAVED_MODEL_FILES[1]}: not a "
                "SavedModel, TF Serving cannot load it; not published"
            )
        if BATCHING_REL in entries:
            raise SyncError(
                f"{self.src.where(BATCHING_REL)}: the source ships {BATCHING_REL}, which "
                "tfsconf writes from the spec (models[].batching with the server's "
                "batching.per_model): remove it from the source and describe it in the spec"
            )
        if self.batching is not None:
            entries[BATCHING_REL] = Entry(
                BATCHING_REL,
                size=len(self.batching),
                sha256=hashlib.sha256(self.batching).hexdigest(),
                data=self.batching,
            )
        if self.warmup_file:
            try:
                size = os.stat(self.warmup_file).st_size
                sha = hash_file(self.warmup_file)["sha256"]
            except OSError as exc:
                raise SyncError(f"{self.warmup_file}: warmup file: {describe_error(exc)}") from exc
            entries[WARMUP_REL] = Entry(WARMUP_REL, size=size, sha256=sha, warmup=True)
        return [entries[rel] for rel in sorted(entries)]

    def source_sha256(self, entry: Entry) -> str:
        """The sha256 of a local source file that has no manifest (read it once)."""
        if entry.sha256 is None:
            try:
                entry.sha256 = hash_file(self.src.where(entry.rel))["sha256"]
                entry.size = os.stat(self.src.where(entry.rel)).st_size
            except OSError as exc:
                raise SyncError(f"{self.src.where(entry.rel)}: {describe_error(exc)}") from exc
        return entry.sha256

    # step 1: an already published version ----------------------------------------------

    def published_problems(self, entries: list[Entry]) -> tuple[list[str], str]:
        """Why the published version differs from the source (empty when it matches)."""
        where = os.path.join(self.version_dir, MANIFEST_NAME)
        try:
            with open(where, "rb") as handle:
                have = parse_manifest(handle.read(), where)
        except OSError as exc:
            return [f"{MANIFEST_NAME}: cannot read: {describe_error(exc)}"], ""
        except SyncError as exc:
            return [str(exc)], ""
        problems = []
        want = {e.rel: e for e in entries if e.rel != BATCHING_REL}
        for rel in sorted((want.keys() | have.keys()) - {BATCHING_REL}):
            entry, listed = want.get(rel), have.get(rel)
            if listed is None:
                problems.append(f"{rel}: in the source, not in the published version")
            elif entry is None:
                problems.append(f"{rel}: in the published version, not in the source")
            elif entry.md5 is not None:
                # MD5SUMS carries no sha256: only the published content can answer
                path = os.path.join(self.version_dir, rel)
                try:
                    same = hash_file(path, ("md5",))["md5"] == entry.md5
                except OSError as exc:
                    problems.append(f"{rel}: cannot read: {describe_error(exc)}")
                    continue
                if not same:
                    problems.append(f"{rel}: content differs from {self.src.where('MD5SUMS')}")
            else:
                sha = entry.sha256 if entry.sha256 is not None else self.source_sha256(entry)
                if entry.size is not None and entry.size != listed[1]:
                    problems.append(f"{rel}: {listed[1]} bytes published, source has {entry.size}")
                elif sha != listed[0]:
                    problems.append(f"{rel}: content (sha256) differs from the source")
        on_disk = walk_files(self.version_dir)
        for rel in sorted((on_disk.keys() | have.keys()) - {BATCHING_REL}):
            if rel not in have:
                problems.append(f"{rel}: on disk, not in the published manifest")
            elif rel not in on_disk:
                problems.append(f"{rel}: in the published manifest, missing on disk")
            elif on_disk[rel] != have[rel][1]:
                problems.append(
                    f"{rel}: {on_disk[rel]} bytes on disk, the manifest says {have[rel][1]}"
                )
        listing = {rel: {"sha256": sha, "size": size} for rel, (sha, size) in have.items()}
        return problems, hashlib.sha256(canonical(listing)).hexdigest()

    def place_batching(self, check_mode: bool) -> tuple[bool, str]:
        """Make the published version's batching_params.pbtxt (and its manifest entry) match
        self.batching; returns (changed, tree_sha256). The file is replaced by renaming a
        complete temporary file over it, so a load reads the old or the new file whole."""
        where = os.path.join(self.version_dir, MANIFEST_NAME)
        try:
            with open(where, "rb") as handle:
                have = parse_manifest(handle.read(), where)
        except OSError as exc:
            raise SyncError(f"{where}: cannot read: {describe_error(exc)}") from exc
        path = os.path.join(self.version_dir, BATCHING_REL)
        try:
            with open(path, "rb") as handle:
                on_disk: bytes | None = handle.read()
        except FileNotFoundError:
            on_disk = None
        want = self.batching
        listed = None if want is None else (hashlib.sha256(want).hexdigest(), len(want))
        if on_disk == want and have.get(BATCHING_REL) == listed:
            return False, tree_of(have)
        if listed is None:
            have.pop(BATCHING_REL, None)
        else:
            have[BATCHING_REL] = listed
        if check_mode:
            return True, tree_of(have)
        if want is None:
            if on_disk is not None:
                os.unlink(path)
        elif on_disk != want:
            write_atomic(path, want)
        write_atomic(where, render_manifest(have))
        fsync_dir(self.version_dir)
        return True, tree_of(have)

    # step 2-5: staging ---------------------------------------------------------------

    def clean_staging(self, entries: list[Entry]) -> None:
        """Drop what an earlier run left that is not part of this version (temp files too)."""
        wanted = {e.rel for e in entries}
        wanted_dirs = set()
        for rel in wanted:
            parent = posixpath.dirname(rel)
            while parent:
                wanted_dirs.add(parent)
                parent = posixpath.dirname(parent)
        for dirpath, dirnames, filenames in os.walk(self.staging, topdown=False):
            for name in filenames + dirnames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, self.staging).replace(os.sep, "/")
                if os.path.islink(path) or not os.path.isdir(path):
                    if rel not in wanted or os.path.islink(path) or not os.path.isfile(path):
                        os.unlink(path)
                elif rel not in wanted_dirs:
                    shutil.rmtree(path)

    def staged_sha256(self, entry: Entry) -> str | None:
        """The sha256 of the staged copy when it is already right, else None."""
        path = os.path.join(self.staging, entry.rel)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        if entry.size is not None and info.st_size != entry.size:
            return None
        if entry.md5 is not None:
            digests = hash_file(path, ("sha256", "md5"))
            return digests["sha256"] if digests["md5"] == entry.md5 else None
        want = entry.sha256 if entry.sha256 is not None else self.source_sha256(entry)
        if entry.size is not None and info.st_size != entry.size:
            return None  # known only now for a local source without a manifest
        have = hash_file(path)["sha256"]
        return have if have == want else None

    def open_entry(self, entry: Entry) -> io.BufferedIOBase:
        if entry.data is not None:
            return io.BytesIO(entry.data)
        if entry.warmup:
            return open(self.warmup_file, "rb")
        return self.src.open(entry.rel)

    def where(self, entry: Entry) -> str:
        if entry.data is not None:
            return f"{entry.rel} (from the spec)"
        return self.warmup_file if entry.warmup else self.src.where(entry.rel)

    def fetch(self, entry: Entry) -> tuple[str, int]:
        """Copy one file into staging via a temp name, verify it, rename it; retry."""
        final = os.path.join(self.staging, entry.rel)
        folder = os.path.dirname(final)
        os.makedirs(folder, DIR_MODE, exist_ok=True)
        attempts = self.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt and self.cancelled.wait(self.retry_delay):
                raise Cancelled
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
            try:
                sha, size = self.copy_into(entry, fd)
                os.replace(tmp, final)
                return sha, size
            except (OSError, http.client.HTTPException, TransferError) as exc:
                if isinstance(exc, OSError) and exc.errno in DISK_FULL:
                    raise DiskFull(entry.rel, exc) from exc
                problem = describe_error(exc)
                if is_permanent(exc):
                    attempts = attempt + 1
                    break
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        raise SyncError(
            f"{self.where(entry)}: {problem} (gave up after {attempts} attempt"
            f"{'s' if attempts > 1 else ''})"
        )

    def copy_into(self, entry: Entry, fd: int) -> tuple[str, int]:
        """Fill the temporary file fd (closed here), fsync it and check it against what the
        source vouches for; (sha256, size) of the bytes written."""
        # a local source without a manifest: the staged copy is read back (in a thread,
        # while it is written) and must hash as the bytes copied did
        read_back = RangeHasher(fd) if entry.sha256 is None and entry.md5 is None else None
        try:
            os.fchmod(fd, FILE_MODE)
            with self.open_entry(entry) as stream:
                digest, size, md5 = self.copy_stream(entry, stream, fd, read_back)
            read_back_sha = read_back.digest()[0] if read_back is not None else None
        finally:
            if read_back is not None:
                read_back.stop()
            os.close(fd)
        if entry.size is not None and size != entry.size:
            raise TransferError(f"got {size} bytes, expected {entry.size}")
        if md5 is not None and md5 != entry.md5:
            raise TransferError(f"md5 {md5} does not match MD5SUMS ({entry.md5})")
        if entry.sha256 is not None and digest != entry.sha256:
            raise TransferError(f"sha256 {digest} does not match the manifest ({entry.sha256})")
        if read_back_sha is not None and read_back_sha != digest:
            raise TransferError(f"the copy reads back as sha256 {read_back_sha}, copied {digest}")
        return digest, size

    def stage_file(self, entry: Entry) -> tuple[str, int, bool]:
        """One file staged and verified: (sha256, size, whether it was copied)."""
        sha = self.staged_sha256(entry)
        if sha is not None:
            return sha, os.stat(os.path.join(self.staging, entry.rel)).st_size, False
        return (*self.fetch(entry), True)

    def sync(self, entries: list[Entry]) -> str:
        """Stage, verify and publish the version; returns its tree_sha256."""
        try:
            digests = self.stage(entries)
        except DiskFull as full:
            raise self.no_space(full.error, full.rel) from full.error
        except OSError as exc:
            if exc.errno not in DISK_FULL:
                raise
            raise self.no_space(exc, None) from exc
        if os.path.lexists(self.version_dir):
            raise SyncError(f"{self.version_dir} appeared while syncing; left it alone")
        os.rename(self.staging, self.version_dir)
        fsync_dir(self.base)
        return hashlib.sha256(
            canonical({r: {"sha256": s, "size": n} for r, (s, n) in digests.items()})
        ).hexdigest()

    def no_space(self, error: OSError, rel: str | None) -> SyncError:
        """A full disk: the staged files are given back (the host's server and logs need
        the space more than a resume needs them); see disk_full_error."""
        shutil.rmtree(self.staging, ignore_errors=True)
        return disk_full_error(error, rel, self.base, self.staging, self.version)

    def stage(self, entries: list[Entry]) -> dict[str, tuple[str, int]]:
        """Every file of the version verified in the staging directory, with its manifest;
        rel -> (sha256, size)."""
        created_base = not os.path.isdir(self.base)
        os.makedirs(self.base, DIR_MODE, exist_ok=True)
        if created_base:
            os.chmod(self.base, DIR_MODE)
            fsync_dir(os.path.dirname(self.base))
        os.makedirs(self.staging, DIR_MODE, exist_ok=True)
        self.clean_staging(entries)
        digests: dict[str, tuple[str, int]] = {}
        for entry, (sha, size, copied) in zip(entries, self.stage_files(entries, self.stage_file)):
            digests[entry.rel] = (sha, size)
            if copied:
                self.files_copied += 1
                self.bytes_copied += size
            else:
                self.files_skipped += 1
        content = render_manifest(digests)
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.staging)
        try:
            os.fchmod(fd, FILE_MODE)
            with open(fd, "wb", closefd=True) as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, os.path.join(self.staging, MANIFEST_NAME))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        for dirpath, _dirnames, _filenames in os.walk(self.staging, topdown=False):
            fsync_dir(dirpath)
        return digests
