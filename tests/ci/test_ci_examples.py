"""The CI examples under examples/ci are valid YAML and call only options that exist: the
plan command's options against `tfsconf plan --help`, the poster's against its parser."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tfsconf import ci_comment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ci"


def commands(path: Path) -> list[str]:
    """Every shell line of the example, folded scalars joined."""
    document = yaml.safe_load(path.read_text())
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("run", "script", "before_script") and isinstance(value, str):
                    found.append(value.replace("\\\n", " "))
                elif key in ("script", "before_script") and isinstance(value, list):
                    found.extend(str(v) for v in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(document)
    return found


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_example_uses_real_options(name: str) -> None:
    shell = " ".join(commands(EXAMPLES / name))
    plan_help = subprocess.run(
        [sys.executable, "-m", "tfsconf", "plan", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    ).stdout
    plan_calls = re.findall(r"tfsconf plan ([^>|;]*)", shell)
    assert plan_calls, shell
    for call in plan_calls:
        for option in re.findall(r"(--[a-z][a-z-]*)", call):
            assert option in plan_help, f"{name}: tfsconf plan has no {option}"
    post_calls = re.findall(r"python -m tfsconf\.ci_comment ([^\n;|&]*)", shell)
    assert post_calls, shell
    for call in post_calls:
        args = ci_comment.parse_args(call.split())
        assert args.platform in ("github", "gitlab") and args.plan == "plan.md"
