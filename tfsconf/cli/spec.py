"""`tfsconf validate`, `compile` and `schema`: the commands that only read a spec."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from tfsconf.cli.errors import ExitCode, handle_errors
from tfsconf.cli.options import FormatOpt, RootOpt, SpecArg


def _emit(line: str) -> None:
    print(line, file=sys.stderr)


def validate(spec: SpecArg, output_format: FormatOpt = "text", root: RootOpt = None) -> None:
    """Validate a spec: every TF Serving rule checked offline; all problems in one run."""
    fmt = output_format

    @handle_errors
    def run() -> ExitCode:
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
            return ExitCode.ERROR
        except UserError as exc:
            if fmt != "json":
                raise
            print(
                json.dumps(
                    {"schema_version": 1, "valid": False, "error": str(exc), "diagnostics": []},
                    indent=2,
                )
            )
            return ExitCode.ERROR
        if fmt == "json":
            diagnostics = [d.as_json() for d in loaded.warnings]
            print(
                json.dumps(
                    {"schema_version": 1, "valid": True, "diagnostics": diagnostics}, indent=2
                )
            )
            return ExitCode.OK
        for warning in loaded.warnings:
            _emit(warning.render())
        env = loaded.resolved
        servers = {s.name for h in env.hosts for s in h.servers}
        models = {m.name for h in env.hosts for s in h.servers for m in s.models}
        print(
            f"{spec}: valid: environment {env.name}, {len(env.hosts)} host(s), "
            f"{len(servers)} server(s), {len(models)} model(s)"
        )
        return ExitCode.OK

    raise typer.Exit(run())


def compile_(
    spec: SpecArg,
    out: Annotated[
        Path, typer.Option("--out", metavar="DIR", help="Output directory (replaced whole).")
    ],
    check: Annotated[
        bool, typer.Option("--check", help="Only compare --out with the spec; exit 1 if stale.")
    ] = False,
    root: RootOpt = None,
) -> None:
    """Compile a spec into per-host TF Serving artifacts under --out."""

    @handle_errors
    def run() -> ExitCode:
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
                return ExitCode.ERROR
            _emit(f"{out}: up to date ({len(result.bundle.files)} files)")
            return ExitCode.OK
        elapsed = time.perf_counter() - started
        _emit(
            f"compiled {result.loaded.resolved.name}: {len(result.bundle.files)} files for "
            f"{len(result.loaded.resolved.hosts)} host(s) into {out} in {elapsed:.2f} s"
        )
        return ExitCode.OK

    raise typer.Exit(run())


def schema() -> None:
    """Print the JSON Schema of the environment spec (for editors)."""
    from tfsconf import api

    sys.stdout.write(api.json_schema())
