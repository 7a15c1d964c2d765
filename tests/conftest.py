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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`scripts/test` runs `-n`, with `--dist loadgroup`): a test that
    builds its own test bed (`make_bed`) goes to whichever worker is free; every other test
    stays with the rest of its module on one worker, so module and session fixtures (the
    SavedModels TensorFlow builds, the docker bed whose scenarios build on each other in
    file order) are built once and used in order."""
    # always marked (harmless without xdist): in xdist's worker processes, which collect,
    # the plugin is not registered under the name "xdist", and a check for it skipped this
    for item in items:
        own_bed = "make_bed" in getattr(item, "fixturenames", ())
        # the docker scenarios share one module-scoped bed and build on each other in file
        # order, whatever fixtures they also ask for: they always stay together (by path:
        # their `docker` marker is added by a later hook)
        if not own_bed or item.nodeid.startswith("tests/docker/"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
