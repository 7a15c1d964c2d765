"""`tfsconf model check` in a real process: formats, exit codes, no TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cliprobe import probe, tfsconf

pytestmark = pytest.mark.slow


def test_text_report_and_exit_codes(base_path: Path) -> None:
    done = tfsconf("model", "check", str(base_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "ok: 1 version(s) checked, no problems"
    assert done.stderr == ""
    (base_path / "1" / "variables" / "variables.index").unlink()
    done = tfsconf("model", "check", str(base_path))
    assert done.returncode == 1
    assert "    - variables/variables.index: missing" in done.stdout.splitlines()
    assert "Traceback" not in done.stderr


def test_json_report_and_manifest(base_path: Path) -> None:
    done = tfsconf("model", "check", str(base_path), "--format", "json", "--write-manifest")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["ok"] is True
    assert document["versions"][0]["manifest"] == "written"
    done = tfsconf("model", "check", str(base_path), "--version", "1", "--format", "json")
    assert json.loads(done.stdout)["versions"][0]["manifest"] == "verified"


def test_check_does_not_initialise_tensorflow(base_path: Path) -> None:
    outcome = probe("model", "check", str(base_path))
    assert {k: outcome[k] for k in ("code", "tensorflow", "native")} == {
        "code": 0,
        "tensorflow": False,
        "native": False,
    }
    assert outcome["runtime"] == []
