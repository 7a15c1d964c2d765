"""The compiled output of both examples, byte for byte, against golden trees.

Refresh deliberately with: scripts/test tests/compile/test_golden.py --update-golden
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from tfsconf import api

TESTDATA = Path(__file__).parent / "testdata" / "golden"
EXAMPLES = ["production", "staging"]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("env", EXAMPLES)
def test_compiled_examples_match_golden(
    env: str, tmp_path: Path, repo_root: Path, update_golden: bool
) -> None:
    out = tmp_path / env
    api.compile_environment(repo_root / "environments" / f"{env}.yaml", out)
    golden = TESTDATA / env
    if update_golden:
        shutil.rmtree(golden, ignore_errors=True)
        shutil.copytree(out, golden)
    actual, expected = _tree(out), _tree(golden)
    problems: list[str] = []
    for rel in sorted(set(actual) | set(expected)):
        if rel not in expected:
            problems.append(f"unexpected file {rel}")
        elif rel not in actual:
            problems.append(f"missing file {rel}")
        elif actual[rel] != expected[rel]:
            problems.extend(
                difflib.unified_diff(
                    expected[rel].decode().splitlines(),
                    actual[rel].decode().splitlines(),
                    f"golden/{env}/{rel}",
                    f"compiled/{env}/{rel}",
                    lineterm="",
                )
            )
    assert not problems, (
        "compiled output differs from the golden files:\n"
        + "\n".join(problems)
        + "\nIf the change is intended, refresh with: "
        "scripts/test tests/compile/test_golden.py --update-golden"
    )
