"""Running tfsconf_model_sync for real (ansible-runner), and the sources it reads from."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import random
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ansible_runner

from tfsconf.modelcheck.manifest import MANIFEST_NAME, write_manifest

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "playbooks" / "library"
INVENTORY = "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n"
MODULE = "tfsconf_model_sync"


@dataclass(frozen=True)
class SyncRun:
    """What one module run reported: the runner status and the module's result."""

    status: str
    result: dict[str, Any]

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed")) or self.status != "successful"


def runner_env(private_dir: Path) -> dict[str, str]:
    """Environment for ansible-playbook: our library, and temp dirs inside this run's dir."""
    return {
        "ANSIBLE_LIBRARY": str(LIBRARY),
        # found next to tfsconf's playbooks; this harness's playbook is elsewhere
        "ANSIBLE_MODULE_UTILS": str(REPO / "playbooks" / "module_utils"),
        "ANSIBLE_REMOTE_TMP": str(private_dir / "remote_tmp"),
        "ANSIBLE_LOCAL_TEMP": str(private_dir / "local_tmp"),
        "ANSIBLE_PIPELINING": "False",
        "ANSIBLE_NOCOLOR": "1",
        # the venv's ansible-playbook, without needing an activated venv
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def prepare(private_dir: Path, args: dict[str, Any], *, check: bool = False) -> dict[str, Any]:
    """Write the playbook into a fresh private_data_dir; the ansible_runner.run kwargs."""
    private_dir.mkdir(parents=True)
    task: dict[str, Any] = {"name": "sync", MODULE: args}
    if check:
        task["check_mode"] = True
    play = [{"hosts": "all", "gather_facts": False, "tasks": [task]}]
    (private_dir / "project").mkdir()
    # JSON is YAML: no quoting surprises in paths
    (private_dir / "project" / "sync.yml").write_text(json.dumps(play, indent=1))
    return {
        "private_data_dir": str(private_dir),
        "playbook": "sync.yml",
        "inventory": INVENTORY,
        "envvars": runner_env(private_dir),
        "quiet": True,
    }


def module_result(runner: Any) -> dict[str, Any]:
    for event in runner.events:
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            data = event["event_data"]
            if data.get("task") == "sync":
                return dict(data["res"])
    return {}


def run_sync(private_dir: Path, args: dict[str, Any], *, check: bool = False) -> SyncRun:
    runner = ansible_runner.run(**prepare(private_dir, args, check=check))
    return SyncRun(status=runner.status, result=module_result(runner))


def make_version(root: Path, seed: int, *, data_size: int = 256 * 1024) -> Path:
    """A SavedModel-like version directory of random bytes (deterministic per seed)."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    (root / "variables").mkdir()
    (root / "saved_model.pb").write_bytes(rng.randbytes(4096 + seed))
    (root / "variables" / "variables.index").write_bytes(rng.randbytes(300))
    (root / "variables" / "variables.data-00000-of-00001").write_bytes(rng.randbytes(data_size))
    return root


def with_manifest(version_dir: Path) -> Path:
    write_manifest(version_dir)
    return version_dir


def write_md5sums(version_dir: Path) -> None:
    lines = []
    for path in sorted(version_dir.rglob("*")):
        rel = path.relative_to(version_dir).as_posix()
        if path.is_file() and rel not in (MANIFEST_NAME, "MD5SUMS"):
            lines.append(f"{hashlib.md5(path.read_bytes()).hexdigest()}  {rel}\n")
    (version_dir / "MD5SUMS").write_text("".join(lines))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class WebHdfsHandler(QuietHandler):
    """A WebHDFS namenode stand-in: op=OPEN answers 307 to a datanode URL (same server)."""

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        prefix = "/webhdfs/v1/"
        if parts.path.startswith(prefix):
            query = urllib.parse.parse_qs(parts.query)
            if query.get("op") != ["OPEN"]:
                self.send_error(400, "only op=OPEN here")
                return
            self.send_response(307)
            self.send_header("Location", "/datanode/" + parts.path[len(prefix) :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path.startswith("/datanode/"):
            self.path = "/" + parts.path[len("/datanode/") :]
            super().do_GET()
            return
        self.send_error(404)


@contextmanager
def serve(directory: Path, handler: type[QuietHandler] = QuietHandler) -> Iterator[str]:
    """Serve directory on 127.0.0.1 (free port) in a thread; yields http://127.0.0.1:port."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
