"""Data handed to Ansible as data: every string value is marked unsafe, so Ansible never
templates it, whatever it contains.

Ansible templates variables when a task uses them: a `{{ ... }}` inside an inventory or
extra-vars value would run on the machine that runs apply (a `lookup('pipe', ...)` is a
shell command). tfsconf's values come from the spec, the --host-vars file, the hosts'
records and the controller's environment, none of which may ever be code.

The marking is Ansible's JSON form of an unsafe string, `{"__ansible_unsafe": "text"}`: the
form Ansible itself writes unsafe values in (its JSON encoder) and reads back in any JSON
inventory or vars file, in every ansible-core tfsconf supports (2.17 to 2.20). It is not
the `!unsafe` YAML tag, because ansible-core 2.19 re-resolves the type of a tagged scalar
as if it were unquoted: `!unsafe "0.2"` arrives as the float 0.2, `!unsafe "yes"` as True.

Mapping keys are not marked (JSON keys are plain strings): Ansible templates values, never
keys. Group, host and variable names are validated names anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

UNSAFE_KEY = "__ansible_unsafe"


def mark(value: Any) -> Any:
    """A JSON-ready copy of `value` with every string value marked unsafe."""
    if isinstance(value, str):
        return {UNSAFE_KEY: value}
    if isinstance(value, Mapping):
        return {_key(k): mark(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mark(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    raise TypeError(f"cannot hand a {type(value).__name__} to Ansible")


def _key(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)  # what JSON does with such a key anyway
    raise TypeError(f"cannot hand a {type(key).__name__} mapping key to Ansible")


def dump(data: Any) -> str:
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def variables(values: Mapping[str, Any]) -> str:
    """An extra-vars file (`-e @file`): variable names as they are, every value marked."""
    return dump({str(name): mark(value) for name, value in values.items()})


def inventory(data: Mapping[str, Any]) -> str:
    """A JSON inventory from the shape build_inventory returns ({group: {hosts, children,
    vars}}): group, host and variable names as they are, every variable value marked."""

    def group(body: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key == "hosts":
                out["hosts"] = {
                    str(host): {str(n): mark(v) for n, v in (hv or {}).items()}
                    for host, hv in (value or {}).items()
                }
            elif key == "vars":
                out["vars"] = {str(n): mark(v) for n, v in (value or {}).items()}
            elif key == "children":
                out["children"] = {str(name): group(child or {}) for name, child in value.items()}
            else:
                raise ValueError(f"not an inventory group key: {key!r}")
        return out

    return dump({str(name): group(body or {}) for name, body in data.items()})
