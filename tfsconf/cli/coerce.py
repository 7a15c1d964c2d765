"""Parameter coercion without pydantic, for the plain types tfsconf's options use.

typer (0.2x) coerces every parameter through a pydantic TypeAdapter built on first use, and
its Path coercion builds a second one. Importing pydantic's schema machinery and building
those adapters costs about 180 ms of CPU, most of a `tfsconf warmup generate` or
`tfsconf --help`, which need no pydantic at all. Here each parameter of a built command whose
type is str, int, float, bool, Path, an Enum or a Literal of strings (alone, optional, or a
list of one) gets a converter that gives the same values and refuses the same inputs; every
check on paths (exists, file_okay, ...) and choices is still typer's own function. Parameters
of any other type, and typers without this hook, keep typer's coercion.
"""

from __future__ import annotations

import enum
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.core

try:  # private to typer: when it moves, typer's own coercion stays in place (only slower)
    from typer._coercion import RuntimeParam
    from typer._param_types import coerce_cli_choice, coerce_cli_path

    _HOOKED = True
except ImportError:  # pragma: no cover - depends on the installed typer
    _HOOKED = False

Convert = Callable[[Any, Any, Any], Any]
"""(value, param, ctx) -> the coerced value; raises typer.BadParameter."""


def _to_str(value: Any, param: Any, ctx: Any) -> str:
    return value if isinstance(value, str) else str(value)


_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off", ""})


def _to_bool(value: Any, param: Any, ctx: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise typer.BadParameter(f"{value!r} is not a valid boolean.", ctx=ctx, param=param)


def _number(kind: type[int] | type[float], info: Any) -> Convert:
    name = "integer" if kind is int else "number"

    def convert(value: Any, param: Any, ctx: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise typer.BadParameter(f"{value!r} is not a valid {name}.", ctx=ctx, param=param)
        try:
            number = kind(value.strip() if isinstance(value, str) else value)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not a valid {name}.", ctx=ctx, param=param
            ) from None
        if info.min is not None and number < info.min:
            raise typer.BadParameter(
                f"{number} is below the minimum {info.min}.", ctx=ctx, param=param
            )
        if info.max is not None and number > info.max:
            raise typer.BadParameter(
                f"{number} is above the maximum {info.max}.", ctx=ctx, param=param
            )
        return number

    return convert


def _path(kind: type[Path], info: Any) -> Convert:
    def convert(value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, kind):
            value = kind(value)
        return coerce_cli_path(value, info, path_type=kind, param=param, ctx=ctx)

    return convert


def _choice(choices: tuple[Any, ...], info: Any) -> Convert:
    def convert(value: Any, param: Any, ctx: Any) -> Any:
        try:
            return coerce_cli_choice(
                value, choices=choices, case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), ctx=ctx, param=param) from None

    return convert


def _leaf(annotation: Any, info: Any) -> Convert | None:
    if info.parser is not None or getattr(info, "clamp", False):
        return None
    if annotation is str:
        return _to_str
    if annotation is bool:
        return _to_bool
    if annotation is int or annotation is float:
        return _number(annotation, info)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _choice(tuple(annotation), info)
    if isinstance(annotation, type) and issubclass(annotation, Path):
        if info.path_type is not None or info.allow_dash:
            return None
        return _path(annotation, info)
    if typing.get_origin(annotation) is typing.Literal:
        choices = typing.get_args(annotation)
        if choices and all(isinstance(c, str) for c in choices):
            return _choice(choices, info)
    return None


def converter(annotation: Any, info: Any) -> Convert | None:
    """The converter for a parameter typer resolved to `annotation`, or None to leave it
    to typer."""
    if typing.get_origin(annotation) is list:
        args = typing.get_args(annotation)
        item = _leaf(args[0], info) if len(args) == 1 else None
        if item is None:
            return None
        each = item

        def convert(value: Any, param: Any, ctx: Any) -> list[Any]:
            items = value if isinstance(value, (list, tuple)) else [value]
            return [each(v, param, ctx) for v in items]

        return convert
    return _leaf(annotation, info)


if _HOOKED:

    @dataclass(frozen=True)
    class _Plain(RuntimeParam):
        convert: Convert

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            return self.convert(value, param, ctx)


def _install(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if not _HOOKED or descriptor is None or descriptor.file_annotation is not None:
        return
    if getattr(param, "_runtime_param", "absent") is not None:
        return
    convert = converter(descriptor.annotation, descriptor.parameter_info)
    if convert is not None:
        param._runtime_param = _Plain(
            parameter_info=descriptor.parameter_info,
            annotation=descriptor.annotation,
            convert=convert,
        )


class Command(typer.core.TyperCommand):
    """A typer command whose plain-typed parameters are coerced without pydantic."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for param in self.params:
            _install(param)
        return super().parse_args(ctx, args)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _install(option)
        return option


class Group(typer.core.TyperGroup):
    """A typer group whose plain-typed parameters are coerced without pydantic (its
    commands are Command)."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        for param in self.params:
            _install(param)
        return super().parse_args(ctx, args)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        _install(option)
        return option
