"""Fixtures of the docker runtime scenarios: one bed of three hosts, each with its own
Docker engine, shared by the scenarios of a module (they build on each other in order)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from .baseimage import BaseImage, base_image
from .dockerbed import DockerBed


@pytest.fixture(scope="session")
def standin_base() -> BaseImage:
    return base_image()


@pytest.fixture(scope="module")
def docker_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerBed]:
    bed = DockerBed.create(tmp_path_factory.mktemp("docker-bed"), "ssh", 3)
    try:
        yield bed
    finally:
        bed.close()


@pytest.fixture(scope="module")
def docker_model_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real SavedModel (built with TensorFlow), copied into every version."""
    path = Path(__file__).resolve().parents[1] / "warmup" / "savedmodels.py"
    spec = importlib.util.spec_from_file_location("docker_savedmodels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = tmp_path_factory.mktemp("model") / "template"
    module.build_mixed_model(target)
    return target
