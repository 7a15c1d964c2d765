"""The tfsconf command line: each command parses, calls one core function, renders, exits.

Exit codes: 0 success; 1 user error, invalid spec or stale build; 2 plan has changes;
70 internal error (a bug).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Literal

import typer

from tfsconf.cli import apply as apply_cli
from tfsconf.cli import check as check_cli
from tfsconf.cli import model, warmup
from tfsconf.cli import plan as plan_cli
from tfsconf.cli.errors import EXIT_ERROR, EXIT_OK, handle_errors

app = typer.Typer(
    name="tfsconf",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(warmup.app, name="warmup")
app.add_typer(model.app, name="model")
app.command("plan")(plan_cli.plan)
app.command("show")(plan_cli.show)
app.command("apply")(apply_cli.apply)
app.command("status")(apply_cli.status)
app.command("rollback")(apply_cli.rollback)
app.command("check")(check_cli.check)


def _version(value: bool) -> None:
    if value:
        from tfsconf import __version__

        print(f"tfsconf {__version__}")
        raise typer.Exit(EXIT_OK)


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

    Examples:

      tfsconf validate environments/production.yaml

      tfsconf plan environments/production.yaml --base origin/main

      tfsconf apply environments/production.yaml
    """


SpecArg = Annotated[
    Path,
    typer.Argument(metavar="SPEC", help="Environment spec, e.g. environments/production.yaml."),
]
RootOpt = Annotated[
    Path | None,
    typer.Option(
        "--root",
        help="Directory tree the files a spec names (warmup samples) must lie in; "
        "default: the spec's own directory.",
    ),
]
FormatOpt = Annotated[
    Literal["text", "json"], typer.Option("--format", help="Output format: text or json.")
]


def _emit(line: str) -> None:
    print(line, file=sys.stderr)


@app.command()
def validate(spec: SpecArg, output_format: FormatOpt = "text", root: RootOpt = None) -> None:
    """Validate a spec: every TF Serving rule checked offline; all problems in one run."""
    fmt = output_format

    @handle_errors
    def run() -> int:
        from tfsconf import api
        from tfsconf.errors import SpecError, UserError

        try:
            loaded = api.validate(spec, root=root)
        except SpecError as exc:
            if fmt != "json":
                raise
            diagnostics = [d.as_json() for d in exc.diagnostics]
            print(
                json.dumps(
                    {"schema_version": 1, "valid": False, "diagnostics": diagnostics}, indent=2
                )
            )
            return EXIT_ERROR
        except UserError as exc:
            if fmt != "json":
                raise
            print(
                json.dumps(
                    {"schema_version": 1, "valid": False, "error": str(exc), "diagnostics": []},
                    indent=2,
                )
            )
            return EXIT_ERROR
        if fmt == "json":
            diagnostics = [d.as_json() for d in loaded.warnings]
            print(
                json.dumps(
                    {"schema_version": 1, "valid": True, "diagnostics": diagnostics}, indent=2
                )
            )
            return EXIT_OK
        for warning in loaded.warnings:
            _emit(warning.render())
        env = loaded.resolved
        servers = {s.name for h in env.hosts for s in h.servers}
        models = {m.name for h in env.hosts for s in h.servers for m in s.models}
        print(
            f"{spec}: valid: environment {env.name}, {len(env.hosts)} host(s), "
            f"{len(servers)} server(s), {len(models)} model(s)"
        )
        return EXIT_OK

    raise typer.Exit(run())


@app.command("compile")
def compile_(
    spec: SpecArg,
    out: Annotated[Path, typer.Option("--out", help="Output directory (replaced whole).")],
    check: Annotated[
        bool, typer.Option("--check", help="Only compare --out with the spec; exit 1 if stale.")
    ] = False,
    root: RootOpt = None,
) -> None:
    """Compile a spec into per-host TF Serving artifacts under --out."""

    @handle_errors
    def run() -> int:
        from tfsconf import api

        started = time.perf_counter()
        result = api.compile_environment(spec, out, check=check, root=root)
        for warning in result.loaded.warnings:
            _emit(warning.render())
        if result.staleness is not None:
            stale = result.staleness
            for label, paths in (
                ("missing", stale.missing),
                ("changed", stale.changed),
                ("extra", stale.extra),
            ):
                for path in paths:
                    print(f"{label}: {out / path}")
            if stale.stale:
                count = len(stale.missing) + len(stale.changed) + len(stale.extra)
                _emit(f"{out}: {count} stale file(s); run: tfsconf compile {spec} --out {out}")
                return EXIT_ERROR
            _emit(f"{out}: up to date ({len(result.bundle.files)} files)")
            return EXIT_OK
        elapsed = time.perf_counter() - started
        _emit(
            f"compiled {result.loaded.resolved.name}: {len(result.bundle.files)} files for "
            f"{len(result.loaded.resolved.hosts)} host(s) into {out} in {elapsed:.2f} s"
        )
        return EXIT_OK

    raise typer.Exit(run())


@app.command()
def schema() -> None:
    """Print the JSON Schema of the environment spec (for editors)."""
    from tfsconf import api

    sys.stdout.write(api.json_schema())


def main() -> None:
    """Console entry point. Usage errors exit 1, not click's 2: 2 means "the plan has
    changes" to scripts, and a typo must never read as that."""
    try:
        result = app(standalone_mode=False, prog_name="tfsconf")
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    except typer.TyperException as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    sys.exit(result if isinstance(result, int) else EXIT_OK)
