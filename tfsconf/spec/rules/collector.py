"""Where rules put their findings, and small helpers every pass uses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from tfsconf.diagnostics import Diagnostic, Path, format_path
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


class ServerScope(Collector):
    """The collector seen by the rules of one server. A problem placed at a value the
    server inherits (a shared default, a model's own settings) also names the server it is
    wrong for: the same default may be right for every other server."""

    def __init__(self, out: Collector, *, spec_path: Path, name: str) -> None:
        super().__init__(out.positions)
        self.items = out.items
        self._spec_path = spec_path
        self._name = name

    def _named(self, path: Path, message: str) -> str:
        if path[: len(self._spec_path)] == self._spec_path:
            return message
        return f"{message} (for server '{self._name}', {format_path(self._spec_path)})"

    def error(self, path: Path, message: str, value: object = ...) -> None:
        super().error(path, self._named(path, message), value)

    def warning(self, path: Path, message: str, value: object = ...) -> None:
        super().warning(path, self._named(path, message), value)


def duplicates(items: list[str]) -> Iterator[tuple[int, str]]:
    """(index, item) of every repeat after an item's first occurrence."""
    counts = Counter(items)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if counts[item] > 1:
            if item in seen:
                yield index, item
            seen.add(item)
