"""Shared test options: golden files are refreshed only with --update-golden."""

from __future__ import annotations

from pathlib import Path

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


# How the suite is spread over pytest-xdist workers (scripts/test: --dist loadgroup).
# Tests of one file stay on one worker (their module fixtures: SavedModels, docker beds,
# the docker scenarios that build on each other in file order) except in the files below,
# whose tests each build their own test bed: those are handed out one test at a time.
SPREAD = (
    "tests/apply/test_apply.py",
    "tests/apply/test_apply_faults.py",
    "tests/apply/test_apply_fidelity.py",
    "tests/apply/test_hostile.py",
)
# Started first, longest first, so that no long group is left to run alone at the end.
FIRST = (
    "tests/docker/test_examples.py",
    "tests/docker/test_docker_runtime.py",
    *SPREAD,
)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        rel = item.path.relative_to(ROOT).as_posix()
        return FIRST.index(rel) if rel in FIRST else len(FIRST)

    items.sort(key=rank)  # stable: the order inside a file stays
    for item in items:
        rel = item.path.relative_to(ROOT).as_posix()
        if rel not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(rel))
