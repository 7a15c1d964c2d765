"""Test-only stand-in for the slice of the GitHub and GitLab REST APIs that
tfsconf.ci_comment (python -m) uses: list, create and edit comments on one pull/merge request.

Not a model of either forge beyond that: paths, methods, the auth headers and the page
parameters (`per_page`, `page`) only. It listens on 127.0.0.1 and records every request."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "s3cr3t-forge-token"


@dataclass
class Forge:
    comments: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 1000

    def add(self, body: str) -> dict[str, Any]:
        self.next_id += 1
        comment = {"id": self.next_id, "body": body}
        self.comments.append(comment)
        return comment


GITHUB_LIST = re.compile(r"^/repos/acme/specs/issues/7/comments$")
GITHUB_EDIT = re.compile(r"^/repos/acme/specs/issues/comments/(\d+)$")
GITLAB_LIST = re.compile(r"^/api/v4/projects/acme%2Fspecs/merge_requests/7/notes$")
GITLAB_EDIT = re.compile(r"^/api/v4/projects/acme%2Fspecs/merge_requests/7/notes/(\d+)$")


def serve(forge: Forge) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _authorised(self) -> bool:
            return (
                self.headers.get("Authorization") == f"Bearer {TOKEN}"
                or self.headers.get("PRIVATE-TOKEN") == TOKEN
            )

        def _reply(self, code: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str) -> None:
            url = urlsplit(self.path)
            forge.requests.append((method, url.path))
            if not self._authorised():
                self._reply(401, {"message": "Bad credentials"})
                return
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length)) if length else None
            if GITHUB_LIST.match(url.path) or GITLAB_LIST.match(url.path):
                if method == "GET":
                    query = parse_qs(url.query)
                    per_page = int(query.get("per_page", ["30"])[0])
                    page = int(query.get("page", ["1"])[0])
                    start = (page - 1) * per_page
                    self._reply(200, forge.comments[start : start + per_page])
                elif method == "POST" and isinstance(body, dict):
                    self._reply(201, forge.add(str(body["body"])))
                else:
                    self._reply(405, {"message": "method"})
                return
            edit = GITHUB_EDIT.match(url.path) or GITLAB_EDIT.match(url.path)
            expected = "PATCH" if GITHUB_EDIT.match(url.path) else "PUT"
            if edit and method == expected and isinstance(body, dict):
                for comment in forge.comments:
                    if comment["id"] == int(edit.group(1)):
                        comment["body"] = str(body["body"])
                        self._reply(200, comment)
                        return
            self._reply(404, {"message": "Not Found"})

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_PATCH(self) -> None:
            self._handle("PATCH")

        def do_PUT(self) -> None:
            self._handle("PUT")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
