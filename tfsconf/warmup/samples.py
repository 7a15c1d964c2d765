"""Sample feature dicts for warmup requests, read from JSONL, CSV or TFRecord(tf.Example).

Each reader yields Sample values lazily, so a large sample file is read only as far as the
requested records need. Values stay as written (JSON values, CSV text, tf.Example lists):
converting them needs the signature's dtypes, which is tensors.py's job.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import IO

from google.protobuf import message

from tfsconf.errors import UserError
from tfsconf.tfserving.warmup import SAMPLE_EXTENSIONS, SAMPLE_FORMATS, sample_format_of
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.tfrecord import read_records


class ValueKind(Enum):
    """How a sample's values were written, which decides how they convert to a dtype."""

    JSON = "json"  # numbers, strings, booleans, nested lists; {"b64": ...} for raw bytes
    TEXT = "text"  # CSV cells: parsed according to the input's dtype
    EXAMPLE = "example"  # tf.Example: a bytes, float or int64 list per feature


@dataclass(frozen=True, slots=True)
class Sample:
    """One feature dict and where it came from (file:line or file:record N)."""

    where: str
    kind: ValueKind
    values: Mapping[str, object]
    example: bytes | None = None
    """The serialized tf.Example a TFRecord sample was read from, as written."""


SampleReader = Callable[[Path], Iterator[Sample]]


def read_samples(path: Path, sample_format: str = "auto") -> Iterator[Sample]:
    """Samples from a file; format "auto" goes by the extension, as the spec's default."""
    if not path.is_file():
        raise UserError(f"{path}: sample file not found")
    resolved = sample_format_of(path, sample_format)
    if resolved is None:
        if sample_format == "auto":
            known = ", ".join(sorted(SAMPLE_EXTENSIONS))
            raise UserError(
                f"{path}: unknown sample format '{path.suffix}' (known: {known}); "
                "name the format explicitly"
            )
        raise UserError(
            f"unknown sample format '{sample_format}' (known: {', '.join(SAMPLE_FORMATS)})"
        )
    reader = _BY_FORMAT[resolved]
    return reader(path)


def take_samples(path: Path, count: int, sample_format: str = "auto") -> list[Sample]:
    """The first count samples, reusing the file from the start if it has fewer."""
    first = list(itertools.islice(read_samples(path, sample_format), count))
    if not first:
        raise UserError(f"{path}: no samples in the file")
    return [first[i % len(first)] for i in range(count)]


def _read_jsonl(path: Path) -> Iterator[Sample]:
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                values = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{where}: not valid JSON: {exc.msg}") from exc
            except RecursionError:
                raise UserError(f"{where}: JSON nested too deeply") from None
            if not isinstance(values, dict):
                raise UserError(
                    f"{where}: expected a JSON object of features, got {type(values).__name__}"
                )
            yield Sample(where, ValueKind.JSON, values)


def _read_csv(path: Path) -> Iterator[Sample]:
    with _open_text(path) as lines:
        rows = csv.DictReader(lines)
        if not rows.fieldnames:
            raise UserError(f"{path}: the CSV file has no header row")
        for row in rows:
            where = f"{path}:{rows.line_num}"
            if None in row:
                raise UserError(f"{where}: more cells than header columns")
            missing = sorted(name for name, cell in row.items() if cell is None)
            if missing:
                raise UserError(f"{where}: fewer cells than header columns ({missing[0]}...)")
            yield Sample(where, ValueKind.TEXT, row)


def _read_examples(path: Path) -> Iterator[Sample]:
    example_type = tf_protos().example.Example
    for index, record in enumerate(read_records(path)):
        where = f"{path}: record {index}"
        example = example_type()
        try:
            example.ParseFromString(record)
        except message.DecodeError as exc:
            raise UserError(f"{where}: not a tf.Example: {exc}") from exc
        values: dict[str, object] = {}
        for name, feature in sorted(example.features.feature.items()):
            kind = feature.WhichOneof("kind")
            values[name] = list(getattr(feature, kind).value) if kind else []
        yield Sample(where, ValueKind.EXAMPLE, values, example=record)


@contextmanager
def _open_text(path: Path) -> Iterator[Iterator[str]]:
    """open() for UTF-8 text whose errors name the file."""
    try:
        # utf-8-sig: spreadsheet exports start with a byte order mark, which would
        # otherwise become part of the first column's name
        file = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    with file:
        yield _decoded_lines(path, file)


def _decoded_lines(path: Path, file: IO[str]) -> Iterator[str]:
    try:
        yield from file
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text: {exc.reason}") from exc


_BY_FORMAT: dict[str, SampleReader] = {
    "jsonl": _read_jsonl,
    "csv": _read_csv,
    "tfrecord": _read_examples,
}
