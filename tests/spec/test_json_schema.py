"""The editor schema (`tfsconf schema`) against validate.

Editors check specs with the JSON Schema alone, so it must say what validate says wherever
a JSON Schema can, and never flag a spec validate accepts. Checked here with the
`jsonschema` library (Draft 2020-12), with ECMA-262's `$` (the end of the text, as in the
editors' JavaScript; Python's `$` also matches before a final newline):

- every field has a description (the hover text);
- no null is allowed anywhere (validate refuses null);
- each bad spec under testdata/bad is refused by the schema, at the path validate reports
  (or above it), unless the rule it breaks is one a JSON Schema cannot express (listed
  below, each with why); those are accepted by the schema;
- the bundled examples, and every mutant of them validate accepts, pass the schema;
- each value type's schema accepts exactly what its validator accepts (hypothesis).
"""

from __future__ import annotations

import copy
import functools
import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import specfuzz
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError
from test_bad_specs import BAD, CASES, read_expected

from tfsconf.errors import SpecError
from tfsconf.secrets import SECRET_QUERY_PARAMETERS
from tfsconf.spec import safe
from tfsconf.spec.json_schema import _SpecJsonSchema, environment_schema
from tfsconf.validate.load import load_environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "environments").glob("*.yaml"))

# Bad specs the schema accepts, and why no JSON Schema can refuse them.
NOT_EXPRESSIBLE = {
    "allowed_sizes_splitting_last_not_max": "compares two values (last size, max_batch_size)",
    "batch_sizes_last_not_max": "compares two values (last size, max_batch_size)",
    "batch_sizes_not_increasing": "order of a list's items",
    "base_path_nested": "compares the paths of two models",
    "base_path_outside_model_root": "compares base_path with paths.model_root",
    "duplicate_model_name": "uniqueness of one key across list items",
    "gpu_fractions_over_one": "sums values across servers",
    "gpu_index_out_of_range": "compares a server's gpu with its hosts' gpus",
    "gpu_shared_without_fractions": "compares servers' gpu indices",
    "label_unserved_version": "compares a label with the versions list",
    "max_execution_over_max_batch": "compares two values",
    "parallelism_all_three_layered": "needs the defaults layers",
    "per_model_batching_on_shared_server": "needs the serving server's settings",
    "per_model_batching_on_unbatched_server": "needs the serving server's settings",
    "port_clash_in_group": "compares ports across servers",
    "prometheus_default_without_rest_port": "needs the defaults layers",
    "rest_port_equals_grpc_port": "compares two values",
    "several_reference_errors": "references between lists",
    "shared_model_conflicting_version_files": "compares servers sharing a model",
    "unknown_host_group": "a reference to a host_groups key",
    "unknown_model_on_server": "a reference to a model name",
}
# Refused by the YAML layer itself (yaml-language-server reports these on its own).
YAML_LEVEL = {"duplicate_yaml_key", "python_tag", "yaml_syntax_error"}


def _ecma_pattern(
    validator: Any, pattern: str, instance: Any, schema: Any
) -> Iterator[jsonschema.ValidationError]:
    assert "\\$" not in pattern, "a literal $ in a pattern: rewrite this adapter"
    if isinstance(instance, str) and not re.search(pattern.replace("$", r"\Z"), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_Validator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"pattern": _ecma_pattern}
)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    built = environment_schema()
    jsonschema.Draft202012Validator.check_schema(built)
    return built


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    return _Validator(schema)


def _objects(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    yield "<root>", schema
    yield from schema["$defs"].items()


def test_every_field_has_a_description(schema: dict[str, Any]) -> None:
    fields = [
        (name, field, prop)
        for name, definition in _objects(schema)
        for field, prop in definition.get("properties", {}).items()
    ]
    assert len(fields) > 150
    undescribed = [f"{name}.{field}" for name, field, prop in fields if not prop.get("description")]
    assert not undescribed
    assert all("\n" not in prop["description"] for _, _, prop in fields)


def test_no_null_anywhere(schema: dict[str, Any]) -> None:
    def walk(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            if node.get("type") == "null" or ("default" in node and node["default"] is None):
                yield where
            for key, value in node.items():
                yield from walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, f"{where}/{index}")
                if value is None:
                    yield f"{where}/{index}"

    assert list(walk(schema, "#")) == []


def test_every_bad_spec_is_classified() -> None:
    schema_cases = set(CASES) - set(NOT_EXPRESSIBLE) - YAML_LEVEL
    assert set(NOT_EXPRESSIBLE) | YAML_LEVEL <= set(CASES)
    assert len(schema_cases) >= 30  # most of validate's refusals reach the editor


def _path(error: jsonschema.ValidationError) -> str:
    parts = ""
    for part in error.absolute_path:
        parts += f"[{part}]" if isinstance(part, int) else f".{part}"
    return parts.lstrip(".") or "<root>"


@pytest.mark.parametrize("case", [c for c in CASES if c not in YAML_LEVEL])
def test_schema_agrees_with_validate_on_bad_spec(case: str, validator: Any) -> None:
    data = yaml.safe_load((BAD / f"{case}.yaml").read_text(encoding="utf-8"))
    errors = list(validator.iter_errors(data))
    if case in NOT_EXPRESSIBLE:
        assert errors == [], f"{case}: the schema refuses more than validate can say"
        return
    assert errors, f"{case}: validate refuses it, the schema accepts it"
    expected = [item.path for item in read_expected(case)]
    for error in errors:
        where = _path(error)
        assert any(
            path == where or where == "<root>" or path.startswith((f"{where}.", f"{where}["))
            for path in expected
        ), f"{case}: schema error at {where} ({error.message[:200]}); validate says {expected}"


@pytest.mark.parametrize("case", sorted(YAML_LEVEL))
def test_yaml_level_cases_fail_in_the_yaml_layer(case: str) -> None:
    text = (BAD / f"{case}.yaml").read_text(encoding="utf-8")
    if case == "duplicate_yaml_key":
        # PyYAML keeps the last value; a YAML 1.2 parser (the editor's) refuses the file
        assert re.search(r"(?m)^(\s+)(\w+):.*\n(?:\1\s.*\n|\1\w+:.*\n)*?\1\2:", text)
        return
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(text)


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_pass_the_schema(spec: Path, validator: Any) -> None:
    errors = [
        f"{_path(e)}: {e.message}" for e in validator.iter_errors(yaml.safe_load(spec.read_text()))
    ]
    assert errors == []


def test_specs_validate_accepts_pass_the_schema(validator: Any, tmp_path: Path) -> None:
    """Mutants of the examples (tests/specfuzz.py's deletions, swaps, duplicates and odd
    numbers, which validate often accepts): whatever validate accepts, the editor must not
    flag."""
    shutil.copytree(ROOT / "environments" / "samples", tmp_path / "samples")
    spec = tmp_path / "mutant.yaml"
    bases = specfuzz.examples()
    kinds = ("delete", "delete", "swap", "duplicate", "number")
    accepted = refused_by_both = 0
    for index in range(60):
        rng = random.Random(f"schema:{index}")
        name = sorted(bases)[index % len(bases)]
        mutant = specfuzz.Mutant(copy.deepcopy(bases[name]))
        specfuzz._MUTATIONS[rng.choice(kinds)](mutant, rng)
        data = yaml.safe_load(mutant.text())
        spec.write_text(mutant.text(), encoding="utf-8")
        try:
            load_environment(spec)
        except SpecError:
            refused_by_both += not validator.is_valid(data)
            continue
        accepted += 1
        errors = [f"{_path(e)}: {e.message[:200]}" for e in validator.iter_errors(data)]
        assert errors == [], f"case {index} ({name}): validate accepts it\n{mutant.text()}"
    assert accepted >= 15 and refused_by_both >= 5, (accepted, refused_by_both)


# --- each value type: the schema's pattern against the validator -------------------------

VALUE_TYPES: dict[str, Any] = {
    "Name": safe.Name,
    "HostName": safe.HostName,
    "LabelName": safe.LabelName,
    "AbsolutePath": safe.AbsolutePath,
    "RelativePath": safe.RelativePath,
    "SamplesPath": safe.SamplesPath,
    "Address": safe.Address,
    "ImageRepository": safe.ImageRepository,
    "ImageReference": safe.ImageReference,
    "ImageTag": safe.ImageTag,
    "AptPackage": safe.AptPackage,
    "EnvValue": safe.EnvValue,
    "Url": safe.Url,
    "EnvName": safe.EnvName,
    "UserName": safe.UserName,
    "GrpcChannelArgument": safe.GrpcChannelArgument,
    "TfServingVersion": safe.TfServingVersion,
    "Identifier": safe.Identifier,
    "UrlPath": safe.UrlPath,
}

_CHARS = st.sampled_from([*"abcXYZ0159_-.:/=,+@~%?&#[] \n\té", "..", "//", "::"])
_TEXT = st.lists(_CHARS, min_size=0, max_size=30).map("".join)
_LABEL = st.from_regex(
    r"[a-z0-9]([a-z0-9-]{0,3}[a-z0-9])?|0x[0-9a-f]{0,2}|[0-9]{1,3}", fullmatch=True
)


def _zone(address: Any) -> Any:
    return st.one_of(
        st.just(str(address)),
        st.builds(lambda z: f"{address}%{z}", st.text("ab0_.-%", min_size=0, max_size=17)),
    )


def _ipv6_forms(address: Any) -> Any:
    return st.sampled_from([address.compressed, address.exploded, address.compressed.upper()])


_ADDRESSES = st.one_of(
    _TEXT,
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=4).map(
        lambda a: ".".join(f"0{p}" if p == "7" else p for p in str(a).split("."))
    ),
    st.ip_addresses(v=6).flatmap(_ipv6_forms).flatmap(_zone),
    st.ip_addresses(v=4).map(lambda a: f"::ffff:{a}").flatmap(_zone),
    st.lists(_LABEL, min_size=1, max_size=5).map(".".join),
    st.lists(
        st.sampled_from(["1", "ab", "::", ":", "ffff", "12345", "1.2.3.4", "g"]), max_size=10
    ).map("".join),
)


def _secret_url(draw: Any) -> str:
    name = draw(st.sampled_from([*sorted(SECRET_QUERY_PARAMETERS), "version", "user", "tokens"]))
    spelled = "".join(
        draw(st.sampled_from([ch.lower(), ch.upper(), f"%{ord(ch):02x}", f"%{ord(ch):02X}"]))
        for ch in name
    )
    before = draw(st.sampled_from(["", "a=1&", "x&"]))
    after = draw(st.sampled_from(["=v", "", "&b=2", "=v&c"]))
    return f"https://h.example:8080/models/ctr?{before}{spelled}{after}"


_URLS = st.one_of(_TEXT, st.composite(_secret_url)(), _TEXT.map(lambda t: f"webhdfs://nn:9870/{t}"))
_STRATEGIES = {"Address": _ADDRESSES, "Url": _URLS}


@functools.cache
def _type_check(name: str) -> tuple[TypeAdapter[Any], Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(VALUE_TYPES[name])
    return adapter, _Validator(adapter.json_schema(schema_generator=_SpecJsonSchema))


@pytest.mark.parametrize("name", sorted(VALUE_TYPES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_value_type_schema_accepts_what_its_validator_accepts(name: str, data: Any) -> None:
    adapter, check = _type_check(name)
    value = data.draw(_STRATEGIES.get(name, _TEXT), label="value")
    try:
        adapter.validate_python(value)
        accepted = True
    except ValidationError:
        accepted = False
    assert check.is_valid(value) == accepted, (
        f"{name}: validate {'accepts' if accepted else 'refuses'} {value!r}"
    )


@given(
    major=st.integers(0, 120),
    minor=st.integers(0, 120),
    zeros=st.sampled_from(["", "0", "00"]),
)
def test_release_floor_matches_validate(major: int, minor: int, zeros: str, schema: Any) -> None:
    from tfsconf.tfserving.flags import OLDEST_SUPPORTED, parse_version

    version = f"{zeros}{major}.{zeros}{minor}.3"
    floor = _Validator(schema["properties"]["tfserving_version"])
    assert floor.is_valid(version) == (parse_version(version) >= OLDEST_SUPPORTED), version


@given(
    floor=st.tuples(st.integers(0, 30), st.integers(0, 130)),
    release=st.tuples(st.integers(0, 40), st.integers(0, 150), st.integers(0, 9)),
    zeros=st.tuples(st.sampled_from(["", "0", "00"]), st.sampled_from(["", "0"])),
)
def test_release_comparisons_match_parse_version(
    floor: tuple[int, int], release: tuple[int, int, int], zeros: tuple[str, str]
) -> None:
    """The regexes behind the rules that compare with tfserving_version (flags by release,
    batching fields by release, the allocator table, the oldest release)."""
    from tfsconf.spec.json_schema import release_at_least
    from tfsconf.tfserving.flags import parse_version

    version = f"{zeros[0]}{release[0]}.{zeros[1]}{release[1]}.{release[2]}"
    matched = re.search(release_at_least(*floor), version) is not None
    assert matched == (parse_version(version) >= floor), (floor, version)


def test_rollout_step_matches_validate(schema: Any) -> None:
    step = _Validator(schema["$defs"]["Rollout"]["properties"]["step"])
    adapter: TypeAdapter[Any] = TypeAdapter(safe.RolloutStep)
    for value in [
        0,
        1,
        5,
        -1,
        True,
        "0%",
        "1%",
        "01%",
        "001%",
        "50%",
        "100%",
        "101%",
        "0100%",
        "5",
        "%",
        2.5,
    ]:
        try:
            adapter.validate_python(value)
            accepted = True
        except ValidationError:
            accepted = False
        assert step.is_valid(value) == accepted, value
