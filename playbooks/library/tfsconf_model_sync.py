#!/usr/bin/python
"""Ansible module: publish one model version on a host, verified, by staging and rename.

Runs on the target host (python3 >= 3.8, stdlib only). TF Serving loads any directory
whose name is an integer, including one still being copied, so the version is assembled
under ``<base_path>/.tfsconf-staging-<version>`` (ignored by the server), verified file by
file, given its ``.tfsconf-manifest.json`` and only then renamed to ``<base_path>/<version>``.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import posixpath
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: tfsconf_model_sync
short_description: Publish a TF Serving model version atomically and verified
description:
  - Copies C(<source.location>/<version>/) into C(<base_path>/.tfsconf-staging-<version>),
    verifies every file (sha256 from the source's C(.tfsconf-manifest.json), or md5 from
    C(MD5SUMS)), adds the warmup file and a tfsconf manifest, then renames the staging
    directory to C(<base_path>/<version>). A numeric directory never holds partial content.
  - An existing C(<base_path>/<version>) whose manifest matches the source is left alone
    (changed=false, file contents are not read: the manifest written at publish time is
    trusted, only sizes are checked). One with other content is an error; it is never
    modified or deleted, since TF Serving may be serving it.
  - On failure or interruption the staging directory stays; the next run keeps the staged
    files whose digest matches and fetches only the rest.
  - C(<version>/batching_params.pbtxt) is tfsconf's, not the source's: TF Serving reads it
    when the version loads (per-model batching), so it is staged with the version before
    the rename publishes it. In a published version it is the one file that is changed in
    place (a temporary file renamed over it, then the manifest), or removed, to match
    O(batching_params); a version without the file is served unbatched.
options:
  base_path: {type: path, required: true, description: The model's base path on the host.}
  version: {type: int, required: true, description: Version number (> 0).}
  source:
    type: dict
    description: Where C(<location>/<version>/) is read from (required unless only_batching).
    suboptions:
      kind: {type: str, required: true, choices: [local, http, webhdfs]}
      location:
        type: str
        required: true
        description: A directory (local), an http(s) URL (http), or webhdfs://host:port/path.
      checksums:
        type: str
        default: sha256
        choices: [sha256, md5]
        description: md5 reads C(<url>/<version>/MD5SUMS) (http, webhdfs) instead of the manifest.
  auth:
    type: dict
    description:
      - Credentials for an http source (HTTP basic) or a webhdfs source (delegation token).
        Sent only to the source's own origin (not to a host it redirects to) and never
        returned or logged (C(secret) is a no_log option).
    suboptions:
      scheme: {type: str, required: true, choices: [basic, delegation]}
      username: {type: str, description: The user name for basic.}
      secret: {type: str, required: true, no_log: true, description: Password or token.}
  warmup_file:
    type: path
    description: A file on the host placed at assets.extra/tf_serving_warmup_requests.
  batching_params:
    type: str
    description: Text of the version's batching_params.pbtxt; omitted = the version has none.
  only_batching:
    type: bool
    default: false
    description: The version is published; only make its batching_params.pbtxt match.
  retries: {type: int, default: 3, description: Extra attempts per file after a failure.}
  retry_delay: {type: float, default: 2, description: Seconds between attempts.}
  bwlimit: {type: int, default: 0, description: Bytes per second for copying; 0 = unlimited.}
  timeout: {type: float, default: 60, description: Seconds per HTTP request.}
notes:
  - Supports check mode (nothing is written; changed says whether a sync is needed).
  - A local source without a manifest is hashed while copying and the copy is verified by
    reading it back; an unchanged run then also hashes the source (give the source a
    manifest to make unchanged runs stat-only).
  - An md5 source has no sha256 to compare with the published manifest, so an unchanged
    run md5-hashes the published files.
"""

EXAMPLES = r"""
- name: Publish version 3 of resnet
  tfsconf_model_sync:
    base_path: /srv/models/resnet
    version: 3
    source: {kind: http, location: "https://models.example/resnet"}
    warmup_file: /srv/tfserving/config/main/current/warmup/resnet.tfrecord
    bwlimit: 104857600
"""

RETURN = r"""
version_dir: {type: str, description: The published directory.}
files_copied: {type: int, description: Files fetched (the warmup file counts when written).}
files_skipped: {type: int, description: Files already present and verified (staged or published).}
bytes_copied: {type: int, description: Bytes fetched.}
tree_sha256: {type: str, description: The manifest's tree_sha256 of the version.}
seconds: {type: float, description: Wall time of the module.}
"""

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


def redact(url: str) -> str:
    """The URL without user:password@, for messages."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


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


class Source:
    """Where a version's files come from; `where(rel)` names a file in messages."""

    def __init__(self, version: int, timeout: float) -> None:
        self.version = version
        self.timeout = timeout

    def where(self, rel: str) -> str:
        raise NotImplementedError

    def open(self, rel: str) -> io.BufferedIOBase:
        raise NotImplementedError

    def entries(self) -> list[Entry]:
        raise NotImplementedError

    def read_small(self, rel: str) -> bytes:
        try:
            with self.open(rel) as stream:
                return stream.read(64 * 1024 * 1024)
        except (OSError, http.client.HTTPException) as exc:
            raise SyncError(f"{self.where(rel)}: {describe_error(exc)}") from exc

    def manifest_entries(self) -> list[Entry]:
        where = self.where(MANIFEST_NAME)
        files = parse_manifest(self.read_small(MANIFEST_NAME), where)
        if not files:
            raise SyncError(f"{where}: lists no files")
        return [
            Entry(check_relpath(rel, where), size=size, sha256=sha)
            for rel, (sha, size) in files.items()
        ]


class LocalSource(Source):
    def __init__(self, location: str, version: int, timeout: float) -> None:
        super().__init__(version, timeout)
        self.root = os.path.join(os.path.expanduser(location), str(version))

    def where(self, rel: str) -> str:
        return os.path.join(self.root, rel)

    def open(self, rel: str) -> io.BufferedIOBase:
        return open(self.where(rel), "rb")

    def entries(self) -> list[Entry]:
        if not os.path.isdir(self.root):
            raise SyncError(f"{self.root}: source version directory does not exist")
        if os.path.isfile(self.where(MANIFEST_NAME)):
            return self.manifest_entries()
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames.sort()
            for name in filenames:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, self.root).replace(os.sep, "/")
                if os.path.isfile(path) and not name.startswith(TMP_PREFIX):
                    found.append(Entry(check_relpath(rel, self.root), size=None))
        if not found:
            raise SyncError(f"{self.root}: source version directory holds no files")
        return found


class HttpSource(Source):
    """http(s) directory listing-free source; webhdfs is this with another URL scheme."""

    def __init__(
        self,
        location: str,
        version: int,
        timeout: float,
        checksums: str,
        auth: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(version, timeout)
        self.base = location.rstrip("/") + f"/{version}/"
        self.checksums = checksums
        self.auth = auth
        self.opener = urllib.request.build_opener(SameOriginAuth())

    def url(self, rel: str) -> str:
        """The URL requested (a delegation token included)."""
        return self.base + urllib.parse.quote(rel)

    def where(self, rel: str) -> str:
        """The URL shown in messages: never a credential."""
        return redact(self.base + urllib.parse.quote(rel))

    def open(self, rel: str) -> io.BufferedIOBase:
        url = self.url(rel)
        parts = urllib.parse.urlsplit(url)
        headers = {}
        if parts.username is not None:
            token = f"{urllib.parse.unquote(parts.username)}:"
            token += urllib.parse.unquote(parts.password or "")
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
            url = redact(url)
        elif self.auth is not None and self.auth["scheme"] == "basic":
            token = f"{self.auth.get('username') or ''}:{self.auth['secret']}"
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (scheme checked)
        response: http.client.HTTPResponse = self.opener.open(request, timeout=self.timeout)
        return response

    def entries(self) -> list[Entry]:
        if self.checksums == "sha256":
            return self.manifest_entries()
        where = self.where("MD5SUMS")
        raw = self.read_small("MD5SUMS")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SyncError(f"{where}: not UTF-8 text: {exc}") from exc
        return [Entry(rel, md5=md5) for rel, md5 in parse_md5sums(text, where).items()]


class WebHdfsSource(HttpSource):
    """WebHDFS REST: GET http://host:port/webhdfs/v1<path>?op=OPEN, redirected to a datanode."""

    def __init__(
        self,
        location: str,
        version: int,
        timeout: float,
        checksums: str,
        auth: dict[str, Any] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(location)
        if not parts.hostname or not parts.port:
            raise SyncError(f"{redact(location)}: expected webhdfs://host:port/path")
        path = parts.path.rstrip("/")
        http_base = f"http://{parts.netloc}/webhdfs/v1{urllib.parse.quote(path)}"
        super().__init__(http_base, version, timeout, checksums, auth)
        self.location = location

    def url(self, rel: str) -> str:
        url = super().url(rel) + "?op=OPEN"
        if self.auth is not None and self.auth["scheme"] == "delegation":
            url += "&delegation=" + urllib.parse.quote(self.auth["secret"], safe="")
        return url

    def where(self, rel: str) -> str:
        return super().where(rel) + "?op=OPEN"


class SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends credentials only to the origin they were meant for
    (urllib would hand an Authorization header to any host a server redirects to)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and origin(newurl) != origin(req.full_url):
            new.remove_header("Authorization")
        return new


def origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


def make_source(
    spec: dict[str, Any], version: int, timeout: float, auth: dict[str, Any] | None = None
) -> Source:
    kind, location, checksums = spec["kind"], spec["location"], spec["checksums"]
    if auth is not None and (kind, auth["scheme"]) not in (
        ("http", "basic"),
        ("webhdfs", "delegation"),
    ):
        raise SyncError(f"auth scheme {auth['scheme']} is not for a {kind} source")
    if checksums == "md5" and kind == "local":
        raise SyncError("source.checksums md5 is for http and webhdfs sources (MD5SUMS)")
    if kind == "local":
        return LocalSource(location, version, timeout)
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    if kind == "http":
        if scheme not in ("http", "https"):
            raise SyncError(f"{redact(location)}: an http source needs an http(s):// URL")
        return HttpSource(location, version, timeout, checksums, auth)
    if scheme != "webhdfs":
        raise SyncError(f"{redact(location)}: a webhdfs source needs webhdfs://host:port/path")
    return WebHdfsSource(location, version, timeout, checksums, auth)


class Syncer:
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

    # what the version must hold ------------------------------------------------------

    def expected_entries(self) -> list[Entry]:
        entries = {e.rel: e for e in self.source.entries()}
        if not any(name in entries for name in SAVED_MODEL_FILES):
            # published, it would only fail to load at the health gate
            raise SyncError(
                f"{self.source.where(SAVED_MODEL_FILES[0])}: No such file in the source's "
                f"listing of version {self.version}, nor {SAVED_MODEL_FILES[1]}: not a "
                "SavedModel, TF Serving cannot load it; not published"
            )
        if BATCHING_REL in entries:
            raise SyncError(
                f"{self.source.where(BATCHING_REL)}: the source ships {BATCHING_REL}, which "
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
                entry.sha256 = hash_file(self.source.where(entry.rel))["sha256"]
                entry.size = os.stat(self.source.where(entry.rel)).st_size
            except OSError as exc:
                raise SyncError(f"{self.source.where(entry.rel)}: {describe_error(exc)}") from exc
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
                    problems.append(f"{rel}: content differs from {self.source.where('MD5SUMS')}")
            else:
                sha = entry.sha256 if entry.sha256 is not None else self.source_sha256(entry)
                if entry.size is not None and entry.size != listed[1]:
                    problems.append(f"{rel}: {listed[1]} bytes published, source has {entry.size}")
                elif sha != listed[0]:
                    problems.append(f"{rel}: content (sha256) differs from the source")
        on_disk = self.walk_files(self.version_dir)
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

    @staticmethod
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
        return self.source.open(entry.rel)

    def where(self, entry: Entry) -> str:
        if entry.data is not None:
            return f"{entry.rel} (from the spec)"
        return self.warmup_file if entry.warmup else self.source.where(entry.rel)

    def fetch(self, entry: Entry) -> tuple[str, int]:
        """Copy one file into staging via a temp name, verify it, rename it; retry."""
        final = os.path.join(self.staging, entry.rel)
        folder = os.path.dirname(final)
        os.makedirs(folder, DIR_MODE, exist_ok=True)
        attempts = self.retries + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.retry_delay)
            fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=folder)
            try:
                sha, size = self.copy_into(entry, fd, tmp)
                os.replace(tmp, final)
                self.bytes_copied += size
                return sha, size
            except (OSError, http.client.HTTPException, TransferError) as exc:
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

    def copy_into(self, entry: Entry, fd: int, tmp: str) -> tuple[str, int]:
        sha = hashlib.sha256()
        md5 = new_md5() if entry.md5 is not None else None
        buf = bytearray(self.chunk)
        view = memoryview(buf)
        size = 0
        with open(fd, "wb", closefd=True) as out, self.open_entry(entry) as stream:
            os.fchmod(out.fileno(), FILE_MODE)
            while True:
                n = stream.readinto(buf)
                if not n:
                    break
                data = view[:n]
                sha.update(data)
                if md5 is not None:
                    md5.update(data)
                out.write(data)
                size += n
                self.throttle.consume(n)
            out.flush()
            os.fsync(out.fileno())
        digest = sha.hexdigest()
        if entry.size is not None and size != entry.size:
            raise TransferError(f"got {size} bytes, expected {entry.size}")
        if md5 is not None and md5.hexdigest() != entry.md5:
            raise TransferError(f"md5 {md5.hexdigest()} does not match MD5SUMS ({entry.md5})")
        if entry.sha256 is not None and digest != entry.sha256:
            raise TransferError(f"sha256 {digest} does not match the manifest ({entry.sha256})")
        if entry.sha256 is None and entry.md5 is None:
            # local source without a manifest: the digest taken while copying is the
            # reference, and the copy on disk must read back the same
            read_back = hash_file(tmp)["sha256"]
            if read_back != digest:
                raise TransferError(f"the copy reads back as sha256 {read_back}, copied {digest}")
        return digest, size

    def sync(self, entries: list[Entry]) -> str:
        created_base = not os.path.isdir(self.base)
        os.makedirs(self.base, DIR_MODE, exist_ok=True)
        if created_base:
            os.chmod(self.base, DIR_MODE)
            fsync_dir(os.path.dirname(self.base))
        os.makedirs(self.staging, DIR_MODE, exist_ok=True)
        self.clean_staging(entries)
        digests: dict[str, tuple[str, int]] = {}
        for entry in entries:
            sha = self.staged_sha256(entry)
            if sha is not None:
                self.files_skipped += 1
                digests[entry.rel] = (sha, os.stat(os.path.join(self.staging, entry.rel)).st_size)
                continue
            digests[entry.rel] = self.fetch(entry)
            self.files_copied += 1
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
        if os.path.lexists(self.version_dir):
            raise SyncError(f"{self.version_dir} appeared while syncing; left it alone")
        os.rename(self.staging, self.version_dir)
        fsync_dir(self.base)
        return hashlib.sha256(
            canonical({r: {"sha256": s, "size": n} for r, (s, n) in digests.items()})
        ).hexdigest()


def run(module: AnsibleModule) -> dict[str, Any]:
    started = time.monotonic()
    params = module.params
    if params["version"] <= 0:
        raise SyncError(f"version must be a positive integer, got {params['version']}")
    syncer = Syncer(module)
    result = {
        "changed": False,
        "version_dir": syncer.version_dir,
        "files_copied": 0,
        "files_skipped": 0,
        "bytes_copied": 0,
        "tree_sha256": "",
    }
    if params["only_batching"]:
        if not os.path.isdir(syncer.version_dir) or os.path.islink(syncer.version_dir):
            raise SyncError(f"{syncer.version_dir} is not a published version")
        changed, tree = syncer.place_batching(module.check_mode)
        result.update(changed=changed, tree_sha256=tree, batching_changed=changed)
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    if syncer.source is None:
        raise SyncError("source is required unless only_batching is set")
    entries = syncer.expected_entries()
    if os.path.lexists(syncer.version_dir):
        if not os.path.isdir(syncer.version_dir) or os.path.islink(syncer.version_dir):
            raise SyncError(f"{syncer.version_dir} exists and is not a directory")
        problems, tree = syncer.published_problems(entries)
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise SyncError(
                f"{syncer.version_dir} is already published with other content: {shown}{more}. "
                "A published version is never modified in place or deleted (TF Serving may be "
                "serving it): publish the new content under a new version number"
            )
        changed, tree = syncer.place_batching(module.check_mode)
        result.update(
            changed=changed, files_skipped=len(entries), tree_sha256=tree, batching_changed=changed
        )
    elif module.check_mode:
        result["changed"] = True
    else:
        try:
            result["tree_sha256"] = syncer.sync(entries)
        finally:
            result.update(
                files_copied=syncer.files_copied,
                files_skipped=syncer.files_skipped,
                bytes_copied=syncer.bytes_copied,
            )
        result["changed"] = True
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_path": {"type": "path", "required": True},
            "version": {"type": "int", "required": True},
            "source": {
                "type": "dict",
                "options": {
                    "kind": {"type": "str", "required": True, "choices": SOURCE_KINDS},
                    "location": {"type": "str", "required": True},
                    "checksums": {"type": "str", "default": "sha256", "choices": ["sha256", "md5"]},
                },
            },
            "auth": {
                "type": "dict",
                "options": {
                    "scheme": {"type": "str", "required": True, "choices": ["basic", "delegation"]},
                    "username": {"type": "str"},
                    "secret": {"type": "str", "required": True, "no_log": True},
                },
            },
            "warmup_file": {"type": "path"},
            "batching_params": {"type": "str"},
            "only_batching": {"type": "bool", "default": False},
            "retries": {"type": "int", "default": 3},
            "retry_delay": {"type": "float", "default": 2.0},
            "bwlimit": {"type": "int", "default": 0},
            "timeout": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    # a password in the URL must not come back in `invocation` or any message
    source = module.params["source"] or {"location": ""}
    password = urllib.parse.urlsplit(source["location"]).password
    if password:
        module.no_log_values.add(password)
    try:
        result = run(module)
    except SyncError as exc:
        module.fail_json(msg=str(exc), **staging_note(module))
    except OSError as exc:
        where = exc.filename if exc.filename else module.params["base_path"]
        module.fail_json(msg=f"{where}: {describe_error(exc)}", **staging_note(module))
    module.exit_json(**result)


def staging_note(module: AnsibleModule) -> dict[str, str]:
    """Where a failed run left its staging directory (the next run resumes from it)."""
    staging = os.path.join(
        os.path.abspath(module.params["base_path"]), f"{STAGING_PREFIX}{module.params['version']}"
    )
    return {"staging_dir": staging} if os.path.isdir(staging) else {}


def tree_of(files: dict[str, tuple[str, int]]) -> str:
    listing = {rel: {"sha256": sha, "size": size} for rel, (sha, size) in files.items()}
    return hashlib.sha256(canonical(listing)).hexdigest()


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


if __name__ == "__main__":
    main()
