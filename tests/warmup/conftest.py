"""Session-scoped real SavedModels (built once with TensorFlow) and sample files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from savedmodels import MIXED_SAMPLES, build_mixed_model, build_split_model


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<root>/mixed/1 and <root>/split/1, built once; tests copy them before changing."""
    root = tmp_path_factory.mktemp("built")
    build_mixed_model(root / "mixed" / "1")
    build_split_model(root / "split" / "1")
    return root


@pytest.fixture
def mixed_model(built_models: Path, tmp_path: Path) -> Path:
    """A private copy of the mixed model's version directory: <tmp>/models/mixed/1."""
    target = tmp_path / "models" / "mixed" / "1"
    shutil.copytree(built_models / "mixed" / "1", target)
    return target


@pytest.fixture
def split_model(built_models: Path, tmp_path: Path) -> Path:
    """A private copy of the split model's version directory: <tmp>/models/split/1."""
    target = tmp_path / "models" / "split" / "1"
    shutil.copytree(built_models / "split" / "1", target)
    return target


@pytest.fixture
def mixed_samples(tmp_path: Path) -> Path:
    """A JSONL sample file for the mixed model (with an extra 'label' the model ignores)."""
    path = tmp_path / "samples" / "mixed.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in MIXED_SAMPLES))
    return path
