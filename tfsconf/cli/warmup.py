"""`tfsconf warmup ...` commands: generate a version's warmup file, verify one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tfsconf.cli import coerce
from tfsconf.cli.errors import ExitCode, handle_errors
from tfsconf.errors import UserError

app = typer.Typer(
    cls=coerce.Group,
    rich_markup_mode=None,
    add_completion=False,
    help="Generate and verify TF Serving warmup files.",
    no_args_is_help=True,
)

ModelDir = Annotated[
    Path,
    typer.Option(
        "--model-dir", metavar="VERSION_DIR", help="The version directory: <base_path>/<version>."
    ),
]
Samples = Annotated[
    Path,
    typer.Option(
        "--samples", metavar="FILE", help="Sample features: .jsonl, .csv or .tfrecord(s)."
    ),
]
SampleFormat = Annotated[
    str,
    typer.Option(
        "--samples-format", metavar="FORMAT", help="auto (by extension), jsonl, csv or tfrecord."
    ),
]
Records = Annotated[
    int, typer.Option("--records", metavar="N", help="Number of records, 1 to 1000.")
]
ModelName = Annotated[
    str | None,
    typer.Option(
        "--model-name", metavar="NAME", help="model_spec.name (default: the base dir name)."
    ),
]
SignatureName = Annotated[
    str, typer.Option("--signature", metavar="NAME", help="The signature to call.")
]
BatchSizes = Annotated[
    str | None,
    typer.Option(
        "--batch-sizes", metavar="SIZES", help="Allowed batch sizes to cover, e.g. 1,8,32."
    ),
]
Out = Annotated[
    Path | None,
    typer.Option("--out", metavar="FILE", help="Write here instead of <model-dir>/assets.extra/."),
]
VersionDir = Annotated[
    Path,
    typer.Argument(metavar="VERSION_DIR", help="The version directory: <base_path>/<version>."),
]
WarmupFile = Annotated[
    Path | None,
    typer.Option("--file", metavar="FILE", help="Verify this file instead of the version's own."),
]
Replay = Annotated[bool, typer.Option("--replay", help="Also run every record through TensorFlow.")]
Batching = Annotated[bool, typer.Option("--batching", help="The server batches this model.")]
MethodNameCheck = Annotated[
    bool,
    typer.Option(
        "--method-name-check",
        help="The server runs with --enable_signature_method_name_check.",
    ),
]


@app.command(cls=coerce.Command)
def generate(
    *,
    model_dir: ModelDir,
    samples: Samples,
    records: Records = 100,
    model_name: ModelName = None,
    signature: SignatureName = "serving_default",
    batch_sizes: BatchSizes = None,
    out: Out = None,
    samples_format: SampleFormat = "auto",
) -> None:
    """Write a warmup file for a SavedModel version from sample features."""

    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api

        result = api.generate_warmup(
            model_dir,
            samples,
            records=records,
            model_name=model_name,
            signature_name=signature,
            batch_sizes=parse_batch_sizes(batch_sizes),
            out=out,
            sample_format=samples_format,
        )
        sizes = ",".join(str(size) for size in result.batch_sizes)
        print(
            f"wrote {result.records} records ({result.model_name}/{result.signature_name}, "
            f"batch sizes {sizes}) to {result.path}",
            file=sys.stderr,
        )
        print(result.path)
        return ExitCode.OK

    raise typer.Exit(run())


@app.command(cls=coerce.Command)
def verify(
    model_dir: VersionDir,
    file: WarmupFile = None,
    replay: Replay = False,
    batching: Batching = False,
    method_name_check: MethodNameCheck = False,
) -> None:
    """Check a version's warmup file as TF Serving will load it (exit 1 on any problem)."""

    @handle_errors
    def run() -> ExitCode:
        from tfsconf import api

        report = api.verify_warmup(
            model_dir,
            path=file,
            replay=replay,
            batching=batching,
            method_name_check=method_name_check,
        )
        types = ", ".join(f"{n} {kind}" for kind, n in report.log_types.items()) or "none"
        print(f"{report.path}: {report.records} records ({types})")
        if replay:
            print(f"replayed {report.replayed} records with TensorFlow")
        for note in report.notes:
            print(f"note: {note}")
        for problem in report.problems:
            print(f"problem: {problem.render()}")
        print("ok" if report.ok else f"{len(report.problems)} problem(s)")
        return ExitCode.OK if report.ok else ExitCode.ERROR

    raise typer.Exit(run())


def parse_batch_sizes(text: str | None) -> list[int] | None:
    """'1,8,32' -> [1, 8, 32]; an error names the bad entry."""
    if text is None:
        return None
    sizes = []
    for part in text.split(","):
        try:
            sizes.append(int(part.strip()))
        except ValueError:
            raise UserError(f"--batch-sizes: '{part}' is not an integer") from None
    return sizes
