"""Which release of TF Serving has which command-line flag (facts only; the table with its
evidence is tfsconf/tfserving/flag_table.py)."""

from __future__ import annotations

from tfsconf.tfserving.flag_table import FLAG_SINCE, FLAG_UNTIL, READ_THROUGH

OLDEST_SUPPORTED = (1, 15)


def parse_version(version: str) -> tuple[int, int]:
    major, minor, _patch = (int(part) for part in version.split("."))
    return (major, minor)


def newest_known() -> tuple[int, int]:
    return READ_THROUGH


def flag_missing_reason(name: str, version: tuple[int, int]) -> str | None:
    """Why the release `version` lacks --name, or None when it has it."""
    since = FLAG_SINCE.get(name)
    if since is None:
        return f"--{name} is not a TF Serving flag known to tfsconf"
    if version < since:
        return f"--{name} needs TF Serving {since[0]}.{since[1]} or later"
    until = FLAG_UNTIL.get(name)
    if until is not None and version >= until:
        return f"--{name} was removed in TF Serving {until[0]}.{until[1]}"
    return None
