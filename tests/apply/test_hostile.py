"""Hostile values on the real test bed (ssh mode, one host).

A Jinja payload that would create a marker file, in every value that reaches Ansible and
that the spec's validators do not refuse (tests/spec/test_jinja_payload.py shows the
refusals): --host-vars values (plain, nested, the process environment of the server) and a
value from the controller (the operator name, from $LOGNAME, which goes into the lock and
every host record). plan --live, apply, status, apply, rollback: no marker ever appears,
and the values arrive verbatim.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import BedFactory
from .scenario import MODEL, Scenario

pytestmark = pytest.mark.slow


def _payload(marker: Path) -> str:
    return f"{{{{ lookup('pipe', 'touch {marker}') }}}}"


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
        "plan", str(scenario.spec_path), "--live", "--host-vars", str(scenario.host_vars_path)
    )
    _ok(plan, 2)
    no_marker("plan --live")
    _ok(scenario.apply()[0])
    no_marker("apply")
    record = scenario.record("h1")
    assert record is not None and record["operator"] == operator
    pid = scenario.server_pid("h1")
    assert pid is not None
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"TFS_NOTE={evil}".encode() in environ

    status = scenario.tfsconf(
        "status", str(scenario.spec_path), "--host-vars", str(scenario.host_vars_path)
    )
    _ok(status)
    no_marker("status")
    scenario.write_spec([2])
    _ok(scenario.apply()[0])
    rollback = scenario.tfsconf(
        "rollback", str(scenario.spec_path), "--yes", "--host-vars", str(scenario.host_vars_path)
    )
    _ok(rollback)
    no_marker("rollback")
    record = scenario.record("h1")
    assert record is not None and record["operator"] == operator
    assert [e["kind"] for e in record["history"]] == ["apply", "apply", "rollback"]
    assert record["models"][MODEL]["versions"] == [1]
