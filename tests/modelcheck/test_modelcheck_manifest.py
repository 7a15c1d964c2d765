"""The checksum manifest: canonical bytes, tree digest, and what verification catches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tfsconf.errors import UserError
from tfsconf.modelcheck.manifest import (
    MANIFEST_NAME,
    compare_manifest,
    read_manifest,
    write_manifest,
)


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    root = tmp_path / "3"
    (root / "variables").mkdir(parents=True)
    (root / "saved_model.pb").write_bytes(b"model bytes")
    (root / "variables" / "variables.index").write_bytes(b"\x00index")
    (root / "assets.extra").mkdir()
    (root / "assets.extra" / "tf_serving_warmup_requests").write_bytes(b"warm")
    return root


def test_written_manifest_format(version_dir: Path) -> None:
    path = write_manifest(version_dir)
    assert path == version_dir / MANIFEST_NAME
    raw = path.read_bytes()
    document = json.loads(raw)
    files = {
        "assets.extra/tf_serving_warmup_requests": b"warm",
        "saved_model.pb": b"model bytes",
        "variables/variables.index": b"\x00index",
    }
    expected_files = {
        name: {"sha256": hashlib.sha256(content).hexdigest(), "size": len(content)}
        for name, content in files.items()
    }
    assert document["files"] == expected_files
    assert list(document["files"]) == sorted(files)
    assert document["schema_version"] == 1
    canonical_files = json.dumps(expected_files, sort_keys=True, separators=(",", ":"))
    assert document["tree_sha256"] == hashlib.sha256(canonical_files.encode()).hexdigest()
    assert raw == json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"
    assert [p.name for p in version_dir.iterdir() if p.name.startswith(".")] == [MANIFEST_NAME]


def test_manifest_is_deterministic_and_excludes_itself(version_dir: Path) -> None:
    first = write_manifest(version_dir).read_bytes()
    second = write_manifest(version_dir).read_bytes()
    assert first == second
    assert MANIFEST_NAME not in read_manifest(version_dir)
    assert compare_manifest(version_dir) == []


def test_verification_finds_every_difference(version_dir: Path) -> None:
    write_manifest(version_dir)
    (version_dir / "saved_model.pb").write_bytes(b"model bytez")  # same size
    (version_dir / "variables" / "variables.index").write_bytes(b"short")
    (version_dir / "assets.extra" / "tf_serving_warmup_requests").unlink()
    (version_dir / "variables" / "variables.data-00000-of-00001").write_bytes(b"new")
    assert compare_manifest(version_dir) == [
        "assets.extra/tf_serving_warmup_requests: listed in the manifest, missing on disk",
        "saved_model.pb: content differs from the manifest (sha256)",
        "variables/variables.data-00000-of-00001: on disk, not in the manifest",
        "variables/variables.index: 5 bytes, the manifest says 6",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a tfsconf manifest"),
        ('{"schema_version": 2, "files": {}}', "schema_version 2"),
        ('{"schema_version": 1, "files": {"a": {"size": 1}}}', "not a tfsconf manifest"),
    ],
)
def test_malformed_manifest(version_dir: Path, content: str, message: str) -> None:
    (version_dir / MANIFEST_NAME).write_text(content)
    with pytest.raises(UserError, match=message):
        compare_manifest(version_dir)
