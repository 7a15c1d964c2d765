"""`tfsconf check`: the pre-commit and CI gate over many specs at once.

Validates every spec given and, with --build-root, checks that each spec's compiled build
(`<build-root>/<spec file stem>`) is up to date, as `compile --check` does. Every spec is
checked, whatever an earlier one gave; exit 1 when any failed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tfsconf.cli.errors import ExitCode, handle_errors


def check(
    specs: Annotated[
        list[Path],
        typer.Argument(
            metavar="SPEC_OR_DIR",
            help="Environment specs; a directory means every *.yaml / *.yml directly in it.",
        ),
    ],
    build_root: Annotated[
        Path | None,
        typer.Option(
            "--build-root",
            metavar="DIR",
            help="Also check that DIR/<spec stem> (e.g. build/production) is compiled and "
            "up to date.",
        ),
    ] = None,
) -> None:
    """Validate specs (and, with --build-root, that their builds are current); exit 1 if any
    fails. Meant for pre-commit (.pre-commit-hooks.yaml) and CI."""
    specs = _expand(specs)
    failed = 0
    for spec in specs:
        failed += _check_one(spec, build_root) != ExitCode.OK
    if len(specs) > 1:
        print(f"checked {len(specs)} spec(s): {failed} failed", file=sys.stderr)
    raise typer.Exit(ExitCode.ERROR if failed else ExitCode.OK)


def _expand(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        else:
            found.append(path)
    return found


@handle_errors
def _check_one(spec: Path, build_root: Path | None) -> ExitCode:
    from tfsconf import api

    if build_root is None:
        loaded = api.validate(spec)
        for warning in loaded.warnings:
            print(warning.render(), file=sys.stderr)
        print(f"{spec}: valid", file=sys.stderr)
        return ExitCode.OK
    out = build_root / spec.stem
    result = api.compile_environment(spec, out, check=True)
    for warning in result.loaded.warnings:
        print(warning.render(), file=sys.stderr)
    stale = result.staleness
    if stale is None or not stale.stale:
        print(f"{spec}: valid; {out} up to date", file=sys.stderr)
        return ExitCode.OK
    for label, paths in (
        ("missing", stale.missing),
        ("changed", stale.changed),
        ("extra", stale.extra),
    ):
        for path in paths:
            print(f"{label}: {out / path}", file=sys.stderr)
    print(
        f"error: {out} is stale; run: tfsconf compile {spec} --out {out}",
        file=sys.stderr,
    )
    return ExitCode.ERROR
