"""The wheel `pip install tfsconf` gets carries what apply needs at run time: the playbooks
(with their host modules and module_utils) and the templates, where the package looks for
them when it is not run from a checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _tracked(directory: str) -> set[str]:
    out = subprocess.run(
        ["git", "ls-files", directory], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return {line for line in out.splitlines() if line}


def test_the_wheel_ships_the_playbooks_and_templates(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("tfsconf-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    playbooks = _tracked("playbooks")
    templates = _tracked("templates")
    assert any(p.startswith("playbooks/module_utils/") for p in playbooks)
    missing = sorted(p for p in playbooks | templates if "tfsconf/_" + p not in names)
    assert not missing, f"not in the wheel: {missing}"
    # the package finds them there (tfsconf.apply.ansible.playbooks_dir)
    assert "tfsconf/_playbooks/rollout.yml" in names
    assert not any("__pycache__" in n for n in names)
