"""The tfsconf command line: each command parses, calls one core function, renders, exits."""

from __future__ import annotations

import typer

from tfsconf.cli import model, warmup

app = typer.Typer(
    name="tfsconf",
    help="Declarative config compiler for TensorFlow Serving fleets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(warmup.app, name="warmup")
app.add_typer(model.app, name="model")


def main() -> None:
    app()
