"""Hostile values on the real test bed (ssh mode, one host).

1. A Jinja payload that would create a marker file, in every value that reaches Ansible and
   that the spec's validators do not refuse (tests/spec/test_jinja_payload.py shows the
   refusals): --host-vars values (plain, nested, the process environment of the server) and
   a value from the controller (the operator name, from $LOGNAME, which goes into the lock
   and every host record). plan --live, apply, status, apply, rollback: no marker ever
   appears, and the values arrive verbatim.
2. A model source behind HTTP basic authentication, its password in an environment
   variable: apply fetches with it (controller: saved_model.pb for warmup; host: the
   version), and the password is in no output, saved plan, host file or ansible-runner
   artifact.
"""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from .conftest import BedFactory
from .scenario import BASE_PATH, MODEL, Scenario

pytestmark = pytest.mark.slow


def _payload(marker: Path) -> str:
    return f"{{{{ lookup('pipe', 'touch {marker}') }}}}"


def _apply(scenario: Scenario) -> tuple[Any, dict[str, Any]]:
    """scenario.apply() with room for a slow shared machine."""
    proc = scenario.tfsconf(
        "apply",
        str(scenario.spec_path),
        "--yes",
        "--host-vars",
        str(scenario.host_vars_path),
        "--format",
        "json",
        timeout=900,
    )
    return proc, (json.loads(proc.stdout) if proc.stdout.strip() else {})


def _ok(proc: Any, *codes: int) -> None:
    assert proc.returncode in (codes or (0,)), proc.stdout[-2000:] + proc.stderr[-4000:]


def test_jinja_payloads_arrive_as_data(
    make_bed: BedFactory, tmp_path: Path, model_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = Scenario(make_bed("ssh", 1), tmp_path / "work", model_template)
    marker = tmp_path / "marker"
    evil = _payload(marker)
    host_vars = scenario.bed.host_vars()
    host_vars["h1"]["tfsconf_process_env"]["TFS_NOTE"] = evil
    host_vars["h1"]["site_note"] = evil
    host_vars["all"] = {"nested": {evil: [evil, {"deep": evil}]}}
    scenario.host_vars_path.write_text(yaml.safe_dump(host_vars))
    monkeypatch.setenv("LOGNAME", evil)  # getpass.getuser(): the operator in records
    operator = f"{evil}@{socket.gethostname()}"
    scenario.write_spec([1])

    def no_marker(step: str) -> None:
        assert not marker.exists(), f"{step}: Ansible ran the payload"

    plan = scenario.tfsconf(
        "plan",
        str(scenario.spec_path),
        "--live",
        "--host-vars",
        str(scenario.host_vars_path),
        timeout=900,
    )
    _ok(plan, 2)
    no_marker("plan --live")
    _ok(_apply(scenario)[0])
    no_marker("apply")
    record = scenario.record("h1")
    assert record is not None and record["operator"] == operator
    pid = scenario.server_pid("h1")
    assert pid is not None
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"TFS_NOTE={evil}".encode() in environ

    status = scenario.tfsconf(
        "status", str(scenario.spec_path), "--host-vars", str(scenario.host_vars_path), timeout=900
    )
    _ok(status)
    no_marker("status")
    scenario.write_spec([2])
    _ok(_apply(scenario)[0])
    rollback = scenario.tfsconf(
        "rollback",
        str(scenario.spec_path),
        "--yes",
        "--host-vars",
        str(scenario.host_vars_path),
        timeout=900,
    )
    _ok(rollback)
    no_marker("rollback")
    record = scenario.record("h1")
    assert record is not None and record["operator"] == operator
    assert [e["kind"] for e in record["history"]] == ["apply", "apply", "rollback"]
    assert record["models"][MODEL]["versions"] == [1]


# --- credentials ---------------------------------------------------------------------


class _BasicAuthFiles(http.server.SimpleHTTPRequestHandler):
    """Serves a directory read-only to the right basic credentials; 401 to anything else."""

    expected = ""
    counts: ClassVar[dict[str, int]] = {}

    def _allowed(self) -> bool:
        ok = self.headers.get("Authorization") == self.expected
        self.counts["served" if ok else "refused"] += 1
        if not ok:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="models"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        return ok

    def do_GET(self) -> None:
        if self._allowed():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._allowed():
            super().do_HEAD()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def auth_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """start(directory, address, user, password) -> (base URL, counts); stopped after."""
    started: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path, address: str, user: str, password: str) -> tuple[str, Any]:
        counts = {"served": 0, "refused": 0}
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        handler = type(
            "Handler",
            (_BasicAuthFiles,),
            {"expected": f"Basic {token}", "counts": counts},
        )

        def make(*args: Any) -> _BasicAuthFiles:
            return handler(*args, directory=str(directory))

        server = http.server.ThreadingHTTPServer((address, 0), make)
        started.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://{address}:{server.server_address[1]}", counts

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _files(root: Path) -> Iterator[Path]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def test_http_source_with_credentials_from_the_environment(
    make_bed: BedFactory,
    tmp_path: Path,
    model_template: Path,
    monkeypatch: pytest.MonkeyPatch,
    auth_server: Any,
) -> None:
    bed = make_bed("ssh", 1)
    scenario = Scenario(bed, tmp_path / "work", model_template)
    password = "pw-" + secrets.token_urlsafe(18)
    forms = [password, base64.b64encode(f"svc-models:{password}".encode()).decode()]
    # the root-namespace end of h1's link: the host reaches it, and so does the controller
    peer = bed.host("h1").address.rsplit(".", 1)[0] + ".1"
    base, counts = auth_server(scenario.source.parent, peer, "svc-models", password)
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(f"{base}/{MODEL}/1/saved_model.pb", timeout=5)

    scenario.write_spec([1])
    spec = yaml.safe_load(scenario.spec_path.read_text())
    spec["models"][0]["source"] = {
        "kind": "http",
        "url": f"{base}/{MODEL}",
        "auth": {"username": "svc-models", "password_env": "TFSCONF_TEST_MODELS_PASSWORD"},
    }
    scenario.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    keep = tmp_path / "ansible-runs"
    monkeypatch.setenv("TFSCONF_KEEP_ANSIBLE_DIR", str(keep))

    # without the variable: a clear error before any host changes
    monkeypatch.delenv("TFSCONF_TEST_MODELS_PASSWORD", raising=False)
    missing, _ = _apply(scenario)
    assert missing.returncode == 1
    assert "environment variable TFSCONF_TEST_MODELS_PASSWORD is not set" in missing.stderr
    assert scenario.record("h1") is None and scenario.version_dirs("h1") == []

    monkeypatch.setenv("TFSCONF_TEST_MODELS_PASSWORD", password)
    plan_file = tmp_path / "plan.json"
    outputs = []
    for fmt in ("text", "markdown", "json"):
        plan = scenario.tfsconf(
            "plan",
            str(scenario.spec_path),
            "--live",
            "--host-vars",
            str(scenario.host_vars_path),
            "--format",
            fmt,
            "--out",
            str(plan_file),
            timeout=900,
        )
        _ok(plan, 2)
        if fmt != "markdown":  # the pull-request comment leaves the reasons out
            assert "credentials from $TFSCONF_TEST_MODELS_PASSWORD" in plan.stdout
        outputs += [plan.stdout, plan.stderr, plan_file.read_text()]
    proc, report = _apply(scenario)
    _ok(proc)
    assert [h["status"] for h in report["hosts"]] == ["applied"]
    outputs += [proc.stdout, proc.stderr]
    assert scenario.version_dirs("h1") == ["1"]
    published = bed.host("h1").root / BASE_PATH.lstrip("/") / "1" / "saved_model.pb"
    assert published.read_bytes() == (model_template / "saved_model.pb").read_bytes()
    assert counts["served"] >= 2 and counts["refused"] == 1  # only the probe above
    status = scenario.tfsconf(
        "status", str(scenario.spec_path), "--host-vars", str(scenario.host_vars_path), timeout=900
    )
    _ok(status)
    outputs += [status.stdout, status.stderr]

    artifacts = list(_files(keep))
    assert any("job_events" in str(p) for p in artifacts)  # the runner's event records
    # the host's whole tree (records, releases, compiled files, server logs) and its sshd log
    host_files = list(_files(bed.base_dir))
    assert any(p.name == "state.json" for p in host_files)
    for form in forms:
        for text in outputs:
            assert form not in text
        for path in [*artifacts, *host_files, *_files(scenario.workdir)]:
            assert form.encode() not in path.read_bytes(), path
