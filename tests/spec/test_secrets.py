"""Secrets: a URL that carries one is refused without printing it, credentials are named
(an environment variable), never written, and nothing tfsconf prints shows a secret."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cliprobe import tfsconf

from tfsconf.apply.work import SourceVersions
from tfsconf.errors import SpecError, UserError
from tfsconf.resolve import model as r
from tfsconf.secrets import mask, read_env_secret, url_secrets
from tfsconf.validate.load import load_environment

PASSWORD = "hunter2-Pa55"
TOKEN = "HAAKdGZzY29uZi10b2tlbg"


def _spec(source: str) -> str:
    return f"""\
environment: sec
tfserving_version: "2.18.0"
host_groups:
  main:
    hosts:
      - name: h1
        address: 10.0.0.1
servers:
  - name: srv
    group: main
    models: [ctr]
models:
  - name: ctr
    base_path: /srv/tfserving/models/ctr
    versions: {{policy: specific, versions: [1]}}
    source: {source}
"""


PASSWORD_URL = f'{{kind: http, url: "https://svc:{PASSWORD}@models.example/ctr"}}'
TOKEN_URL = f'{{kind: webhdfs, url: "webhdfs://nn:9870/m/ctr?delegation={TOKEN}&op=x"}}'
AUTH = "{kind: http, url: https://models.example/ctr, auth: {username: svc, password_env: MP}}"


@pytest.mark.parametrize(
    ("source", "carried"), [(PASSWORD_URL, "user:password@"), (TOKEN_URL, "delegation=")]
)
def test_a_url_with_a_secret_is_refused_without_showing_it(
    source: str, carried: str, tmp_path: Path
) -> None:
    spec = tmp_path / "sec.yaml"
    spec.write_text(_spec(source))
    with pytest.raises(SpecError) as raised:
        load_environment(spec)
    (diagnostic,) = [d for d in raised.value.diagnostics if d.severity == "error"]
    assert diagnostic.path == ("models", 0, "source", "url")
    column = spec.read_text().splitlines()[15].index('"') + 1  # where the URL starts
    assert (diagnostic.line, diagnostic.column) == (16, column)
    assert f"must not carry a secret ({carried})" in diagnostic.message
    shown = diagnostic.render() + json.dumps(diagnostic.as_json())
    assert "***" in shown
    assert PASSWORD not in shown and TOKEN not in shown

    out = tmp_path / "build"
    for args in (
        ("validate", str(spec)),
        ("validate", str(spec), "--format", "json"),
        ("compile", str(spec), "--out", str(out)),
        ("plan", str(spec)),
    ):
        run = tfsconf(*args)
        assert run.returncode == 1, run
        assert "models[0].source.url" in run.stdout + run.stderr
        assert PASSWORD not in run.stdout + run.stderr
        assert TOKEN not in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
    assert not out.exists()


def test_mask_takes_secrets_out_of_any_text() -> None:
    text = (
        f"fetch https://svc:{PASSWORD}@h/x and webhdfs://nn:1/p?op=OPEN&delegation={TOKEN}"
        f" and https://{TOKEN}@github.example/r and s3?X-Amz-Signature=abc&x=1"
    )
    masked = mask(text)
    assert PASSWORD not in masked and TOKEN not in masked and "abc" not in masked
    assert "https://***@h/x" in masked and "delegation=***" in masked
    assert "X-Amz-Signature=***&x=1" in masked
    assert mask("https://h/x?op=OPEN a@b c=d") == "https://h/x?op=OPEN a@b c=d"


def test_url_secrets_names_what_a_url_carries() -> None:
    assert url_secrets("https://h/x?op=OPEN") == []
    assert url_secrets("https://u:p@h/x") == ["user:password@"]
    assert url_secrets("https://h/x?a=1&Token=2&sig=3") == ["token=", "sig="]
    assert url_secrets("https://h/p@x") == []


def test_credentials_are_named_in_the_spec_and_in_the_plan_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MP", PASSWORD)
    spec = tmp_path / "sec.yaml"
    spec.write_text(_spec(AUTH))
    model = load_environment(spec).resolved.hosts[0].servers[0].models[0]
    assert model.source.auth == r.SourceAuth("basic", "MP", "svc")
    plans = [
        tfsconf("plan", str(spec), "--format", fmt, "--out", str(tmp_path / f"plan-{fmt}.json"))
        for fmt in ("text", "markdown", "json")
    ]
    for run in plans:
        assert run.returncode == 2, run.stderr
        assert "credentials from $MP" in run.stdout
    saved = "".join(p.read_text() for p in tmp_path.glob("plan-*.json"))
    assert "credentials from $MP" in saved
    compiled = tfsconf("compile", str(spec), "--out", str(tmp_path / "build"))
    assert compiled.returncode == 0
    written = b"".join(p.read_bytes() for p in (tmp_path / "build").rglob("*") if p.is_file())
    everything = "".join(run.stdout + run.stderr for run in [*plans, compiled]) + saved
    assert PASSWORD not in everything and PASSWORD.encode() not in written


@pytest.mark.parametrize(
    ("field", "value"),
    [("password_env", "MY-VAR"), ("password_env", "$MP"), ("username", "a b"), ("secret", "x")],
)
def test_auth_takes_names_only(field: str, value: str, tmp_path: Path) -> None:
    spec = tmp_path / "sec.yaml"
    auth = {"username": "svc", "password_env": "MP", field: value}
    source = "{kind: http, url: https://models.example/ctr, auth: " + json.dumps(auth) + "}"
    spec.write_text(_spec(source))
    with pytest.raises(SpecError) as raised:
        load_environment(spec)
    paths = [d.path for d in raised.value.diagnostics if d.severity == "error"]
    assert ("models", 0, "source", "auth", field) in paths


def test_a_missing_variable_is_an_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TFSCONF_NOT_SET", raising=False)
    with pytest.raises(UserError, match="environment variable TFSCONF_NOT_SET is not set"):
        read_env_secret("TFSCONF_NOT_SET", "model ctr: source.auth")
    monkeypatch.setenv("TFSCONF_NOT_SET", "two\nlines")
    with pytest.raises(UserError, match="line break") as raised:
        read_env_secret("TFSCONF_NOT_SET", "model ctr: source.auth")
    assert "two" not in str(raised.value)


# --- the controller's own fetches: a real HTTP server on loopback ------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 to the right basic credentials, 401 otherwise; /redirect sends the
    client to another origin (the `elsewhere` server); records every Authorization."""

    seen: list[tuple[int, str | None]]
    expected: str
    elsewhere: str

    def do_GET(self) -> None:
        got = self.headers.get("Authorization")
        self.seen.append((self.server.server_address[1], got))
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.elsewhere + "/open" + self.path[len("/redirect") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        ok = got == self.expected or self.path.startswith("/open/")
        body = b"saved-model-bytes" if ok else b""
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[str, str, list[tuple[int, str | None]]]]:
    seen: list[tuple[int, str | None]] = []
    expected = "Basic " + base64.b64encode(f"svc:{PASSWORD}".encode()).decode()
    other = http.server.ThreadingHTTPServer(("127.0.0.2", 0), _Recorder)
    elsewhere = f"http://127.0.0.2:{other.server_address[1]}"
    attrs = {"seen": seen, "expected": expected, "elsewhere": elsewhere}
    handler = type("Handler", (_Recorder,), attrs)
    other.RequestHandlerClass = handler
    main = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (main, other)]
    for thread in threads:
        thread.start()
    try:
        yield f"http://127.0.0.1:{main.server_address[1]}", elsewhere, seen
    finally:
        for server in (main, other):
            server.shutdown()
            server.server_close()


def test_controller_fetches_with_credentials_and_keeps_them_to_the_origin(
    servers: tuple[str, str, list[tuple[int, str | None]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, elsewhere, seen = servers
    monkeypatch.setenv("MP", PASSWORD)
    auth = r.SourceAuth("basic", "MP", "svc")
    fetcher = SourceVersions(timeout=5)
    got = fetcher.saved_model_dir(r.Source("http", f"{base}/m", auth=auth), 1, tmp_path)
    assert (got / "saved_model.pb").read_bytes() == b"saved-model-bytes"
    assert fetcher.secrets == {"MP": PASSWORD}

    fetcher.saved_model_dir(r.Source("http", f"{base}/redirect/m", auth=auth), 1, tmp_path)
    other_port = int(elsewhere.rsplit(":", 1)[1])
    assert [port for port, _ in seen] == [seen[0][0], seen[0][0], other_port]
    assert seen[1][1] is not None and seen[2][1] is None  # not handed to the other origin

    with pytest.raises(UserError, match="HTTP Error 401"):
        SourceVersions(timeout=5).saved_model_dir(r.Source("http", f"{base}/m"), 1, tmp_path)
    monkeypatch.delenv("MP")
    with pytest.raises(UserError, match="environment variable MP is not set"):
        SourceVersions(timeout=5).saved_model_dir(
            r.Source("http", f"{base}/m", auth=auth), 1, tmp_path
        )


def test_every_ansible_run_gets_the_secret_variables_blanked(tmp_path: Path) -> None:
    """ansible-runner copies this process's environment into the playbook's and writes it
    into its artifacts: the variables the spec names as holding credentials are blanked."""
    from tfsconf.apply import ansible
    from tfsconf.apply.inventory import build_inventory

    spec = tmp_path / "sec.yaml"
    spec.write_text(_spec(AUTH))
    inventory = build_inventory(load_environment(spec).resolved)
    assert inventory.hidden_env == {"MP"}
    assert ansible._hidden(inventory) == {"MP": ""}
