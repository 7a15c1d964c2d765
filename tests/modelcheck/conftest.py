"""Real SavedModels for model checks, built once per session with TensorFlow.

The builders live in tests/warmup/savedmodels.py (shared with the warmup tests); it is
loaded by path because the test directories are not packages.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest


def _load_builders() -> ModuleType:
    path = Path(__file__).parent.parent / "warmup" / "savedmodels.py"
    spec = importlib.util.spec_from_file_location("tfsconf_test_savedmodels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


builders = _load_builders()


@pytest.fixture(scope="session")
def built_check_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("check-models")
    builders.build_mixed_model(root / "mixed")
    builders.build_sharded_model(root / "sharded")
    return root


@pytest.fixture
def base_path(built_check_models: Path, tmp_path: Path) -> Path:
    """A base path holding a private copy of the mixed model as version 1."""
    base = tmp_path / "models" / "mixed"
    shutil.copytree(built_check_models / "mixed", base / "1")
    return base


@pytest.fixture
def sharded_base(built_check_models: Path, tmp_path: Path) -> Path:
    """A base path whose version 7 has four variables data shards."""
    base = tmp_path / "models" / "sharded"
    shutil.copytree(built_check_models / "sharded", base / "7")
    return base
