"""Stand-in model sources for the bundled examples: an HTTP file server and a WebHDFS
namenode (with its datanode), both serving a directory tree, as tfsconf reads them.

What tfsconf fetches (tfsconf/apply/work.py on the controller, the host module
playbooks/library/tfsconf_model_sync.py on each host):
- http: `<url>/.tfsconf-versions.json` (the version index of a latest/all policy),
  `<url>/<version>/.tfsconf-manifest.json` (sha256) or `<url>/<version>/MD5SUMS` (md5), and
  `<url>/<version>/<file>`;
- webhdfs: `GET /webhdfs/v1<path>?op=LISTSTATUS` (versions) and `?op=OPEN`, which the
  namenode answers with a 307 redirect to a datanode (WebHDFS REST API), MD5SUMS included.

Each server listens on one address of the bed (the root-namespace end of a host's link), so
the controller and every test host reach it, and nothing outside does.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tfsconf.modelcheck.manifest import MANIFEST_NAME, write_manifest

VERSION_INDEX = ".tfsconf-versions.json"


class Files(http.server.SimpleHTTPRequestHandler):
    """Plain files; every request path is counted, so a test can see what was fetched."""

    requests: list[str]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def list_directory(self, path: Any) -> None:  # type: ignore[override]
        self.send_error(404, "no directory listings here")  # plain HTTP has none

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()


class WebHdfs(Files):
    """A namenode: op=LISTSTATUS lists a directory as FileStatuses, op=OPEN answers 307 to
    a datanode URL on the same server, which serves the file's bytes."""

    def do_GET(self) -> None:
        self.requests.append(self.path)
        parts = urllib.parse.urlsplit(self.path)
        prefix = "/webhdfs/v1/"
        if parts.path.startswith("/datanode/"):
            self.path = "/" + parts.path[len("/datanode/") :]
            http.server.SimpleHTTPRequestHandler.do_GET(self)
            return
        if not parts.path.startswith(prefix):
            self.send_error(404)
            return
        rel = urllib.parse.unquote(parts.path[len(prefix) :])
        op = urllib.parse.parse_qs(parts.query).get("op", [""])[0]
        target = Path(self.directory) / rel
        if op == "LISTSTATUS":
            if not target.is_dir():
                self._json(404, {"RemoteException": {"exception": "FileNotFoundException"}})
                return
            statuses = [
                {"pathSuffix": p.name, "type": "DIRECTORY" if p.is_dir() else "FILE"}
                for p in sorted(target.iterdir())
            ]
            self._json(200, {"FileStatuses": {"FileStatus": statuses}})
        elif op == "OPEN":
            if not target.is_file():
                self._json(404, {"RemoteException": {"exception": "FileNotFoundException"}})
                return
            self.send_response(307)
            self.send_header("Location", "/datanode/" + urllib.parse.quote(rel))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._json(400, {"RemoteException": {"exception": "UnsupportedOperationException"}})

    def _json(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def serve(directory: Path, address: str, handler: type[Files]) -> Iterator[tuple[str, list[str]]]:
    """Serve directory at address (a free port) in a thread; yields (host:port, requests)."""
    requests: list[str] = []
    bound = type(handler.__name__, (handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(
        (address, 0), functools.partial(bound, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{address}:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_md5sums(version_dir: Path) -> None:
    """MD5SUMS as md5sum writes it (`<hex>  <path>`), over every file of the version."""
    lines = []
    for path in sorted(version_dir.rglob("*")):
        rel = path.relative_to(version_dir).as_posix()
        if path.is_file() and rel not in (MANIFEST_NAME, "MD5SUMS"):
            lines.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel}\n")
    (version_dir / "MD5SUMS").write_text("".join(lines))


def checksum(version_dir: Path, kind: str) -> None:
    if kind == "md5":
        write_md5sums(version_dir)
    else:
        write_manifest(version_dir)


def write_index(model_dir: Path, versions: list[int]) -> None:
    (model_dir / VERSION_INDEX).write_text(json.dumps({"versions": versions}))
