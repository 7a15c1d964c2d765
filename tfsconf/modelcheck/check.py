"""check_model: is a model base path safe for TF Serving to load, version by version?

A flat sequence of checks over the base path, then over each version directory; every
finding is a problem string in the report, so one run lists everything to fix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tfsconf.modelcheck.version_checks import (
    check_manifest,
    check_saved_model,
    check_temp_files,
    check_variables,
    check_warmup,
)
from tfsconf.modelcheck.versions import scan_base_path
from tfsconf.warmup.signature import DEFAULT_SIGNATURE

REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class VersionReport:
    """The findings for one version directory."""

    version: int
    directory: str
    problems: tuple[str, ...]
    shards: int | None
    tensors: int | None
    warmup_records: int | None
    manifest: str

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class ModelReport:
    """The findings for a base path: its own problems and each checked version's."""

    base_path: Path
    signature_name: str
    problems: tuple[str, ...]
    versions: tuple[VersionReport, ...]
    ignored: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems and all(v.ok for v in self.versions)

    @property
    def problem_count(self) -> int:
        return len(self.problems) + sum(len(v.problems) for v in self.versions)


def check_model(
    base_path: Path,
    *,
    version: int | None = None,
    signature_name: str = DEFAULT_SIGNATURE,
    write_manifest: bool = False,
    batching: bool = False,
) -> ModelReport:
    """Check base_path's versions (or only version); never raises for what it finds.

    With write_manifest, each version that has no problems gets a fresh checksum
    manifest; a version with problems does not, so a manifest always vouches for a
    loadable version.
    """

    # long: one linear sequence of checks on base_path, each adding to the same report.
    def report(problems: list[str], versions: list[VersionReport] | None = None) -> ModelReport:
        return ModelReport(
            base_path=base_path,
            signature_name=signature_name,
            problems=tuple(problems),
            versions=tuple(versions or ()),
            ignored=tuple(ignored),
        )

    ignored: list[str] = []
    if not base_path.exists():
        return report(
            [f"{base_path}: does not exist (a missing base path stalls TF Serving's "
             "file-system polling for every model)"]
        )  # fmt: skip
    if not base_path.is_dir():
        return report([f"{base_path}: not a directory"])
    try:
        scan = scan_base_path(base_path)
    except OSError as exc:
        return report([f"{base_path}: cannot read: {exc.strerror}"])
    ignored.extend(scan.ignored)
    problems: list[str] = []
    for number, names in scan.versions.items():
        if len(names) > 1 and version in (None, number):
            problems.append(
                f"{', '.join(names)}: the same version {number} twice; TF Serving loads "
                "only one of them"
            )
    problems += [f"{name}: numeric name but not a directory" for name in scan.numeric_files]
    problems += [f"{name}: leftover of an interrupted copy or publish" for name in scan.leftovers]
    if not scan.versions:
        problems.append("no version directories: TF Serving unloads every version of the model")
    selected = scan.versions
    if version is not None:
        if version not in scan.versions:
            problems.append(f"version {version}: no such version directory")
        selected = {version: scan.versions[version]} if version in scan.versions else {}
    versions = [
        check_version(
            base_path / name,
            number,
            signature_name,
            write_manifest=write_manifest,
            batching=batching,
        )
        for number, names in selected.items()
        for name in names
    ]
    return report(problems, versions)


def check_version(
    version_dir: Path,
    number: int,
    signature_name: str,
    *,
    write_manifest: bool = False,
    batching: bool = False,
) -> VersionReport:
    """Every check of one version directory, in the order a reader would fix them."""
    shards: int | None = None
    tensors: int | None = None
    warmup_records: int | None = None
    manifest = "not checked"
    problems: list[str] = []
    try:
        problems, restores_variables = check_saved_model(version_dir, signature_name)
        variable_problems, shards, tensors = check_variables(
            version_dir, required=restores_variables
        )
        problems += variable_problems
        problems += check_temp_files(version_dir)
        warmup_problems, warmup_records = check_warmup(version_dir, batching=batching)
        problems += warmup_problems
        manifest_problems, manifest = check_manifest(
            version_dir, write=write_manifest, clean=not problems
        )
        problems += manifest_problems
    except OSError as exc:  # e.g. a file the copy left unreadable to this user
        where = Path(exc.filename).name if exc.filename else version_dir.name
        problems.append(f"{where}: cannot read: {exc.strerror}")
    return VersionReport(
        version=number,
        directory=version_dir.name,
        problems=tuple(problems),
        shards=shards,
        tensors=tensors,
        warmup_records=warmup_records,
        manifest=manifest,
    )
