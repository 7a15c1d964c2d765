"""The editor schema in a real editor backend: yaml-language-server (npm), driven over stdio
as an LSP client drives it, with `tfsconf schema` associated to the specs.

The bundled examples get no diagnostic; a bad spec gets the schema's own message (so an
empty list above means the schema was applied, not that it was missing); hovering any key
of the examples shows its description.

yaml-language-server is installed once with npm into /var/cache/tfsconf-test (scripts/test
installs node and npm with apt when they are missing).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfsconf import api

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "environments").glob("*.yaml"))
BAD = ROOT / "tests" / "spec" / "testdata" / "bad"
VERSION = "1.19.2"
CACHE = Path(os.environ.get("TFSCONF_TEST_CACHE", "/var/cache/tfsconf-test"))
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def server_script() -> Path:
    prefix = CACHE / f"yaml-language-server-{VERSION}"
    script = prefix / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if not script.exists():
        npm = shutil.which("npm")
        assert npm, "npm is missing: scripts/test installs nodejs and npm with apt"
        prefix.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *(npm, "install", "--no-audit", "--no-fund", "--no-save"),
                *("--prefix", str(prefix), f"yaml-language-server@{VERSION}"),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    assert shutil.which("node"), "node is missing: scripts/test installs nodejs with apt"
    return script


class LspClient:
    """A minimal LSP client over a child's stdio: Content-Length framed JSON-RPC."""

    def __init__(self, argv: list[str], settings: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.settings = settings
        self.next_id = 0
        self.notifications: list[dict[str, Any]] = []

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        length = 0
        while True:
            line = self.proc.stdout.readline()
            assert line, "yaml-language-server closed its output"
            if line in (b"\r\n", b"\n"):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        message: dict[str, Any] = json.loads(self.proc.stdout.read(length))
        return message

    def _answer_server_request(self, message: dict[str, Any]) -> None:
        result: Any = None
        if message["method"] == "workspace/configuration":
            result = [
                self.settings.get(item.get("section", ""), {})
                for item in message["params"]["items"]
            ]
        self._send({"id": message["id"], "result": result})

    def _pump(self) -> dict[str, Any] | None:
        """One message: a response is returned, anything else handled or kept."""
        message = self._read()
        if "method" in message and "id" in message:
            self._answer_server_request(message)
        elif "method" in message:
            self.notifications.append(message)
        else:
            return message
        return None

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        self._send({"id": self.next_id, "method": method, "params": params})
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            message = self._pump()
            if message is not None and message.get("id") == self.next_id:
                assert "error" not in message, message
                return message.get("result")
        raise AssertionError(f"no answer to {method} in {TIMEOUT} s")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def diagnostics(self, uri: str, version: int) -> list[dict[str, Any]]:
        """The diagnostics published for `uri` at `version` (the server validates after
        every change, once its schema is loaded)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            for note in self.notifications:
                params = note.get("params", {})
                if (
                    note["method"] == "textDocument/publishDiagnostics"
                    and params.get("uri") == uri
                    and params.get("version", version) == version
                ):
                    self.notifications.remove(note)
                    found: list[dict[str, Any]] = params["diagnostics"]
                    return found
            self._pump()
        raise AssertionError(f"no diagnostics for {uri} in {TIMEOUT} s")

    def close(self) -> None:
        try:
            self.request("shutdown", None)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def client(server_script: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LspClient]:
    workspace = tmp_path_factory.mktemp("editor")
    schema = workspace / "tfsconf.schema.json"
    schema.write_text(api.json_schema(), encoding="utf-8")
    settings = {
        "yaml": {
            "validate": True,
            "hover": True,
            "completion": True,
            "schemaStore": {"enable": False},
            "schemas": {schema.as_uri(): ["*.yaml"]},
        }
    }
    lsp = LspClient(["node", str(server_script), "--stdio"], settings)
    try:
        lsp.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": workspace.as_uri(),
                "capabilities": {
                    "workspace": {"configuration": True},
                    "textDocument": {
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                        "publishDiagnostics": {"versionSupport": True},
                    },
                },
            },
        )
        lsp.notify("initialized", {})
        lsp.notify("workspace/didChangeConfiguration", {"settings": settings})
        yield lsp
    finally:
        lsp.close()


def _open(client: LspClient, name: str, text: str) -> str:
    uri = f"file:///specs/{name}"
    client.notify(
        "textDocument/didOpen",
        {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
    )
    return uri


def _keys(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield from _keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _keys(item)


@pytest.mark.slow
def test_bad_spec_gets_the_schema_message(client: LspClient) -> None:
    uri = _open(client, "bad.yaml", (BAD / "host_address_space.yaml").read_text())
    messages = [d["message"] for d in client.diagnostics(uri, 1)]
    assert any("must be an IP address or a DNS host name" in m for m in messages), messages


@pytest.mark.slow
@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_no_diagnostics_and_every_key_a_hover(client: LspClient, spec: Path) -> None:
    text = spec.read_text(encoding="utf-8")
    uri = _open(client, spec.name, text)

    assert client.diagnostics(uri, 1) == []

    keys = list(_keys(yaml.compose(text)))
    assert len(keys) > 40
    empty = []
    for key in keys:
        position = {"line": key.start_mark.line, "character": key.start_mark.column + 1}
        hover = client.request(
            "textDocument/hover", {"textDocument": {"uri": uri}, "position": position}
        )
        contents = (hover or {}).get("contents", "")
        shown = contents.get("value", "") if isinstance(contents, dict) else str(contents)
        # the server adds a heading (the block's title) and a "Source: <schema>" line to
        # every hover: the description is what is left
        described = [
            line
            for line in shown.splitlines()
            if line.strip() and not line.startswith(("#", "Source:"))
        ]
        if len(" ".join(described)) < 15:
            empty.append(f"{spec.name}:{key.start_mark.line + 1}: {key.value}: {shown!r}")
    assert empty == []
