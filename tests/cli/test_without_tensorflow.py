"""Every command but `warmup verify --replay` works where TensorFlow and
tensorflow-serving-api cannot be imported at all, as in a base install (`pip install tfsconf`).

Each command runs in a subprocess whose sitecustomize (tests/notf_site) makes both packages
impossible to import and logs every attempt; a command passes only if it did its work and
attempted none. apply, status and rollback run the same way in every apply scenario
(tests/apply/scenario.py), which needs the root-only test bed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from notf import without_tensorflow_env

ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
}


class NoTensorFlow:
    """Runs `python -m tfsconf ...` with TensorFlow blocked; remembers blocked attempts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "blocked-imports.log"
        self.env = without_tensorflow_env(self.log)

    def __call__(self, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [sys.executable, "-m", "tfsconf", *args],
            cwd=self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert run.returncode == expect, (args, run.stdout[-2000:], run.stderr[-2000:])
        assert "Traceback" not in run.stderr, run.stderr
        return run

    def attempts(self) -> list[str]:
        return self.log.read_text().split() if self.log.exists() else []


@pytest.fixture
def notf(tmp_path: Path) -> NoTensorFlow:
    return NoTensorFlow(tmp_path)


def test_the_blocker_blocks(notf: NoTensorFlow) -> None:
    for module in ("tensorflow", "tensorflow_serving.apis.predict_pb2"):
        run = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            env=notf.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 1
        assert "ModuleNotFoundError" in run.stderr
    assert notf.attempts() == ["tensorflow", "tensorflow_serving"]


def test_spec_commands_without_tensorflow(notf: NoTensorFlow) -> None:
    repo = notf.workdir / "repo"
    shutil.copytree(ROOT / "environments", repo / "environments")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(
            ["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True, timeout=60
        )
    spec = str(repo / "environments" / "production.yaml")
    build = str(notf.workdir / "build")

    assert "valid" in notf("validate", spec).stdout
    notf("compile", spec, "--out", build)
    assert (Path(build) / "hosts" / "rank-a1" / "rank-gpu0" / "models.config").is_file()
    assert "No changes." in notf("plan", spec, "--base", "HEAD").stdout
    plan = str(notf.workdir / "plan.json")
    notf("plan", spec, "--no-diff", "--out", plan, expect=2)
    assert json.loads(Path(plan).read_text())["plans"]
    assert "Plan:" in notf("show", plan, expect=2).stdout
    assert notf.attempts() == []


def _mixed_model(version_dir: Path) -> Path:
    """The tests' real SavedModel, built with TensorFlow in this (dev) process."""
    path = ROOT / "tests" / "warmup" / "savedmodels.py"
    spec = importlib.util.spec_from_file_location("notf_savedmodels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.build_mixed_model(version_dir))


@pytest.mark.slow
def test_model_commands_without_tensorflow(notf: NoTensorFlow) -> None:
    version = _mixed_model(notf.workdir / "models" / "mixed" / "1")
    samples = notf.workdir / "samples.jsonl"
    samples.write_text(
        '{"dense": [0.5, 1.0, 1.5, 2.0], "count": 3, "tags": "a,b"}\n'
        '{"dense": [0.0, -1.0, 0.25, 4.0], "count": 0, "tags": "x"}\n'
    )
    notf("warmup", "generate", "--model-dir", str(version), "--samples", str(samples))
    warmup = version / "assets.extra" / "tf_serving_warmup_requests"
    assert warmup.stat().st_size > 0
    notf("warmup", "verify", str(version))
    notf("warmup", "verify", str(version), "--batching")
    notf("model", "check", str(version.parent), "--write-manifest")
    assert "no problems" in notf("model", "check", str(version.parent)).stdout
    assert notf.attempts() == []

    replay = notf("warmup", "verify", str(version), "--replay", expect=1)
    assert "pip install 'tfsconf[tensorflow]'" in replay.stderr
    assert notf.attempts() == ["tensorflow"]
