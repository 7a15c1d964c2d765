"""Jinja2 for free text only (Dockerfiles, units); values are computed in Python first."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """templates/ of a source checkout, or the copy a wheel ships as tfsconf/_templates."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - Dockerfiles and units, not HTML; values are allow-listed
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(name: str, **values: object) -> bytes:
    return environment().get_template(name).render(**values).encode()
