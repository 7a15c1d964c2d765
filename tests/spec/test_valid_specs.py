"""The shipped example environments are valid and warning-free; the schema command works."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfsconf.spec.model import Environment
from tfsconf.validate.load import load_environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "environments").glob("*.yaml"))
EXPECTED_EXAMPLES = {"production", "staging"}
# Warnings each example is expected to produce: none. A new warning is a finding to
# report, not something to silence here.
EXPECTED_WARNINGS: dict[str, list[str]] = {"production": [], "staging": []}
TOP_LEVEL_KEYS = {
    "schema_version",
    "environment",
    "tfserving_version",
    "image",
    "paths",
    "connection",
    "runtime",
    "docker_network",
    "rollout",
    "defaults",
    "host_groups",
    "servers",
    "models",
}
REQUIRED_KEYS = {"environment", "tfserving_version", "host_groups", "servers", "models"}


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tfsconf", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_both_examples_are_present() -> None:
    assert {path.stem for path in EXAMPLES} >= EXPECTED_EXAMPLES


@pytest.mark.parametrize("spec", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_validates_with_expected_warnings(spec: Path) -> None:
    loaded = load_environment(spec)

    warnings = [d.render() for d in loaded.warnings]
    assert all(d.severity == "warning" for d in loaded.warnings)
    assert warnings == EXPECTED_WARNINGS.get(spec.stem, []), "\n".join(warnings)
    assert loaded.resolved.name == spec.stem


@pytest.mark.parametrize("spec", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_cli_validate_accepts_example(spec: Path) -> None:
    result = _run_cli("validate", str(spec))

    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert f"{spec}: valid: environment {spec.stem}" in result.stdout


def test_schema_command_prints_the_environment_schema() -> None:
    result = _run_cli("schema")

    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert schema["title"] == "tfsconf environment spec"
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == TOP_LEVEL_KEYS == set(Environment.model_fields)
    assert set(schema["required"]) == REQUIRED_KEYS
    # extra="forbid" reaches editors too: a typo in a top-level key is flagged there
    assert schema["additionalProperties"] is False
    assert {"Server", "Model", "HostGroup"} <= set(schema["$defs"])
