"""The artifact registry is the only place that spells an artifact's file name, and every
other copy of a name (the flags that point at the files, the host-side code) agrees
with it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tfsconf.compile import artifacts
from tfsconf.compile.artifacts import (
    ARTIFACTS,
    DOCKERFILE,
    LAUNCH,
    MODEL_BATCHING,
    SERVER_ARTIFACTS,
    Placement,
    Read,
)

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "tfsconf"
GOLDEN = Path(__file__).parent / "testdata" / "golden"

ALLOWED = {
    # The flags name the files the server reads; resolve builds them and must not import
    # compile/, so the four names live there and the registry takes them from it
    # (test_flags_name_the_registry_files checks them against the registry).
    "resolve/flags.py",
}


def _file_names() -> set[str]:
    """The literal file-name parts of every pattern (`models.config`, `.service`, ...)."""
    names: set[str] = set()
    for artifact in ARTIFACTS:
        for part in re.split(r"\{\w+\}|/", artifact.pattern):
            if "." in part or part == "Dockerfile":
                names.add(part)
    return names


def _docstrings(tree: ast.AST) -> set[int]:
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for statement in body:
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                    found.add(id(statement.value))
    return found


def _is_name(value: str, names: set[str]) -> bool:
    """A file name or a path to one; prose (with spaces) mentioning a name is not."""
    if " " in value:
        return False
    stripped = value.strip("/")
    return stripped in names or any(
        stripped.endswith("/" + name) or stripped.startswith(name + "/") for name in names
    )


def strays(root: Path) -> list[str]:
    names = _file_names()
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel == "compile/artifacts.py" or rel in ALLOWED or rel.startswith("protos/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and _is_name(node.value, names)
            ):
                out.append(f"{rel}:{node.lineno}: {node.value!r}")
    return out


def test_no_artifact_file_name_outside_the_registry() -> None:
    assert strays(PACKAGE) == []


def test_the_stray_check_finds_a_file_name(tmp_path: Path) -> None:
    """The check above can fail: a classification by name, an f-string path, a unit."""
    (tmp_path / "m.py").write_text(
        'A = "server.flags"\n'
        'def f(s):\n    """models.config in a docstring is prose."""\n'
        '    return f"{s}/models.config", f"tfserving-{s}.service", "the models.config changed"\n'
    )
    assert strays(tmp_path) == [
        "m.py:1: 'server.flags'",
        "m.py:4: '/models.config'",
        "m.py:4: '.service'",
    ]


@pytest.mark.parametrize("env", ["production", "staging"])
def test_every_compiled_file_is_one_registered_kind(env: str) -> None:
    root = GOLDEN / env
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        split = artifacts.split_host_path(rel)
        if split is None:
            candidates = artifacts.ENVIRONMENT_ARTIFACTS
            inner = rel
        elif artifacts.server_of(split[1]) is None:
            candidates, inner = artifacts.HOST_ARTIFACTS, split[1]
        else:
            candidates, inner = SERVER_ARTIFACTS, split[1].partition("/")[2]
        matches = [a.kind for a in candidates if a.match(inner) is not None]
        assert len(matches) == 1, f"{rel}: {matches}"


def test_kinds_are_declared_once() -> None:
    kinds = [a.kind for a in ARTIFACTS]
    patterns = [(a.scope, a.pattern) for a in ARTIFACTS]
    assert len(set(kinds)) == len(kinds)
    assert len(set(patterns)) == len(patterns)
    # what a change costs follows from when TF Serving reads the file
    assert {a.kind for a in ARTIFACTS if a.read is Read.CONFIG_RELOAD} == {"models_config"}
    assert MODEL_BATCHING.read is Read.VERSION_LOAD
    assert DOCKERFILE.read is Read.IMAGE_BUILD
    assert all(Placement.RELEASE_DIR in a.placements for a in SERVER_ARTIFACTS)


@pytest.mark.parametrize("env", ["production", "staging"])
def test_flags_name_the_registry_files(env: str) -> None:
    """Each flag that points at an artifact points at the file the registry renders, in
    the release the server runs (`current`), and only when that file is rendered."""
    from tfsconf.compile.bundle import build_bundle
    from tfsconf.compile.templating import Templates
    from tfsconf.resolve.flags import server_flags
    from tfsconf.validate.load import load_environment

    resolved = load_environment(REPO / "environments" / f"{env}.yaml").resolved
    job = artifacts.Compilation(build_bundle(resolved).image_refs, Templates())
    flagged = [a for a in SERVER_ARTIFACTS if a.flag is not None]
    assert flagged
    seen: set[str] = set()
    for host in resolved.hosts:
        for server in host.servers:
            rendered = {rel for rel, _ in artifacts.render_server(server, resolved, job)}
            flags = {f.name: f.value for f in server_flags(server)}
            for artifact in flagged:
                assert artifact.flag is not None
                if artifact.path() in rendered:
                    seen.add(artifact.kind)
                    assert flags[artifact.flag] == f"{server.config_dir}/current/{artifact.path()}"
                else:
                    assert artifact.flag not in flags, (server.name, artifact.flag)
    assert "models_config" in seen


def test_host_side_code_uses_the_registry_names() -> None:
    """The playbooks' modules cannot import tfsconf: their copies of a name are checked."""
    sync = (REPO / "playbooks" / "module_utils" / "tfsconf_sync_files.py").read_text()
    assert f'BATCHING_REL = "{artifacts.version_dir_file(MODEL_BATCHING)}"' in sync
    supervisor = (REPO / "playbooks" / "files" / "tfsconf_supervise.py").read_text()
    assert f'"current", "{LAUNCH.path()}"' in supervisor
    image = (REPO / "playbooks" / "tasks" / "image.yml").read_text()
    assert "/images/{{ image.name }}/" + DOCKERFILE.pattern.rsplit("/", 1)[1] in image
