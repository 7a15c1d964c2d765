"""--base reads the spec's directory at a commit; what it must refuse, cleanly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        check=True,
        capture_output=True,
    )


def test_a_base_commit_with_a_link_out_of_the_tree_is_refused_without_a_traceback(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    git(repo, "init", "-q")
    (repo / "environments" / "samples" / "link").symlink_to("/etc/hostname")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base with an absolute link")
    run = subprocess.run(
        [sys.executable, "-m", "tfsconf", "plan", "environments/staging.yaml", "--base", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    assert "cannot export environments from that commit safely" in run.stderr


def _plan(repo: Path, ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsconf", "plan", "environments/staging.yaml", "--base", ref],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_a_base_missing_from_a_shallow_clone_says_how_to_fetch_it(tmp_path: Path) -> None:
    """A CI checkout (one commit, one branch) lacks the pull request's base: the error says
    the clone is shallow and gives the fetch command, and that command makes plan work."""
    upstream = tmp_path / "upstream"
    shutil.copytree(ROOT / "environments", upstream / "environments")
    git(upstream, "init", "-q")
    git(upstream, "add", "-A")
    git(upstream, "commit", "-qm", "base")
    git(upstream, "branch", "target")
    spec = upstream / "environments" / "staging.yaml"
    spec.write_text(spec.read_text().replace("count: 2}", "count: 3}", 1))
    git(upstream, "commit", "-qam", "change")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth", "1", "--branch", "main", upstream.as_uri(), "clone")

    missing = _plan(clone, "origin/target")
    assert missing.returncode == 1, missing.stderr
    assert "Traceback" not in missing.stderr
    fetch = "git fetch --no-tags origin target:refs/remotes/origin/target"
    assert "this clone is shallow" in missing.stderr
    assert f"`{fetch}`" in missing.stderr

    git(clone, *fetch.split()[1:])
    fetched = _plan(clone, "origin/target")
    assert fetched.returncode == 2, fetched.stderr
    assert "count" in fetched.stdout or "version" in fetched.stdout
