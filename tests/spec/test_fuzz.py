"""Property tests: what passes the safe value types cannot inject, and no spec, however
mangled, gets anything but a diagnostic (never a traceback)."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tfsconf.errors import SpecError, UserError
from tfsconf.spec import safe
from tfsconf.spec.load import load_environment

ENVIRONMENTS = Path(__file__).resolve().parents[2] / "environments"

# Characters that would end a shell word, a systemd or Dockerfile line, start an
# expansion ($, %, `), or quote.
DANGEROUS = set(" \t\n\r\x0b\x0c\"'`$;&|<>(){}[]*?!\\#%~") | {"\x00"}

SAFE_TYPES = {
    "Name": safe.Name,
    "HostName": safe.HostName,
    "AbsolutePath": safe.AbsolutePath,
    "RelativePath": safe.RelativePath,
    "ImageReference": safe.ImageReference,
    "ImageTag": safe.ImageTag,
    "AptPackage": safe.AptPackage,
    "EnvValue": safe.EnvValue,
    "GrpcChannelArgument": safe.GrpcChannelArgument,
    "Identifier": safe.Identifier,
    "UrlPath": safe.UrlPath,
    "Address": safe.Address,
}

# Text biased towards the characters the patterns care about.
ALPHABET = st.sampled_from(list("abcXYZ019_-.:/=,+@~%") + sorted(DANGEROUS) + ["é", "\u2028"])
TEXT = st.text(ALPHABET, min_size=1, max_size=40)


@pytest.mark.parametrize("name", sorted(SAFE_TYPES))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=TEXT)
def test_accepted_values_cannot_inject(name: str, value: str) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(SAFE_TYPES[name])
    try:
        accepted = adapter.validate_python(value)
    except ValidationError:
        return
    assert not DANGEROUS & set(accepted), f"{name} accepted {accepted!r}"
    assert accepted.isascii() or name == "Address"
    if name in ("AbsolutePath", "RelativePath"):
        assert ".." not in accepted.split("/")


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _leaves(v, (*path, k))] + [path]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _leaves(v, (*path, i))] + [path]
    return [path]


def _set(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return data


def _delete(data: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return None
    target = data
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return data


REPLACEMENTS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    TEXT,
    st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(TEXT, st.integers(), max_size=2),
)


@pytest.fixture(scope="module")
def production() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ENVIRONMENTS / "production.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example's samples, so relative warmup paths resolve outside the repo."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ENVIRONMENTS / "samples", root / "samples")
    return root


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mangled_specs_get_diagnostics_not_tracebacks(
    data: st.DataObject, production: dict[str, Any], workdir: Path
) -> None:
    spec = copy.deepcopy(production)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        leaves = _leaves(spec)
        if not leaves:
            break
        path = data.draw(st.sampled_from(leaves), label="path")
        if path and data.draw(st.booleans(), label="delete"):
            spec = _delete(spec, path)
        else:
            spec = _set(spec, path, data.draw(REPLACEMENTS, label="value"))
    target = workdir / "mangled.yaml"
    target.write_text(yaml.safe_dump(spec, allow_unicode=True))
    try:
        load_environment(target)
    except SpecError as exc:
        assert exc.diagnostics
        for diagnostic in exc.diagnostics:
            assert diagnostic.file == str(target)
            assert diagnostic.message
            assert diagnostic.render()


YAMLISH = st.lists(
    st.sampled_from([*"ab1:-[]{},&*!|>'\"#% \n\t?@`", "!!python/object:os.system ", "<<"]),
    max_size=80,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=YAMLISH)
def test_arbitrary_text_is_a_diagnostic_not_a_crash(text: str) -> None:
    try:
        load_environment("fuzz.yaml", source=text.encode())
    except UserError as exc:  # SpecError included
        assert str(exc)
