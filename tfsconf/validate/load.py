"""Read, validate and resolve one environment file: the front door of every command."""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass
from pathlib import Path as FsPath
from pathlib import PurePosixPath

from pydantic import BaseModel, ValidationError

from tfsconf.diagnostics import Diagnostic, Path, PathPart
from tfsconf.errors import SpecError, UserError
from tfsconf.resolve import model as r
from tfsconf.resolve.resolve import resolve_environment
from tfsconf.spec import model as s
from tfsconf.spec.files import MAX_SPEC_BYTES, FileRefused, read_bounded
from tfsconf.spec.rules import Collector, check_models, check_names, check_references
from tfsconf.spec.yamlload import Positions, load_yaml
from tfsconf.validate.resolved import check_resolved

_REFUSED_KEYS = {
    "logging_config": "logging_config is not offered: the stock TF Serving server fails to "
    "load a model with it ('No request-logger-creator provided')",
    "custom_model_config": "custom_model_config is not offered: the stock TF Serving server "
    "aborts (LOG(FATAL)) on it",
    "ssl_config_file": "ssl_config_file is not offered yet: apply reloads, health-checks and "
    "smoke-tests every server over its gRPC port without TLS, so a TLS-only port would fail "
    "every rollout",
}


@dataclass(frozen=True, slots=True)
class LoadedEnvironment:
    spec: s.Environment
    resolved: r.Environment
    warnings: tuple[Diagnostic, ...]
    source: bytes


def _all_field_names() -> frozenset[str]:
    names: set[str] = set()
    for obj in vars(s).values():
        if isinstance(obj, type) and issubclass(obj, BaseModel):
            names.update(obj.model_fields)
    return frozenset(names)


def _data_path(data: object, loc: tuple[int | str, ...]) -> tuple[Path, bool]:
    """Follow a pydantic error location through the data, dropping union tags and
    validator names that pydantic inserts but the YAML does not contain. The flag says
    whether the problem is with a mapping key rather than its value."""
    path: list[PathPart] = []
    current = data
    if loc and loc[-1] == "[key]":
        path_only, _ = _data_path(data, loc[:-1])
        return path_only, True
    for index, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            path.append(part)
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
        elif index == len(loc) - 1 and isinstance(current, dict) and isinstance(part, str):
            path.append(part)  # a missing or unknown key: name it
    return tuple(path), False


def _translate(exc: ValidationError, data: object, positions: Positions) -> list[Diagnostic]:
    diagnostics: list[Diagnostic] = []
    seen: set[Path] = set()
    names = _all_field_names()
    for error in exc.errors(include_url=False):
        path, at_key = _data_path(data, tuple(error["loc"]))
        kind = error["type"]
        if path in seen and kind not in ("missing", "extra_forbidden"):
            continue  # one message per value, even when a union tried several types
        seen.add(path)
        if kind == "extra_forbidden":
            key = str(path[-1]) if path else "?"
            if key in _REFUSED_KEYS:
                diagnostics.append(positions.diagnostic(path, _REFUSED_KEYS[key], at_key=True))
                continue
            message = f"unknown key '{key}'"
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.75)
            if close:
                message += f" (did you mean '{close[0]}'?)"
            diagnostics.append(positions.diagnostic(path, message, at_key=True))
        elif kind == "missing":
            diagnostics.append(positions.diagnostic(path, f"required key '{path[-1]}' is missing"))
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            diagnostics.append(
                positions.diagnostic(path, message, value=error.get("input"), at_key=at_key)
            )
    return diagnostics


def _check_valid_parts(
    data: dict[PathPart, object],
    out: Collector,
    spec_dir: PurePosixPath,
    files_root: PurePosixPath,
) -> None:
    """After a schema error: still check every model entry that is valid on its own, so
    that one run reports a bad version list beside a typo elsewhere."""
    models = data.get("models")
    valid: list[tuple[int, s.Model]] = []
    for index, entry in enumerate(models if isinstance(models, list) else []):
        try:
            valid.append((index, s.Model.model_validate(entry)))
        except ValidationError:
            continue  # already reported by the schema pass
    try:
        paths: s.Paths | None = s.Paths.model_validate(data.get("paths", {}))
    except ValidationError:
        paths = None
    check_models(valid, paths, out, spec_dir=spec_dir, files_root=files_root)


def read_spec_file(path: FsPath) -> bytes:
    """The spec's bytes: a regular file of at most MAX_SPEC_BYTES."""
    try:
        return read_bounded(path, MAX_SPEC_BYTES)
    except FileRefused as exc:
        hint = None
        if "limit" in exc.message:
            hint = f"an environment spec is at most {MAX_SPEC_BYTES} bytes (1 MiB)"
        raise UserError(f"{path}: {exc.message}", hint=hint) from None


def _decode(raw: bytes, display: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8", errors="replace")) + 1
        bad = raw[exc.start : exc.end]
        message = f"not UTF-8 text: invalid byte(s) {bad!r} at byte offset {exc.start}"
        diagnostic = Diagnostic(file=display, line=line, column=column, path=(), message=message)
        raise SpecError(diagnostics=[diagnostic]) from None


def load_environment(
    path: FsPath | str, *, source: bytes | None = None, root: FsPath | str | None = None
) -> LoadedEnvironment:
    """Validate an environment file completely; raise SpecError with every problem found.

    `source` lets a caller validate other bytes under the same name (e.g. the file at a
    git revision); relative sample paths still resolve against the file's directory.
    `root` is the directory tree the files the spec names must lie in (default: the
    spec's own directory).
    """
    file_path = FsPath(path)
    raw = read_spec_file(file_path) if source is None else source
    display = str(path)
    if len(raw) > MAX_SPEC_BYTES:
        raise UserError(
            f"{display}: is {len(raw)} bytes, more than the limit of {MAX_SPEC_BYTES} bytes"
        )
    text = _decode(raw, display)
    loaded = load_yaml(text, file=display)
    if loaded.problems:
        raise SpecError(diagnostics=loaded.problems)
    if not isinstance(loaded.data, dict):
        raise SpecError(
            diagnostics=[
                loaded.positions.diagnostic((), "an environment spec must be a YAML mapping")
            ]
        )
    spec_dir = PurePosixPath(file_path.resolve().parent.as_posix())
    files_root = spec_dir if root is None else PurePosixPath(FsPath(root).resolve().as_posix())
    out = Collector(loaded.positions)
    check_names(loaded.data, out)
    names_ok = not out.has_errors
    try:
        spec = s.Environment.model_validate(loaded.data)
    except ValidationError as exc:
        schema = _translate(exc, loaded.data, loaded.positions)
        _check_valid_parts(loaded.data, out, spec_dir, files_root)
        raise SpecError(diagnostics=[*schema, *out.items]) from None
    check_references(spec, out, spec_dir=spec_dir, files_root=files_root)
    if not names_ok:  # resolving follows the names: a dangling one cannot be resolved
        raise SpecError(diagnostics=out.items)
    # Errors of the spec pass do not stop the resolved pass: one run reports both (an old
    # release's allocator and the flag it lacks).
    resolved = resolve_environment(
        spec,
        spec_file=file_path.resolve().as_posix(),
        spec_sha256=hashlib.sha256(raw).hexdigest(),
    )
    check_resolved(resolved, out)
    if out.has_errors:
        raise SpecError(diagnostics=out.items)
    return LoadedEnvironment(spec, resolved, tuple(out.items), raw)
