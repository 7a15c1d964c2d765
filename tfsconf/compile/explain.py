"""How a change to an artifact is put in words for a plan (the artifact registry names one
of these per artifact kind). Each takes the kind's pattern fields (e.g. the model of a
per-model batching file) and the old and new bytes (None: absent) and returns reasons."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

from google.protobuf import text_format

V = TypeVar("V")


def changes(
    before: Mapping[str, V], after: Mapping[str, V]
) -> list[tuple[str, V | None, V | None]]:
    """(key, old value, new value) for every key whose value differs, sorted by key."""
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(before.keys() | after.keys())
        if before.get(key) != after.get(key)
    ]


def status(old: bytes | None, new: bytes | None) -> str:
    return "added" if old is None else "removed" if new is None else "changed"


def flag_values(data: bytes | None) -> dict[str, str]:
    """name -> value of a server.flags file (one `--name=value` a line)."""
    out: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("--"):
            name, _, value = line[2:].partition("=")
            out[name] = value
    return out


def flags(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    out: list[str] = []
    for name, a, b in changes(flag_values(old), flag_values(new)):
        if a is None:
            out.append(f"flag --{name}={b} added")
        elif b is None:
            out.append(f"flag --{name} removed (was {a})")
        else:
            out.append(f"flag --{name}: {a} -> {b}")
    return out or ["server flags changed"]


def _proto_fields(data: bytes | None) -> dict[str, str]:
    """Top-level fields of a BatchingParameters text file, wrappers unwrapped."""
    if data is None:
        return {}
    from tfsconf.protos import batching_pb2

    message = batching_pb2.BatchingParameters()
    try:
        text_format.Parse(data.decode("utf-8"), message)
    except (text_format.ParseError, UnicodeDecodeError):
        return {"(unparsable)": data.decode("utf-8", "replace")}
    out: dict[str, str] = {}
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and descriptor.message_type.full_name.startswith(
            "google.protobuf."
        ):
            shown = value.value
        elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            shown = list(value)
        else:
            shown = value
        out[descriptor.name] = str(shown).lower() if isinstance(shown, bool) else str(shown)
    return out


def _batching(what: str, old: bytes | None, new: bytes | None) -> list[str]:
    if old is None:
        return [f"{what} added"]
    if new is None:
        return [f"{what} removed"]
    changed = [
        f"{name} {a or 'unset'} -> {b or 'unset'}"
        for name, a, b in changes(_proto_fields(old), _proto_fields(new))
    ]
    return [f"{what}: " + ", ".join(changed)] if changed else [f"{what} changed"]


def batching(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    return _batching("batching parameters (read only at start)", old, new)


def model_batching(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    return _batching(
        f"per-model batching of {fields['model']} (written into each of its versions; a "
        "loaded version reads it only when it loads again)",
        old,
        new,
    )


def models_config(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    """Only when the server restarts anyway; a hot reload is explained by the planner,
    which knows how the server is told (reload RPC or config poll)."""
    return ["models.config changed (loaded at start)"]


def monitoring(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    if old is None:
        return ["monitoring enabled (read only at start)"]
    if new is None:
        return ["monitoring disabled (read only at start)"]
    return ["monitoring config changed (read only at start)"]


def session_config(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    return [f"TensorFlow session config {status(old, new)} (read only at start)"]


def unit(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    return [f"service unit {fields['name']} {status(old, new)}"]


def launch(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    return ["launch command changed"]


def changed(fields: Mapping[str, str], old: bytes | None, new: bytes | None) -> list[str]:
    return [f"{fields['name']} changed"]
