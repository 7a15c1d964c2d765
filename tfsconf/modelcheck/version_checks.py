"""Checks of one version directory: what TF Serving needs to load it and warm it up.

Each check returns problem strings that start with the path they concern, relative to
the version directory, so a report reads like a list of files to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

from tfsconf.errors import UserError
from tfsconf.modelcheck.bundle_index import read_bundle_index, shard_name
from tfsconf.modelcheck.manifest import MANIFEST_NAME, compare_manifest, write_manifest
from tfsconf.tfserving.warmup import WARMUP_RELATIVE_PATH
from tfsconf.warmup.signature import read_signature, serving_meta_graph
from tfsconf.warmup.verify import verify_warmup

_SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
VARIABLES = "variables"
ASSETS = "assets"
_PREFIX = "variables"
_DATA_FILE = re.compile(r"^variables\.data-\d{5}-of-\d{5}$")
# Names copy tools and TensorFlow's own writer leave behind when interrupted.
_TEMP_FILE = re.compile(r"(\.tmp|\.partial|\.part|\.incomplete|tempstate\d*)$|^\.~|\.tmp\.")


def check_saved_model(version_dir: Path, signature_name: str) -> tuple[list[str], bool]:
    """saved_model.pb parses, has the graph TF Serving loads with the configured signature,
    and every asset file that graph names. Also says whether the graph restores variables
    (a variable-less TF1 export has no saver and may lack variables/)."""
    if not any((version_dir / name).is_file() for name in _SAVED_MODEL_FILES):
        return ["saved_model.pb: missing"], True
    try:
        meta_graph = serving_meta_graph(version_dir)
        signature = read_signature(version_dir, signature_name, meta_graph)
    except UserError as exc:
        return [_relative(exc.message, version_dir)], True
    problems = []
    if not signature.inputs:
        problems.append(f"saved_model.pb: signature '{signature_name}' has no inputs")
    for asset in meta_graph.asset_file_def:
        if not (version_dir / ASSETS / asset.filename).is_file():
            problems.append(
                f"{ASSETS}/{asset.filename}: missing (the graph reads it at load: a partial copy?)"
            )
    return problems, meta_graph.HasField("saver_def")


def check_variables(
    version_dir: Path, *, required: bool = True
) -> tuple[list[str], int | None, int | None]:
    """The index and every data shard it names are there, and long enough."""
    directory = version_dir / VARIABLES
    index_path = directory / f"{_PREFIX}.index"
    if not required and not index_path.is_file():
        return [], None, None  # no saver: TensorFlow restores nothing
    if not directory.is_dir():
        return [f"{VARIABLES}/: missing (TensorFlow always saves it)"], None, None
    if not index_path.is_file():
        return [f"{VARIABLES}/{_PREFIX}.index: missing"], None, None
    try:
        index = read_bundle_index(index_path)
    except UserError as exc:
        return [_relative(exc.message, version_dir)], None, None
    expected = {shard_name(_PREFIX, i, index.num_shards) for i in range(index.num_shards)}
    present = {p.name for p in directory.iterdir() if _DATA_FILE.match(p.name)}
    problems = [f"{VARIABLES}/{name}: missing" for name in sorted(expected - present)]
    problems += [
        f"{VARIABLES}/{name}: not part of this checkpoint ({index.num_shards} shard(s))"
        for name in sorted(present - expected)
    ]
    needed: dict[int, tuple[int, str]] = {}
    for tensor in index.tensors:
        end = tensor.offset + tensor.size
        if end > needed.get(tensor.shard, (0, ""))[0]:
            needed[tensor.shard] = (end, tensor.name)
    for shard, (end, tensor_name) in sorted(needed.items()):
        name = shard_name(_PREFIX, shard, index.num_shards)
        if name not in present:
            continue
        size = (directory / name).stat().st_size
        if size < end:
            problems.append(
                f"{VARIABLES}/{name}: truncated: {size} bytes, the index needs {end} "
                f"(tensor '{tensor_name}')"
            )
    return problems, index.num_shards, len(index.tensors)


def check_temp_files(version_dir: Path) -> list[str]:
    """Leftovers of an interrupted copy or save inside the version."""
    return [
        f"{path.relative_to(version_dir).as_posix()}: leftover of an interrupted copy or save"
        for path in sorted(version_dir.rglob("*"))
        if _TEMP_FILE.search(path.name) and not path.name.startswith(f"{MANIFEST_NAME}.")
    ] + [
        f"{path.name}: leftover of an interrupted manifest write"
        for path in sorted(version_dir.glob(f"{MANIFEST_NAME}.*"))
    ]


def check_warmup(version_dir: Path, *, batching: bool = False) -> tuple[list[str], int | None]:
    """The warmup file, when there is one, verifies (without replay); batching adds the
    checks TF Serving makes only for batched models."""
    if not (version_dir / WARMUP_RELATIVE_PATH).is_file():
        return [], None
    try:
        report = verify_warmup(version_dir, batching=batching)
    except UserError as exc:
        return [_relative(exc.message, version_dir)], None
    prefix = WARMUP_RELATIVE_PATH.as_posix()
    problems = [_relative(p.render(), version_dir) for p in report.problems]
    return [t if t.startswith(prefix) else f"{prefix}: {t}" for t in problems], report.records


def check_manifest(version_dir: Path, *, write: bool, clean: bool) -> tuple[list[str], str]:
    """Verify an existing manifest, or write one when asked and the version is clean."""
    problems: list[str] = []
    if (version_dir / MANIFEST_NAME).is_file():
        try:
            differences = compare_manifest(version_dir)
        except UserError as exc:
            return [_relative(exc.message, version_dir)], "mismatch"
        problems = [f"{MANIFEST_NAME}: {text}" for text in differences]
        if problems:
            # a manifest vouches for content: never re-approve a changed version silently
            hint = " (not rewritten: remove the manifest to approve this content)" if write else ""
            return [p + hint for p in problems], "mismatch"
        if not write:
            return [], "verified"
    elif not write:
        return [], "absent"
    if not clean:
        return [], "not written"
    write_manifest(version_dir)
    return [], "written"


def _relative(message: str, version_dir: Path) -> str:
    """Messages from shared code name absolute paths; the report is per version."""
    return message.replace(f"{version_dir}/", "").replace(str(version_dir), ".")
