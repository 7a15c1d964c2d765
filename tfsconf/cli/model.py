"""`tfsconf model ...` commands: check a model base path before TF Serving loads it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tfsconf.cli import coerce
from tfsconf.cli.errors import ExitCode, handle_errors
from tfsconf.cli.options import FormatOpt

app = typer.Typer(
    cls=coerce.Group,
    rich_markup_mode=None,
    add_completion=False,
    help="Check model directories before TF Serving loads them.",
    no_args_is_help=True,
)


BasePath = Annotated[
    Path, typer.Argument(metavar="BASE_PATH", help="The model's base_path (holds version dirs).")
]
Version = Annotated[
    int | None, typer.Option("--version", metavar="VERSION", help="Check only this version.")
]
SignatureName = Annotated[
    str, typer.Option("--signature", metavar="NAME", help="The signature the model config calls.")
]
Batching = Annotated[
    bool, typer.Option("--batching", help="The server batches this model (adds warmup checks).")
]
WriteManifest = Annotated[
    bool,
    typer.Option("--write-manifest", help="Write .tfsconf-manifest.json into each clean version."),
]


@app.command(cls=coerce.Command)
def check(
    base_path: BasePath,
    *,
    version: Version = None,
    signature: SignatureName = "serving_default",
    output_format: FormatOpt = "text",
    write_manifest: WriteManifest = False,
    batching: Batching = False,
) -> None:
    """Check versions, completeness, signature, warmup and manifest; exit 1 on any problem."""

    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api
        from tfsconf.modelcheck import render_json, render_text

        report = api.check_model(
            base_path,
            version=version,
            signature_name=signature,
            write_manifest=write_manifest,
            batching=batching,
        )
        render = render_json if output_format == "json" else render_text
        print(render(report), end="")
        return ExitCode.OK if report.ok else ExitCode.ERROR

    raise typer.Exit(run())
