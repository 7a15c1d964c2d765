"""tfsconf.ci_comment (python -m) against a local stand-in of the GitHub and GitLab comment APIs:
one comment per pull request, created once and edited on every later run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .forge_standin import TOKEN, Forge, serve


@pytest.fixture
def forge() -> Iterator[tuple[Forge, str]]:
    state = Forge()
    for i in range(150):  # two pages of other people's comments first
        state.add(f"review comment {i}")
    server, url = serve(state)
    yield state, url
    server.shutdown()
    server.server_close()


def post(
    plan: Path, platform: str, url: str, token: str = TOKEN, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "CI_"))}
    if platform == "github":
        env |= {"GITHUB_API_URL": url, "GITHUB_TOKEN": token, "GITHUB_REPOSITORY": "acme/specs"}
        args = ["--github", "--pr", "7"]
    else:
        env |= {
            "CI_API_V4_URL": f"{url}/api/v4",
            "GITLAB_TOKEN": token,
            "CI_PROJECT_ID": "acme/specs",
            "CI_MERGE_REQUEST_IID": "7",
        }
        args = ["--gitlab"]
    return subprocess.run(
        [sys.executable, "-m", "tfsconf.ci_comment", *args, *extra, str(plan)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def ours(forge: Forge) -> list[dict[str, object]]:
    return [c for c in forge.comments if "<!-- tfsconf-plan:" in str(c["body"])]


@pytest.mark.parametrize("platform", ["github", "gitlab"])
def test_one_comment_is_created_then_updated(
    forge: tuple[Forge, str], platform: str, tmp_path: Path
) -> None:
    state, url = forge
    plan = tmp_path / "plan.md"
    plan.write_text("### tfsconf plan\n\n- first\n")
    first = post(plan, platform, url)
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    plan.write_text("### tfsconf plan\n\n- second\n")
    second = post(plan, platform, url)
    assert second.returncode == 0, second.stderr
    assert "updated" in second.stdout
    (comment,) = ours(state)
    assert comment["body"] == "<!-- tfsconf-plan:default -->\n### tfsconf plan\n\n- second\n"
    assert len(state.comments) == 151
    assert [c["body"] for c in state.comments[:150]] == [f"review comment {i}" for i in range(150)]
    for run in (first, second):
        assert TOKEN not in run.stdout + run.stderr


def test_keys_keep_two_environments_apart(forge: tuple[Forge, str], tmp_path: Path) -> None:
    state, url = forge
    plan = tmp_path / "plan.md"
    plan.write_text("plan\n")
    for key in ("production", "staging", "production"):
        assert post(plan, "github", url, TOKEN, "--key", key).returncode == 0
    assert sorted(str(c["body"]).splitlines()[0] for c in ours(state)) == [
        "<!-- tfsconf-plan:production -->",
        "<!-- tfsconf-plan:staging -->",
    ]


def test_a_bad_token_fails_without_printing_it(forge: tuple[Forge, str], tmp_path: Path) -> None:
    _, url = forge
    plan = tmp_path / "plan.md"
    plan.write_text("plan\n")
    wrong = "wrong-token-value"
    run = post(plan, "github", url, wrong)
    assert run.returncode == 1
    assert "HTTP 401" in run.stderr
    assert wrong not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr


def test_a_comment_over_githubs_limit_is_refused(forge: tuple[Forge, str], tmp_path: Path) -> None:
    state, url = forge
    plan = tmp_path / "plan.md"
    plan.write_text("x" * 70_000)
    run = post(plan, "github", url)
    assert run.returncode == 1
    assert "over GitHub's 65536" in run.stderr
    assert ours(state) == []


def test_the_pull_request_number_comes_from_the_actions_event(
    forge: tuple[Forge, str], tmp_path: Path
) -> None:
    state, url = forge
    plan = tmp_path / "plan.md"
    plan.write_text("plan\n")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")},
        "GITHUB_API_URL": url,
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_REPOSITORY": "acme/specs",
        "GITHUB_EVENT_PATH": str(event),
    }
    run = subprocess.run(
        [sys.executable, "-m", "tfsconf.ci_comment", "--github", str(plan)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert len(ours(state)) == 1
