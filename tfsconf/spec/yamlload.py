"""Safe YAML loading that keeps the position of every node.

PyYAML's constructors lose line numbers, so the document is composed into nodes first
(positions live on the nodes), then turned into plain Python values while a table of
path -> (line, column) is filled. Only the standard YAML tags are accepted: a
`!!python/...` or any custom tag is a diagnostic, never a constructor call.

Hostile documents are bounded at every stage: nodes and nesting are counted while libyaml
composes (a huge flow list or a deep bracket run stops early instead of filling memory or
overflowing the C stack), values are counted again while aliases expand, and a numeric
literal is length-checked before Python converts it.
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
# a 10,000-host fleet (benchmarks/fleet.py) has about 105,000 values, and fits in the size limit.
MAX_VALUES = 150_000
# A spec is a few levels deep; anything deeper is an accident or an attack (and Python's
# recursion limit must never be the one that stops it).
MAX_DEPTH = 32
# The longest integer or float literal read: a 64-bit integer in binary with separators fits.
# Python's int() is quadratic in the digits (and PyYAML's base-60 reading more so), so a
# longer literal is refused before it is converted.
MAX_NUMBER_LENGTH = 100
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_SCALAR_TAGS = {_STR, _INT, _FLOAT, _BOOL, _NULL}
_TYPE_NAMES = {_INT: "an integer", _FLOAT: "a number", _BOOL: "a boolean (true or false)"}


class _Limit(Exception):
    """Composing stopped: the document has too many nodes or is nested too deeply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _CountingLoader(_Loader):
    """libyaml's composer, stopped as soon as the node tree would exceed the limits.

    libyaml calls descend_resolver() before and ascend_resolver() after each node it
    composes, so the counts are kept while the tree is built, before it is held in memory.
    (No path resolvers are registered on the safe loader, so nothing else is lost.)
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.nodes = 0
        self.depth = 0

    def descend_resolver(self, current_node: object, current_index: object) -> None:
        self.nodes += 1
        self.depth += 1
        if self.nodes > MAX_VALUES:
            raise _Limit(f"document has more than {MAX_VALUES} values")
        if self.depth > MAX_DEPTH + 1:
            raise _Limit(f"nested deeper than {MAX_DEPTH} levels")

    def ascend_resolver(self) -> None:
        self.depth -= 1


def _limit_position(text: str) -> tuple[int, int]:
    """Where the composer's limit was crossed, found again from the event stream (which
    holds no tree, so this pass is cheap): the first node past the count or depth limit."""
    nodes = 0
    depth = 0
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
                nodes += 1
                depth += isinstance(event, yaml.CollectionStartEvent)
                mark = event.start_mark
                if (nodes > MAX_VALUES or depth > MAX_DEPTH) and mark is not None:
                    return (mark.line + 1, mark.column + 1)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    finally:
        loader.dispose()
    return (0, 0)  # pragma: no cover - the composer stopped at one of the events above


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
        loader = _CountingLoader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except _Limit as exc:
        line, column = _limit_position(text)
        problems.append(
            Diagnostic(file=file, line=line, column=column, path=(), message=exc.message)
        )
        return LoadedYaml(None, positions, tuple(problems))
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
    except _TooLarge as exc:
        # Name the top-level entry whose value explodes: the values inside it are written
        # once, under an anchor, and reached through aliases.
        where = exc.path[:1]
        line, column = positions.locate(where, at_key=True)
        message = (
            f"expands through aliases to more than {MAX_VALUES} values (alias bomb?): "
            "write the values out instead"
        )
        problems.append(
            Diagnostic(file=file, line=line, column=column, path=where, message=message)
        )
        return LoadedYaml(None, positions, tuple(problems))
    return LoadedYaml(data, positions, tuple(problems))


class _TooLarge(Exception):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path


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
            raise _TooLarge(path)
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
        if node.tag == _STR:
            return node.value
        return self._typed_scalar(node, path)

    def _typed_scalar(self, node: yaml.ScalarNode, path: Path) -> object:
        """An int, float or bool, written plainly or with an explicit !!tag: converted only
        when the text is short enough, and a diagnostic when it is not that type."""
        text = node.value
        what = _TYPE_NAMES[node.tag]
        if node.tag != _BOOL and len(text) > MAX_NUMBER_LENGTH:
            self._problem(
                node,
                path,
                f"number too long ({len(text)} characters; at most {MAX_NUMBER_LENGTH})",
                text[:40] + "...",
            )
            return None
        try:
            value = self._scalars.construct_object(node, deep=True)
        except (ValueError, IndexError, KeyError):
            self._problem(node, path, f"not {what}: quote it if it is text", text[:80])
            return None
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
