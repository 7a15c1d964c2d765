"""The environment of a tfsconf subprocess that cannot import TensorFlow or
tensorflow-serving-api (tests/notf_site/sitecustomize.py), as in a base install.

Shared by tests/cli/test_without_tensorflow.py and the apply scenarios (importable because
tests/ is on sys.path)."""

from __future__ import annotations

import os
from pathlib import Path

BLOCKER_DIR = Path(__file__).resolve().parent / "notf_site"


def without_tensorflow_env(import_log: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(BLOCKER_DIR), env.get("PYTHONPATH", "")) if p
    )
    if import_log is not None:
        env["TFSCONF_BLOCKED_IMPORT_LOG"] = str(import_log)
    return env
