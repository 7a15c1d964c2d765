"""Compiled systemd units pass `systemd-analyze verify`, systemd's own unit checker.

The units are verified inside a throwaway root (--root) that holds the distribution's
unit files, the generated unit, and an executable /usr/bin/docker plus a docker.service
stand-in, since this machine has neither: the checker then looks only at the unit itself.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tfsconf import api

SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def _verify_root(tmp_path: Path) -> Path:
    assert shutil.which("systemd-analyze"), "scripts/test installs systemd (systemd-analyze)"
    root = tmp_path / "root"
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    (root / "usr/bin").mkdir(parents=True)
    docker = root / "usr/bin/docker"
    docker.write_text("#!/bin/sh\nexit 0\n")
    docker.chmod(0o755)
    (root / "usr/bin/tensorflow_model_server").write_text("#!/bin/sh\nexit 0\n")
    (root / "usr/bin/tensorflow_model_server").chmod(0o755)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    (units / "docker.service").write_text(
        "[Unit]\nDescription=docker stand-in for unit verification\n"
        "[Service]\nExecStart=/usr/bin/docker\n"
    )
    return root


def _verify(root: Path, unit: Path) -> subprocess.CompletedProcess[str]:
    target = root / "etc/systemd/system" / unit.name
    shutil.copy(unit, target)
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("env", ["production", "staging"])
def test_compiled_units_verify_clean(env: str, repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / env
    api.compile_environment(repo_root / "environments" / f"{env}.yaml", out)
    root = _verify_root(tmp_path)
    units = sorted(out.glob("hosts/*/*/*.service"))
    assert units
    for unit in units:
        run = _verify(root, unit)
        assert run.returncode == 0, run.stderr
        assert run.stdout + run.stderr == "", f"{unit}: {run.stdout}{run.stderr}"


def test_verify_does_catch_a_broken_unit(repo_root: Path, tmp_path: Path) -> None:
    """The gate above can fail: a misspelt restart policy is reported."""
    out = tmp_path / "staging"
    api.compile_environment(repo_root / "environments" / "staging.yaml", out)
    unit = next(out.glob("hosts/*/*/*.service"))
    broken = tmp_path / unit.name
    broken.write_text(unit.read_text().replace("Restart=always", "Restart=alwayz"))
    run = _verify(_verify_root(tmp_path), broken)
    assert "restart specifier" in run.stdout + run.stderr
