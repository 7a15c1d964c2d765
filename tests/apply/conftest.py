"""Test-bed fixtures: a fresh bed per test (building one takes about 0.15 s), always closed."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .scenario import Scenario
from .testbed import Mode, TestBed

BedFactory = Callable[..., TestBed]


@pytest.fixture
def make_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BedFactory]:
    """Build beds with other host counts; every bed built is closed after the test."""
    beds: list[TestBed] = []

    def make(mode: Mode = "ssh", n_hosts: int = 3) -> TestBed:
        bed = TestBed.create(tmp_path_factory.mktemp(f"bed-{mode}"), mode, n_hosts)
        beds.append(bed)
        return bed

    yield make
    errors = []
    for bed in reversed(beds):
        try:
            bed.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def ssh_bed(make_bed: BedFactory) -> TestBed:
    return make_bed("ssh")


@pytest.fixture
def local_bed(make_bed: BedFactory) -> TestBed:
    return make_bed("local")


@pytest.fixture(params=["ssh", "local"], ids=["ssh", "local"])
def bed(request: pytest.FixtureRequest, make_bed: BedFactory) -> TestBed:
    return make_bed(request.param)


@pytest.fixture(scope="session")
def model_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real SavedModel (built with TensorFlow), copied into every version a test needs;
    under pytest-xdist the workers of one run share it (built once, under a file lock)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    target = shared / "apply-model" / "template"
    target.parent.mkdir(exist_ok=True)
    with (shared / "apply-model.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            import importlib.util

            path = Path(__file__).resolve().parents[1] / "warmup" / "savedmodels.py"
            spec = importlib.util.spec_from_file_location("apply_savedmodels", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            partial = target.with_name("template.partial")
            shutil.rmtree(partial, ignore_errors=True)
            module.build_mixed_model(partial)
            partial.rename(target)
    return target


@pytest.fixture
def scenario(ssh_bed: TestBed, tmp_path: Path, model_template: Path) -> Scenario:
    """A scenario on the ssh bed (the connection real fleets use). Each end-to-end scenario
    runs once; what is specific to the local connection has its own tests (`any_scenario`
    and tests/apply/test_testbed.py)."""
    return Scenario(ssh_bed, tmp_path / "work", model_template)


@pytest.fixture
def any_scenario(bed: TestBed, tmp_path: Path, model_template: Path) -> Scenario:
    """A scenario in both bed modes, for the tests that prove each connection works."""
    return Scenario(bed, tmp_path / "work", model_template)
