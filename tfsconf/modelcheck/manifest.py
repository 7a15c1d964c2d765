"""The checksum manifest of a model version, for model sync and for review.

Format of ``<version dir>/.tfsconf-manifest.json`` (schema_version 1), canonical JSON
(keys sorted, no spaces, UTF-8, one trailing newline) so that equal trees give equal
bytes::

    {"files":{"saved_model.pb":{"sha256":"<64 hex>","size":1234},
              "variables/variables.index":{...}, ...},
     "schema_version":1,
     "tree_sha256":"<64 hex>"}

- ``files``: every regular file under the version directory except the manifest itself,
  keyed by its POSIX path relative to the version directory, with its byte size and the
  hex SHA-256 of its content. The warmup file (assets.extra/) is included, so generate
  the warmup file before writing the manifest.
- ``tree_sha256``: SHA-256 of the canonical JSON of ``files`` alone: one value to compare
  when deciding whether a host already has this version (seed 001: sync only on change).

Model sync copies a version into a staging directory, verifies it against the manifest,
then renames it into its numeric name: TF Serving loads partially copied numeric
directories, so nothing unverified may get one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tfsconf.atomic import write_atomically
from tfsconf.errors import UserError

MANIFEST_NAME = ".tfsconf-manifest.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One file's size and SHA-256."""

    size: int
    sha256: str


def digest_tree(version_dir: Path) -> dict[str, FileDigest]:
    """Size and SHA-256 of every file under version_dir, by sorted relative path."""
    digests = {}
    for path in sorted(version_dir.rglob("*")):
        relative = path.relative_to(version_dir).as_posix()
        if relative == MANIFEST_NAME or not path.is_file():
            continue
        with path.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        digests[relative] = FileDigest(size=path.stat().st_size, sha256=digest)
    return digests


def render_manifest(files: Mapping[str, FileDigest]) -> bytes:
    """The canonical manifest bytes for a tree's digests."""
    listing = {name: {"sha256": d.sha256, "size": d.size} for name, d in sorted(files.items())}
    document = {
        "files": listing,
        "schema_version": SCHEMA_VERSION,
        "tree_sha256": hashlib.sha256(_canonical(listing)).hexdigest(),
    }
    return _canonical(document) + b"\n"


def write_manifest(version_dir: Path) -> Path:
    """Write the manifest atomically (temp file + rename) and return its path."""
    target = version_dir / MANIFEST_NAME
    content = render_manifest(digest_tree(version_dir))
    write_atomically(target, [content])
    return target


def read_manifest(version_dir: Path) -> dict[str, FileDigest]:
    """The files listed in a version's manifest; a malformed manifest is a UserError."""
    path = version_dir / MANIFEST_NAME
    try:
        document = json.loads(path.read_bytes())
        if document.get("schema_version") != SCHEMA_VERSION:
            raise UserError(
                f"{path}: schema_version {document.get('schema_version')!r} "
                f"(tfsconf reads {SCHEMA_VERSION})"
            )
        return {
            str(name): FileDigest(size=int(entry["size"]), sha256=str(entry["sha256"]))
            for name, entry in document["files"].items()
        }
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"{path}: not a tfsconf manifest: {exc}") from exc


def compare_manifest(version_dir: Path) -> list[str]:
    """What differs between the manifest and the files on disk (empty when they match)."""
    expected = read_manifest(version_dir)
    actual = digest_tree(version_dir)
    problems = []
    for name in sorted(expected.keys() | actual.keys()):
        want, have = expected.get(name), actual.get(name)
        if have is None:
            problems.append(f"{name}: listed in the manifest, missing on disk")
        elif want is None:
            problems.append(f"{name}: on disk, not in the manifest")
        elif want.size != have.size:
            problems.append(f"{name}: {have.size} bytes, the manifest says {want.size}")
        elif want.sha256 != have.sha256:
            problems.append(f"{name}: content differs from the manifest (sha256)")
    return problems


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
