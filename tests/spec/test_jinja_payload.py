"""No string the spec carries can be an Ansible template: a Jinja payload written into any
string of a bundled example (every value and every mapping key, one at a time) is refused
with a located diagnostic at that very place.

This is the spec half of the proof; tests/apply/test_hostile.py shows on the test bed that
what does get through (host vars, values from the controller) arrives as plain data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfsconf.diagnostics import format_path
from tfsconf.errors import SpecError
from tfsconf.validate.load import load_environment

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "environments").glob("*.yaml"))
PAYLOAD = "{{ lookup('pipe', 'touch /tmp/tfsconf-marker') }}"

Place = tuple[tuple[str | int, ...], bool]
"""A path into the data, and whether the payload replaces the key there (not its value)."""


def places(data: Any, path: tuple[str | int, ...] = ()) -> Iterator[Place]:
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str):
                yield (*path, key), True
            yield from places(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from places(value, (*path, index))
    elif isinstance(data, str):
        yield path, False


def inject(data: Any, path: tuple[str | int, ...], as_key: bool) -> Any:
    if not path:
        return PAYLOAD
    head, rest = path[0], path[1:]
    if isinstance(data, list):
        assert isinstance(head, int)
        return [inject(v, rest, as_key) if i == head else v for i, v in enumerate(data)]
    out = {}
    for key, value in data.items():
        if key != head:
            out[key] = value
        elif as_key and not rest:
            out[PAYLOAD] = value
        else:
            out[key] = inject(value, rest, as_key)
    return out


def cases() -> Iterator[Any]:
    """Each kind of place once: list items of the same list share their fields."""
    seen: set[tuple[object, ...]] = set()
    for example in EXAMPLES:
        data = yaml.safe_load(example.read_text())
        for path, as_key in places(data):
            kind = (*("[]" if isinstance(p, int) else p for p in path), as_key)
            if kind in seen:
                continue
            seen.add(kind)
            where = format_path(path) + (" (key)" if as_key else "")
            yield pytest.param(example, path, as_key, id=f"{example.stem}:{where}")


@pytest.mark.parametrize(("example", "path", "as_key"), list(cases()))
def test_a_jinja_payload_in_any_string_is_refused_where_it_is(
    example: Path, path: tuple[str | int, ...], as_key: bool, tmp_path: Path
) -> None:
    data = inject(yaml.safe_load(example.read_text()), path, as_key)
    spec = tmp_path / example.name
    spec.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    for samples in (example.parent / "samples").glob("*"):  # the warmup samples beside it
        (tmp_path / "samples").mkdir(exist_ok=True)
        (tmp_path / "samples" / samples.name).write_bytes(samples.read_bytes())

    with pytest.raises(SpecError) as raised:
        load_environment(spec)

    errors = [d for d in raised.value.diagnostics if d.severity == "error"]
    assert errors, "refused without an error diagnostic"
    # the payload is refused at its own place, or on the mapping that holds it
    # (a key, or a discriminator like source.kind, is reported on the mapping holding it)
    located = [d for d in errors if d.path[: len(path) - 1] == path[:-1] and d.line > 0]
    assert located, "\n".join(d.render() for d in errors)


def test_every_example_offers_many_places() -> None:
    counted = sum(1 for _ in cases())
    assert counted > 120, counted
