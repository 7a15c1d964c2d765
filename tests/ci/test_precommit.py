"""The shipped .pre-commit-hooks.yaml, run by the real pre-commit tool (`try-repo`) in a
throwaway repository that holds the bundled examples, as a spec repository would. The hooks
file is committed alone into a repository of its own first, so the test reads the working
tree's copy whatever the checkout's git state."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}
pytestmark = pytest.mark.slow


def run(cwd: Path, *argv: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **GIT_ENV,
        # the hooks are language: system: they run the tfsconf of this environment
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(home),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "specs"
    shutil.copytree(ROOT / "environments", repo / "environments")
    home = tmp_path / "home"
    assert run(repo, "git", "init", "-q", home=home).returncode == 0
    for spec in ("production", "staging"):
        compiled = run(
            repo,
            sys.executable,
            "-m",
            "tfsconf",
            "compile",
            f"environments/{spec}.yaml",
            "--out",
            f"build/{spec}",
            home=home,
        )
        assert compiled.returncode == 0, compiled.stderr
    assert run(repo, "git", "add", "-A", home=home).returncode == 0
    assert run(repo, "git", "commit", "-qm", "specs", home=home).returncode == 0
    return repo


def hooks_repo(tmp: Path) -> Path:
    hooks = tmp / "hooks"
    if not hooks.exists():
        hooks.mkdir()
        shutil.copyfile(ROOT / ".pre-commit-hooks.yaml", hooks / ".pre-commit-hooks.yaml")
        for argv in (("git", "init", "-q"), ("git", "add", "-A"), ("git", "commit", "-qm", "h")):
            assert run(hooks, *argv, home=tmp / "home").returncode == 0
    return hooks


def try_hook(repo: Path, hook: str) -> subprocess.CompletedProcess[str]:
    pre_commit = Path(sys.executable).parent / "pre-commit"
    return run(
        repo,
        str(pre_commit),
        "try-repo",
        str(hooks_repo(repo.parent)),
        hook,
        "--all-files",
        "--color",
        "never",
        home=repo.parent / "home",
    )


def test_validate_hook_passes_the_examples_and_fails_a_broken_spec(repo: Path) -> None:
    ok = try_hook(repo, "tfsconf-validate")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "tfsconf validate" in ok.stdout and "Passed" in ok.stdout

    spec = repo / "environments" / "staging.yaml"
    spec.write_text(spec.read_text().replace("max_batch_size: 128", "max_batch_size: -1", 1))
    bad = try_hook(repo, "tfsconf-validate")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Failed" in bad.stdout
    assert "environments/staging.yaml:" in bad.stdout
    assert "max_batch_size" in bad.stdout
    assert "Traceback" not in bad.stdout


def test_compile_check_hook_refuses_a_stale_build(repo: Path) -> None:
    ok = try_hook(repo, "tfsconf-compile-check")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    spec = repo / "environments" / "staging.yaml"
    spec.write_text(spec.read_text().replace("count: 2}", "count: 3}", 1))
    stale = try_hook(repo, "tfsconf-compile-check")
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "build/staging is stale" in stale.stdout
    assert "run: tfsconf compile environments/staging.yaml --out build/staging" in stale.stdout
