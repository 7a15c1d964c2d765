"""Safe YAML loading that keeps the position of every node.

PyYAML's constructors lose line numbers, so the document is composed into nodes first
(positions live on the nodes), then turned into plain Python values while a table of
path -> (line, column) is filled. Only the standard YAML tags are accepted: a
`!!python/...` or any custom tag is a diagnostic, never a constructor call.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field

import yaml

from tfsconf.diagnostics import Diagnostic, Path, PathPart

try:  # libyaml is much faster; fall back to the pure-Python parser when it is absent
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# Aliases re-use nodes, so a small document can expand into a huge one ("billion laughs");
# a real environment has a few thousand values at most.
MAX_VALUES = 200_000
# A spec is a few levels deep; anything deeper is an accident or an attack (and Python's
# recursion limit must never be the one that stops it).
MAX_DEPTH = 32
_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(slots=True)
class Positions:
    """Where each value of a document starts; looked up by the closest known ancestor."""

    file: str
    table: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)
    """Where the key of each mapping entry is written (for problems with the key itself)."""

    def locate(self, path: Path, *, at_key: bool = False) -> tuple[int, int]:
        """(line, column), 1-based, of the value at path (or of its key), else of the
        nearest ancestor."""
        if at_key and path in self.keys:
            return self.keys[path]
        for length in range(len(path), -1, -1):
            found = self.table.get(path[:length])
            if found is not None:
                return found
        return (0, 0)

    def diagnostic(
        self,
        path: Path,
        message: str,
        *,
        value: object = ...,
        severity: str = "error",
        at_key: bool = False,
    ) -> Diagnostic:
        line, column = self.locate(path, at_key=at_key)
        extra: dict[str, object] = {} if value is ... else {"value": value}
        return Diagnostic(
            file=self.file,
            line=line,
            column=column,
            path=path,
            message=message,
            severity="warning" if severity == "warning" else "error",
            **extra,
        )


@dataclass(frozen=True, slots=True)
class LoadedYaml:
    data: object
    positions: Positions
    problems: tuple[Diagnostic, ...]


def load_yaml(text: str, *, file: str) -> LoadedYaml:
    """Parse one YAML document safely; syntax errors become diagnostics, not exceptions."""
    positions = Positions(file)
    problems: list[Diagnostic] = []
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        message = "YAML syntax error: " + " ".join(
            part for part in (exc.context, exc.problem) if part
        )
        problems.append(Diagnostic(file=file, line=line, column=column, path=(), message=message))
        return LoadedYaml(None, positions, tuple(problems))
    except yaml.YAMLError as exc:
        problems.append(
            Diagnostic(file=file, line=0, column=0, path=(), message=f"YAML error: {exc}")
        )
        return LoadedYaml(None, positions, tuple(problems))
    if node is None:
        return LoadedYaml(None, positions, ())
    builder = _Builder(positions, problems)
    try:
        data = builder.build(node, ())
    except _TooLarge:
        message = f"document expands to more than {MAX_VALUES} values (alias bomb?)"
        problems.append(Diagnostic(file=file, line=0, column=0, path=(), message=message))
        return LoadedYaml(None, positions, tuple(problems))
    return LoadedYaml(data, positions, tuple(problems))


class _TooLarge(Exception):
    pass


class _Builder:
    """Turns nodes into plain values, recording positions and rejecting unsafe tags."""

    def __init__(self, positions: Positions, problems: list[Diagnostic]) -> None:
        self._positions = positions
        self._problems = problems
        # A throwaway SafeLoader gives PyYAML's own scalar resolution (ints, floats, bools)
        self._scalars = yaml.SafeLoader("")
        self._count = 0
        self._open: set[int] = set()

    def _problem(self, node: yaml.Node, path: Path, message: str, value: object) -> None:
        self._problems.append(
            Diagnostic(
                file=self._positions.file,
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
                path=path,
                message=message,
                value=value,
            )
        )

    def build(self, node: yaml.Node, path: Path) -> object:
        self._count += 1
        if self._count > MAX_VALUES:
            raise _TooLarge
        self._positions.table[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.CollectionNode):
            if id(node) in self._open:
                self._problem(node, path, "recursive alias: a value cannot contain itself", "*")
                return None
            if len(path) >= MAX_DEPTH:
                self._problem(node, path, f"nested deeper than {MAX_DEPTH} levels", "...")
                return None
            self._open.add(id(node))
            try:
                return self._collection(node, path)
            finally:
                self._open.discard(id(node))
        assert isinstance(node, yaml.ScalarNode)
        if node.tag == _NULL:
            self._problem(
                node, path, "null is not allowed: leave the key out for the default", None
            )
            return None
        if node.tag == _TIMESTAMP and node.style is None:
            self._problem(node, path, "reads as a date: quote it if it is text", node.value)
            return None
        if node.tag not in _SCALAR_TAGS:
            self._problem(node, path, "tags are not allowed in a tfsconf spec", node.tag)
            return None
        value = self._scalars.construct_object(node, deep=True)
        if isinstance(value, datetime.date):  # pragma: no cover - timestamp tag not accepted
            return node.value
        return value

    def _collection(self, node: yaml.CollectionNode, path: Path) -> object:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if node.tag != _SEQ:
            self._problem(node, path, "tags are not allowed in a tfsconf spec", node.tag)
            return None
        return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[PathPart, object]:
        if node.tag != _MAP:
            self._problem(node, path, "tags are not allowed in a tfsconf spec", node.tag)
            return {}
        result: dict[PathPart, object] = {}
        for key_node, value_node in _merged_pairs(node):
            if key_node.tag == _MERGE:
                self._problem(
                    key_node,
                    path,
                    "YAML merge keys (<<) are not supported: use tfsconf's defaults layers",
                    "<<",
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _STR:
                self._problem(key_node, path, "mapping keys must be plain strings", key_node.value)
                continue
            key = key_node.value
            mark = key_node.start_mark
            self._positions.keys[(*path, key)] = (mark.line + 1, mark.column + 1)
            if key in result:
                self._problem(key_node, (*path, key), "duplicate key", key)
                continue
            result[key] = self.build(value_node, (*path, key))
            if isinstance(value_node, yaml.CollectionNode) and not value_node.flow_style:
                # a block starts on the line after its key; the key is where a reader looks
                self._positions.table[(*path, key)] = self._positions.keys[(*path, key)]
        return result


def _merged_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs; YAML merge keys (<<) are not supported: they hide where values
    come from, and tfsconf's defaults layering does that job explicitly."""
    yield from node.value
