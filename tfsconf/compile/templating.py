"""Jinja2 for free text only (Dockerfiles, units); values are computed in Python first."""

from __future__ import annotations

from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """templates/ of a source checkout, or the copy a wheel ships as tfsconf/_templates."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_templates"
    return shipped if shipped.is_dir() else package.parent / "templates"


class Templates:
    """The templates of one compile. The Jinja2 environment (which keeps each template
    compiled once it is used) is built on first use and lives as long as this object:
    build_bundle makes one per bundle, so nothing is held between compiles."""

    __slots__ = ("_directory", "_environment")

    def __init__(self, directory: Path | None = None) -> None:
        self._directory = directory
        self._environment: jinja2.Environment | None = None

    def _jinja(self) -> jinja2.Environment:
        if self._environment is None:
            self._environment = jinja2.Environment(
                loader=jinja2.FileSystemLoader(str(self._directory or templates_dir())),
                undefined=jinja2.StrictUndefined,
                autoescape=False,  # noqa: S701 - Dockerfiles and units, not HTML; values are allow-listed
                keep_trailing_newline=True,
                trim_blocks=True,
                lstrip_blocks=True,
            )
        return self._environment

    def render(self, name: str, **values: object) -> bytes:
        return self._jinja().get_template(name).render(**values).encode()
