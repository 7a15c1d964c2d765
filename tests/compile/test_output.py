"""Compile is deterministic, all-or-nothing, and --check finds stale files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfsconf import api
from tfsconf.compile import output
from tfsconf.errors import UserError


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_compile_twice_gives_identical_bytes(repo_root: Path, tmp_path: Path) -> None:
    spec = repo_root / "environments" / "production.yaml"
    api.compile_environment(spec, tmp_path / "a")
    api.compile_environment(spec, tmp_path / "b")
    first, second = _snapshot(tmp_path / "a"), _snapshot(tmp_path / "b")
    assert first == second
    assert len(first) > 20


def test_check_reports_changed_missing_and_extra(repo_root: Path, tmp_path: Path) -> None:
    spec = repo_root / "environments" / "staging.yaml"
    out = tmp_path / "staging"
    api.compile_environment(spec, out)
    assert not api.compile_environment(spec, out, check=True).staleness.stale  # type: ignore[union-attr]

    (out / "hosts/stg-1/stg-rank/models.config").write_text("model_config_list {}\n")
    (out / "hosts/stg-2/warmup.json").unlink()
    (out / "hosts/stg-2/notes.txt").write_text("hand edit\n")
    before = _snapshot(out)
    stale = api.compile_environment(spec, out, check=True).staleness
    assert stale is not None
    assert stale.changed == ("hosts/stg-1/stg-rank/models.config",)
    assert stale.missing == ("hosts/stg-2/warmup.json",)
    assert stale.extra == ("hosts/stg-2/notes.txt",)
    assert _snapshot(out) == before  # --check writes nothing


def test_check_cli_exits_1_and_lists_stale_files(repo_root: Path, tmp_path: Path) -> None:
    spec = repo_root / "environments" / "staging.yaml"
    out = tmp_path / "staging"
    api.compile_environment(spec, out)
    (out / "hosts/stg-1/stg-cpu/server.flags").write_text("--port=1\n")
    run = subprocess.run(
        [sys.executable, "-m", "tfsconf", "compile", str(spec), "--out", str(out), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout.strip() == f"changed: {out}/hosts/stg-1/stg-cpu/server.flags"
    assert "stale" in run.stderr


def test_failed_write_keeps_the_previous_build(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = repo_root / "environments" / "production.yaml"
    out = tmp_path / "production"
    api.compile_environment(spec, out)
    before = _snapshot(out)
    real_write = os.write
    calls = {"n": 0}

    def failing_write(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 10:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(output.os, "write", failing_write)
    with pytest.raises(UserError, match="No space left"):
        api.compile_environment(spec, out)
    monkeypatch.undo()
    assert _snapshot(out) == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_refuses_to_replace_a_directory_that_is_not_a_build(
    repo_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("do not delete\n")
    with pytest.raises(UserError, match="not a tfsconf build"):
        api.compile_environment(repo_root / "environments" / "staging.yaml", out)
    assert (out / "thesis.tex").read_text() == "do not delete\n"


@pytest.mark.parametrize("command", ["validate", "compile", "schema"])
def test_spec_commands_never_import_tensorflow(
    command: str, repo_root: Path, tmp_path: Path
) -> None:
    spec = str(repo_root / "environments" / "production.yaml")
    args = {"validate": [spec], "compile": [spec, "--out", str(tmp_path / "o")], "schema": []}
    probe = (
        "import sys\n"
        "from tfsconf.cli.app import app\n"
        "try:\n"
        f"    app({['', command, *args[command]][1:]!r})\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow')\n"
        "print('TF:', loaded)\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "TF: []" in run.stdout


def test_a_foreign_manifest_json_does_not_make_a_build(repo_root: Path, tmp_path: Path) -> None:
    """Web apps have a manifest.json too: only tfsconf's own manifest marks a build."""
    out = tmp_path / "webapp"
    (out / "src").mkdir(parents=True)
    (out / "manifest.json").write_text('{"name": "my-pwa"}\n')
    (out / "src" / "app.js").write_text("precious\n")
    with pytest.raises(UserError, match="not a tfsconf build"):
        api.compile_environment(repo_root / "environments" / "staging.yaml", out)
    assert (out / "src" / "app.js").read_text() == "precious\n"


def test_refuses_to_replace_the_current_directory(
    repo_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="current directory"):
        api.compile_environment(repo_root / "environments" / "staging.yaml", Path("."))


def test_recompile_swaps_the_whole_tree(repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "staging"
    api.compile_environment(repo_root / "environments" / "staging.yaml", out)
    (out / "hosts" / "stray.txt").write_text("left over\n")
    api.compile_environment(repo_root / "environments" / "staging.yaml", out)
    assert not (out / "hosts" / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["staging"]  # no staging leftovers
