"""Start-up: commands are built only when run, parameters are coerced without pydantic, and
the commands that need neither pydantic nor TensorFlow import neither."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest
import typer
import typer.main
from typer._coercion import build_runtime_param, resolve_type_descriptor
from typer.models import OptionInfo

from tfsconf.cli import coerce
from tfsconf.cli.app import COMMANDS, build_command

PROBE = """\
import atexit, sys
sys.argv = ["tfsconf", *sys.argv[1:]]
atexit.register(lambda: print(
    "LOADED", sorted({m.split(".")[0] for m in sys.modules} & {"pydantic", "tensorflow"}),
    file=sys.stderr,
))
from tfsconf.cli.app import main
main()
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--version"],
        ["warmup", "generate", "--help"],
        ["warmup", "verify", "--help"],
        ["apply", "--help"],
        ["plan", "--help"],
    ],
)
def test_commands_that_need_no_spec_import_neither_pydantic_nor_tensorflow(
    argv: list[str],
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "LOADED []" in run.stderr


class Colour(str, __import__("enum").Enum):
    RED = "red"
    BLUE = "blue"


CASES: list[tuple[Any, dict[str, Any], list[Any]]] = [
    (str, {}, ["x", "", "ünï", "--a b"]),
    (int, {}, ["0", "17", "-3", " 12 ", "1_000", "x", "1.5", ""]),
    (int, {"min": 0, "max": 10}, ["0", "10", "-1", "11"]),
    (float, {}, ["0.5", "3", "-1e3", "x", "inf"]),
    (bool, {}, [True, False, "true", "0", "yes", "off", "maybe"]),
    (Path, {}, ["a/b.yaml", ".", "/"]),
    (Path, {"exists": True}, ["/", "/no/such/path"]),
    (Path, {"dir_okay": False, "exists": True}, ["/", "/etc/hostname"]),
    (Literal["text", "json"], {}, ["text", "json", "xml", "TEXT"]),
    (Literal["text", "json"], {"case_sensitive": False}, ["TEXT", "Json", "x"]),
    (Colour, {}, ["red", "blue", "green"]),
    (list[Path], {}, [("a", "b"), ("c",)]),
    (list[int], {}, [("1", "2"), ("1", "x")]),
]


def _outcome(coerce_value: Any, value: Any) -> Any:
    try:
        return ("ok", coerce_value(value))
    except typer.BadParameter:
        return ("refused",)


@pytest.mark.parametrize(("annotation", "info", "values"), CASES)
def test_plain_coercion_gives_what_typers_pydantic_coercion_gives(
    annotation: Any, info: dict[str, Any], values: list[Any]
) -> None:
    parameter_info = OptionInfo(**info)
    descriptor = resolve_type_descriptor(annotation, parameter_info)
    theirs = build_runtime_param(descriptor)
    ours = coerce.converter(annotation, parameter_info)
    assert ours is not None
    probe = typer.Typer(add_completion=False)
    probe.command()(lambda: None)
    ctx = typer.Context(typer.main.get_command(probe))
    for value in values:
        expected = _outcome(lambda v: theirs._coerce_value(v, param=None, ctx=ctx), value)
        got = _outcome(lambda v: ours(v, None, ctx), value)
        assert got == expected, (annotation, value)


def test_unknown_types_are_left_to_typer() -> None:
    assert coerce.converter(dict[str, int], OptionInfo()) is None
    assert coerce.converter(int, OptionInfo(parser=int)) is None
    assert coerce.converter(int, OptionInfo(min=0, clamp=True)) is None


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_builds_with_the_summary_it_is_listed_with(name: str) -> None:
    command = build_command(name)
    assert command.name == name
    first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
    assert first_paragraph.startswith(COMMANDS[name].summary)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_parameter_of_every_command_has_a_plain_converter(name: str) -> None:
    """A new option of a type coerce does not know would bring pydantic back into start-up."""
    command: Any = build_command(name)
    commands = list(command.commands.values()) if hasattr(command, "commands") else [command]
    for each in commands:
        for param in each.params:
            descriptor = param.type_descriptor
            assert coerce.converter(descriptor.annotation, descriptor.parameter_info), (
                each.name,
                param.name,
            )
