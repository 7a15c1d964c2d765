"""Test-bed fixtures: a fresh bed per test (building one takes about 0.15 s), always closed."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

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
