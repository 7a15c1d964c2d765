"""Shared test options: golden files are refreshed only with --update-golden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def repo_root() -> Path:
    return ROOT


# How the suite is spread over pytest-xdist workers (scripts/test: --dist loadscope
# --no-loadscope-reorder, with the scopes below). Tests of one file stay on one worker
# (their module fixtures: SavedModels, docker beds, the docker scenarios that build on each
# other in file order) except in the files below, whose tests each build their own test bed:
# those are handed out one test at a time. (xdist_group marks cannot do this under pytest 9:
# xdist 3.8 tags a grouped test by rewriting `item._nodeid`, which pytest 9 no longer reads.)
SPREAD = (
    "tests/apply/test_apply.py",
    "tests/apply/test_apply_faults.py",
    "tests/apply/test_apply_fidelity.py",
    "tests/apply/test_hostile.py",
)
# Handed out first, longest first (the scheduler keeps the collection order), so that no
# long file is left to run alone at the end.
FIRST = (
    "tests/docker/test_examples.py",
    "tests/docker/test_docker_runtime.py",
    *SPREAD,
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        rel = item.path.relative_to(ROOT).as_posix()
        return FIRST.index(rel) if rel in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the order inside a file stays


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under --dist loadscope: a file per scope, but a test per scope in SPREAD."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileOrTest(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path in SPREAD else path

    return FileOrTest(config, log)
