"""Where tfsconf_model_sync reads a version from: a local directory (a mount), an http(s)
URL, or WebHDFS; each lists the version's files (its manifest or MD5SUMS) and opens them.
Credentials go only to the source's own origin and never into a message."""

from __future__ import annotations

import base64
import http.client
import io
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ansible.module_utils.tfsconf_sync_files import (
    MANIFEST_NAME,
    TMP_PREFIX,
    Entry,
    SyncError,
    check_relpath,
    describe_error,
    parse_manifest,
    parse_md5sums,
)


def redact(url: str) -> str:
    """The URL without user:password@, for messages."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


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
