"""Where rules put their findings, and small helpers every pass uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from tfsconf.diagnostics import Diagnostic, Path
from tfsconf.spec.yamlload import Positions


class Collector:
    """Gathers diagnostics, placing each at the position of its spec path."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.items: list[Diagnostic] = []

    def error(self, path: Path, message: str, value: object = ...) -> None:
        self.items.append(self.positions.diagnostic(path, message, value=value))

    def warning(self, path: Path, message: str, value: object = ...) -> None:
        self.items.append(self.positions.diagnostic(path, message, value=value, severity="warning"))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)


def duplicates(items: list[str]) -> Iterator[tuple[int, str]]:
    """(index, item) of every repeat after an item's first occurrence."""
    counts = Counter(items)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if counts[item] > 1:
            if item in seen:
                yield index, item
            seen.add(item)
