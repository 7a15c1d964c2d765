"""The command line as a user runs it: exit codes, and stdout holding only what was asked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cliprobe import tfsconf

MINIMAL = """\
environment: cli
tfserving_version: "2.18.0"
host_groups:
  g:
    hosts: [{name: h1, address: 10.0.0.1, gpus: 1}]
servers:
  - {name: s1, group: g, gpu: 0, models: [a]}
models:
  - {name: a, base_path: /srv/tfserving/models/a, source: {kind: local, path: /d/a}}
  - {name: unused, base_path: /srv/tfserving/models/u, source: {kind: local, path: /d/u}}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "cli.yaml"
    path.write_text(MINIMAL)
    return path


def test_validate_prints_the_verdict_on_stdout_and_warnings_on_stderr(spec: Path) -> None:
    run = tfsconf("validate", str(spec))
    assert run.returncode == 0
    assert run.stdout == (f"{spec}: valid: environment cli, 1 host(s), 1 server(s), 1 model(s)\n")
    assert f"{spec}:10:12: warning: models[1].name: model is not served by any server" in (
        run.stderr
    )


def test_validate_json_reports_diagnostics_on_stdout(spec: Path) -> None:
    spec.write_text(MINIMAL.replace("gpu: 0", "gpu: 3"))
    run = tfsconf("validate", str(spec), "--format", "json")
    assert run.returncode == 1
    report = json.loads(run.stdout)
    assert report["schema_version"] == 1
    assert report["valid"] is False
    errors = [d for d in report["diagnostics"] if d["severity"] == "error"]
    assert errors == [
        {
            "file": str(spec),
            "line": 7,
            "column": 31,
            "path": "servers[0].gpu",
            "severity": "error",
            "message": "host 'h1' has 1 GPU(s): index must be below that",
            "value": "3",
        }
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["compile", "environments/staging.yaml"],
        ["compile", "environments/staging.yaml", "--out", "x", "--bogus"],
        ["validate", "environments/staging.yaml", "--format", "yaml"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_1_never_2(args: list[str], repo_root: Path) -> None:
    """2 is reserved for "the plan has changes": a typo must not look like that."""
    run = subprocess.run(
        [sys.executable, "-m", "tfsconf", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=repo_root,
    )
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""
    assert "Traceback" not in run.stderr


def test_missing_spec_file_is_a_plain_error(tmp_path: Path) -> None:
    run = tfsconf("validate", str(tmp_path / "nope.yaml"))
    assert run.returncode == 1
    assert run.stderr == f"error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_compile_reports_progress_on_stderr_only(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = tfsconf("compile", str(spec), "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stdout == ""
    assert "compiled cli:" in run.stderr
    assert (out / "manifest.json").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    on_disk = {
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != "manifest.json"
    }
    assert set(manifest["artifacts"]) == on_disk


def test_schema_is_json_schema_of_the_spec() -> None:
    run = tfsconf("schema")
    assert run.returncode == 0
    schema = json.loads(run.stdout)
    assert schema["additionalProperties"] is False
    assert {"environment", "tfserving_version", "host_groups", "servers", "models"} <= set(
        schema["required"]
    )


def test_a_bug_exits_70_with_its_traceback(monkeypatch: pytest.MonkeyPatch, spec: Path) -> None:
    """Internal errors must not look like an invalid spec (exit 1) to CI."""
    from typer.testing import CliRunner

    from tfsconf import api
    from tfsconf.cli.app import app

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(api, "validate", broken)
    result = CliRunner().invoke(app, ["validate", str(spec)])
    assert result.exit_code == 70
    assert "ZeroDivisionError: a bug" in result.output
    assert "internal error in tfsconf" in result.output


def test_validate_json_reports_a_missing_file_as_json(tmp_path: Path) -> None:
    run = tfsconf("validate", str(tmp_path / "nope.yaml"), "--format", "json")
    assert run.returncode == 1
    assert json.loads(run.stdout) == {
        "schema_version": 1,
        "valid": False,
        "error": f"{tmp_path / 'nope.yaml'}: no such file",
        "diagnostics": [],
    }


def test_version_prints_the_package_version() -> None:
    from tfsconf import __version__

    run = tfsconf("--version")
    assert run.returncode == 0, run.stderr
    assert run.stdout == f"tfsconf {__version__}\n"


def test_shell_completion_script_is_offered() -> None:
    run = tfsconf("--show-completion", "bash")
    assert run.returncode == 0, run.stderr
    assert "_TFSCONF_COMPLETE=complete_bash" in run.stdout
