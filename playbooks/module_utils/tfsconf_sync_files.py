"""tfsconf_model_sync's files: the names it reserves, its errors, what one file of a version
is (Entry), hashing, the tfsconf manifest and MD5SUMS formats, atomic writes and the
bandwidth limit. Runs on the target host (python3 >= 3.8, stdlib only)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import stat
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

MANIFEST_NAME = ".tfsconf-manifest.json"
MANIFEST_SCHEMA_VERSION = 1
WARMUP_REL = "assets.extra/tf_serving_warmup_requests"
# bundle_factory_util.cc GetPerModelBatchingParams reads this name in the version directory
BATCHING_REL = "batching_params.pbtxt"
# loader/reader.cc ReadSavedModel: a SavedModel directory holds one of these (binary first)
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
STAGING_PREFIX = ".tfsconf-staging-"
TMP_PREFIX = ".tfsconf-tmp-"
CHUNK = 1024 * 1024
FILE_MODE = 0o644
DIR_MODE = 0o755
# HTTP statuses worth retrying; other 4xx answers will not change by asking again.
RETRYABLE_HTTP = frozenset({408, 425, 429})
SOURCE_KINDS = ["local", "http", "webhdfs"]


class SyncError(Exception):
    """A failure to report through fail_json; the message names the file or URL."""


# the filesystem or the user's quota is full: another attempt cannot get further
DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(Exception):
    """Writing `rel` into the staging directory ran out of space; raised past the retries."""

    def __init__(self, rel: str, error: OSError) -> None:
        super().__init__(rel)
        self.rel = rel
        self.error = error


class TransferError(Exception):
    """One attempt at one file failed; retryable unless permanent."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Entry:
    """One file of the version: what the source vouches for (None = not known yet)."""

    __slots__ = ("data", "md5", "rel", "sha256", "size", "warmup")

    def __init__(
        self,
        rel: str,
        *,
        size: int | None = None,
        sha256: str | None = None,
        md5: str | None = None,
        warmup: bool = False,
        data: bytes | None = None,
    ) -> None:
        self.rel = rel
        self.size = size
        self.sha256 = sha256
        self.md5 = md5
        self.warmup = warmup
        self.data = data
        """Content given by tfsconf (batching_params.pbtxt), not read from the source."""


def check_relpath(rel: str, where: str) -> str:
    """Refuse listed names that could escape the version directory or clash with ours."""
    parts = rel.split("/")
    if (
        not rel
        or rel.startswith("/")
        or posixpath.normpath(rel) != rel
        or any(part in ("", ".", "..") for part in parts)
        or rel == MANIFEST_NAME
        or parts[-1].startswith(TMP_PREFIX)
        or "\x00" in rel
    ):
        raise SyncError(f"{where}: unsafe or reserved file name {rel!r}")
    return rel


def new_md5() -> hashlib._Hash:
    try:
        return hashlib.md5(usedforsecurity=False)
    except TypeError:  # Python 3.8 has no usedforsecurity
        return hashlib.md5()  # noqa: S324 (integrity check against the source's MD5SUMS)


def hash_file(path: str, names: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    hashers = {name: new_md5() if name == "md5" else hashlib.new(name) for name in names}
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with open(path, "rb") as handle:
        while True:
            n = handle.readinto(buf)
            if not n:
                break
            for hasher in hashers.values():
                hasher.update(view[:n])
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def hash_range(fd: int, hasher: hashlib._Hash, start: int, end: int, buf: bytearray) -> int:
    """Feed bytes [start, end) of fd to hasher, read with pread (an I/O error is an
    OSError, where a mapping would kill the process with SIGBUS); returns the bytes read,
    fewer than asked at end of file."""
    view = memoryview(buf)
    offset = start
    while offset < end:
        n = os.preadv(fd, [view[: min(len(buf), end - offset)]], offset)
        if not n:
            break
        hasher.update(view[:n])
        offset += n
    return offset - start


class Cancelled(Exception):
    """Another file of the version failed; this copy stopped early (nothing to report)."""


class RangeHasher:
    """sha256 of a file read back in a thread of its own while the file is written:
    `extend(end)` once its bytes [0, end) are in the file, `digest()` after the last.
    stop() gives up early; digest() and stop() both join the thread."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.hasher = hashlib.sha256()
        self.changed = threading.Condition()
        self.end = 0  # bytes in the file
        self.pos = 0  # bytes hashed
        self.closed = False  # no more extend()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, name="tfsconf-hash", daemon=True)
        self.thread.start()

    def extend(self, end: int) -> None:
        with self.changed:
            self.end = end
            self.changed.notify_all()

    def run(self) -> None:
        buf = bytearray(CHUNK)
        try:
            while True:
                with self.changed:
                    while self.pos >= self.end and not self.closed:
                        self.changed.wait()
                    if self.pos >= self.end:
                        return
                    start, stop = self.pos, min(self.end, self.pos + CHUNK)
                got = hash_range(self.fd, self.hasher, start, stop, buf)
                with self.changed:
                    self.pos += got
                if got < stop - start:
                    return  # the file is shorter than said; the caller compares sizes
        except BaseException as exc:  # raised again by digest()
            self.error = exc

    def digest(self) -> tuple[str, int]:
        """(sha256, bytes hashed) once the bytes up to the last extend() are hashed."""
        with self.changed:
            self.closed = True
            self.changed.notify_all()
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.hasher.hexdigest(), self.pos

    def stop(self) -> None:
        with self.changed:
            self.closed = True
            self.end = self.pos
            self.changed.notify_all()
        self.thread.join()


def canonical(value: object) -> bytes:
    """tfsconf's canonical JSON (tfsconf/modelcheck/manifest.py): equal trees, equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def render_manifest(files: dict[str, tuple[str, int]]) -> bytes:
    listing = {rel: {"sha256": sha, "size": size} for rel, (sha, size) in sorted(files.items())}
    document = {
        "files": listing,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "tree_sha256": hashlib.sha256(canonical(listing)).hexdigest(),
    }
    return canonical(document) + b"\n"


def parse_manifest(raw: bytes, where: str) -> dict[str, tuple[str, int]]:
    """rel -> (sha256, size) of a tfsconf manifest."""
    try:
        document = json.loads(raw)
        if document.get("schema_version") != MANIFEST_SCHEMA_VERSION:
            raise SyncError(
                f"{where}: manifest schema_version {document.get('schema_version')!r}, "
                f"this module reads {MANIFEST_SCHEMA_VERSION}"
            )
        files = {}
        for rel, entry in document["files"].items():
            sha, size = str(entry["sha256"]).lower(), int(entry["size"])
            if len(sha) != 64 or size < 0:
                raise ValueError(f"bad entry for {rel!r}")
            files[str(rel)] = (sha, size)
        return files
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SyncError(f"{where}: not a tfsconf manifest: {exc}") from exc


def tree_of(files: dict[str, tuple[str, int]]) -> str:
    listing = {rel: {"sha256": sha, "size": size} for rel, (sha, size) in files.items()}
    return hashlib.sha256(canonical(listing)).hexdigest()


def parse_md5sums(text: str, where: str) -> dict[str, str]:
    """rel -> md5 from md5sum output lines `<hex>  <relpath>` (or `<hex> *<relpath>`)."""
    sums = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, rest = line.partition(" ")
        if not sep or len(digest) != 32 or rest[:1] not in (" ", "*"):
            raise SyncError(f"{where}: line {number} is not `<md5>  <path>`: {line[:80]!r}")
        try:
            int(digest, 16)
        except ValueError:
            raise SyncError(f"{where}: line {number}: {digest!r} is not hex") from None
        rel = rest[1:]
        rel = rel[2:] if rel.startswith("./") else rel
        sums[check_relpath(rel, where)] = digest.lower()
    if not sums:
        raise SyncError(f"{where}: lists no files")
    return sums


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect: {exc.reason}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


def size_text(n: int) -> str:
    return f"{n >> 20:d} MiB" if n >= 1 << 20 else f"{-(-n >> 10):d} KiB"


def is_permanent(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return 400 <= exc.code < 500 and exc.code not in RETRYABLE_HTTP
    if isinstance(exc, TransferError):
        return exc.permanent
    return isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError))


class Throttle:
    """Sleep so the bytes passed so far do not exceed the rate (a token bucket of 1 s)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.start = 0.0
        self.sent = 0

    def consume(self, n: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        due = self.start + self.sent / self.rate
        if self.sent == 0 or due < now - 1.0:
            # idle time (hashing, retries) may not be saved up into a burst
            self.start, self.sent = now, 0
        self.sent += n
        due = self.start + self.sent / self.rate
        if due > now:
            time.sleep(due - now)


def write_atomic(path: str, data: bytes) -> None:
    """A complete temporary file beside path, renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=os.path.dirname(path))
    try:
        os.fchmod(fd, FILE_MODE)
        with open(fd, "wb", closefd=True) as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def walk_files(root: str) -> dict[str, int]:
    """rel -> size of every non-directory entry under root except the manifest (lstat)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        names = filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in names:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root).replace(os.sep, "/")
            if rel != MANIFEST_NAME:
                info = os.lstat(path)
                found[rel] = info.st_size if stat.S_ISREG(info.st_mode) else -1
    return found


def disk_full_error(
    error: OSError, rel: str | None, base: str, staging: str, version: int
) -> SyncError:
    """What a full disk is reported as: what was written where, whether the partly staged
    version is gone, and how much the filesystem holds."""
    code = errno.errorcode.get(error.errno or 0, str(error.errno))
    what = rel or (os.path.relpath(str(error.filename), base) if error.filename else "")
    cleanup = (
        "the partly staged version was removed"
        if not os.path.lexists(staging)
        else f"the partly staged version could not all be removed from {staging}"
    )
    try:
        fs = os.statvfs(base)
        room = (
            f", leaving {size_text(fs.f_bavail * fs.f_frsize)} free of "
            f"{size_text(fs.f_blocks * fs.f_frsize)} on that filesystem"
        )
    except OSError:
        room = ""
    return SyncError(
        f"{base}: {describe_error(error)} ({code}) while writing version "
        f"{version}{f' ({what})' if what else ''}; {cleanup}{room}; nothing was published"
    )
