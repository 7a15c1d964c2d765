"""The tfsconf command line: each command parses, calls the API, renders, exits.

Commands are listed here once, with the one-line summary `tfsconf --help` shows, and each is
imported and built only when it runs: `tfsconf validate` does not pay for the apply command's
imports, and `tfsconf --help` or `--version` builds no command at all. Exit codes: ExitCode
in tfsconf.cli.errors.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.core
import typer.main

from tfsconf.cli import coerce
from tfsconf.cli.errors import ExitCode


@dataclass(frozen=True, slots=True)
class Entry:
    """A command: where it is defined, and its summary (the first line of its help)."""

    module: str
    attribute: str
    """A command function, or a typer.Typer holding a group of commands."""
    summary: str


COMMANDS: dict[str, Entry] = {
    "validate": Entry(
        "tfsconf.cli.spec",
        "validate",
        "Validate a spec: every TF Serving rule checked offline; all problems in one run.",
    ),
    "compile": Entry(
        "tfsconf.cli.spec",
        "compile_",
        "Compile a spec into per-host TF Serving artifacts under --out.",
    ),
    "plan": Entry(
        "tfsconf.cli.plan",
        "plan",
        "Show what a change to an environment does to each host and server, and what it costs.",
    ),
    "show": Entry(
        "tfsconf.cli.plan",
        "show",
        "Render a saved plan; by default first check it is not stale. Exit 0, 2 or 1 as plan.",
    ),
    "apply": Entry(
        "tfsconf.cli.apply",
        "apply",
        "Plan against the hosts' live state, show the plan, ask, then roll it out.",
    ),
    "status": Entry(
        "tfsconf.cli.apply",
        "status",
        "Live state per host, server and model version, against the spec (drift).",
    ),
    "rollback": Entry(
        "tfsconf.cli.apply",
        "rollback",
        "Put hosts back on a release they ran before (default: the previous one).",
    ),
    "check": Entry(
        "tfsconf.cli.check",
        "check",
        "Validate specs (and, with --build-root, that their builds are current); exit 1 if "
        "any fails.",
    ),
    "schema": Entry(
        "tfsconf.cli.spec", "schema", "Print the JSON Schema of the environment spec (for editors)."
    ),
    "warmup": Entry("tfsconf.cli.warmup", "app", "Generate and verify TF Serving warmup files."),
    "model": Entry(
        "tfsconf.cli.model", "app", "Check model directories before TF Serving loads them."
    ),
}


def build_command(name: str) -> typer.core.TyperCommand | typer.core.TyperGroup:
    """The click command for one entry of COMMANDS. Commands are coerce.Command (and groups
    coerce.Group): their plain-typed parameters are coerced without pydantic."""
    entry = COMMANDS[name]
    target = getattr(importlib.import_module(entry.module), entry.attribute)
    if isinstance(target, typer.Typer):
        command: Any = typer.main.get_group(target)
    else:
        single = typer.Typer(rich_markup_mode=None, add_completion=False)
        single.command(name, cls=coerce.Command)(target)
        command = typer.main.get_command(single)
    command.name = name
    _plain_argument_help(command)
    return command  # type: ignore[no-any-return]


def _plain_argument_help(command: Any) -> None:
    """Help lists an argument by its metavar alone: typer would add its Python type
    (`SPEC <list[Path]>`), which says nothing to a user."""
    for param in getattr(command, "params", ()):
        if isinstance(param, typer.core.TyperArgument) and param.metavar is not None:
            param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
    for sub in getattr(command, "commands", {}).values():
        _plain_argument_help(sub)


class LazyGroup(coerce.Group):
    """The top-level group: builds a command when it is looked up, and lists the commands
    from COMMANDS without building them."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = build_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, entry.summary) for name, entry in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    name="tfsconf",
    cls=LazyGroup,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from tfsconf import __version__

        print(f"tfsconf {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Declarative config compiler for TensorFlow Serving fleets.

    \b
    Examples:
      tfsconf validate environments/production.yaml
      tfsconf plan environments/production.yaml --base origin/main
      tfsconf apply environments/production.yaml --limit rank-a1,rank-a2
      tfsconf status environments/production.yaml
    """


def main() -> None:
    """Console entry point. Usage errors exit 1, not click's 2: 2 means "the plan has
    changes" to scripts, and a typo must never read as that."""
    try:
        result = app(standalone_mode=False, prog_name="tfsconf")
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(ExitCode.ERROR)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        sys.exit(ExitCode.ERROR)
    sys.exit(result if isinstance(result, int) else ExitCode.OK)
