"""Diagnostics: one user-caused problem each, with where (file:line:col, path) and what."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]
PathPart = str | int
Path = tuple[PathPart, ...]


def format_path(path: Sequence[PathPart]) -> str:
    """Render ('models', 2, 'batching', 'max_batch_size') as models[2].batching.max_batch_size."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif out:
            out.append(f".{part}")
        else:
            out.append(part)
    return "".join(out) or "<root>"


_MISSING = object()


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    """One problem in a spec. line and column are 1-based; 0 means unknown."""

    file: str
    line: int
    column: int
    path: Path
    message: str
    value: object = _MISSING
    severity: Severity = "error"

    @property
    def has_value(self) -> bool:
        return self.value is not _MISSING

    def render(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        text = f"{where}: {self.severity}: {format_path(self.path)}: {_mask(self.message)}"
        if self.has_value:
            text += f" (got: {_show(self.value)})"
        return text

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": format_path(self.path),
            "severity": self.severity,
            "message": _mask(self.message),
        }
        if self.has_value:
            data["value"] = _show(self.value)
        return data


def _mask(text: str) -> str:
    from tfsconf.secrets import mask

    return mask(text)


def _show(value: object) -> str:
    """The offending value, short: a huge integer is described, not printed (Python refuses
    to print one of more than 4300 digits, and nobody reads one); a long text is cut to a
    bounded prefix, then secrets in it are masked, then it is shortened for display (masking
    before the display cut, which could otherwise leave part of a secret unmarked)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, str | bytes) and len(value) > 4096:
        value = value[:4096]
    text = _mask(repr(value))
    return text if len(text) <= 80 else text[:77] + "..."


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Order by position in the file, so the output reads top to bottom."""
    return sorted(
        diagnostics, key=lambda d: (d.file, d.line, d.column, format_path(d.path), d.message)
    )
