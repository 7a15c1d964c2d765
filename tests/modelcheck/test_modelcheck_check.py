"""check_model on real SavedModels with the damage seen in production (seed 000, DOMAIN)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfsconf.modelcheck import MANIFEST_NAME, check_model, render_json, render_text
from tfsconf.warmup import generate_warmup, warmup_path

pytestmark = pytest.mark.slow

DATA = "variables/variables.data-00000-of-00001"


def only_version_problems(base: Path, **options: object) -> list[str]:
    report = check_model(base, **options)  # type: ignore[arg-type]
    assert report.problems == ()
    (version,) = report.versions
    return list(version.problems)


def test_clean_model(base_path: Path) -> None:
    report = check_model(base_path)
    assert report.ok
    (version,) = report.versions
    assert (version.version, version.shards, version.warmup_records) == (1, 1, None)
    assert version.manifest == "absent"
    assert render_text(report).endswith("ok: 1 version(s) checked, no problems\n")
    document = json.loads(render_json(report))
    assert document["ok"] is True
    assert document["schema_version"] == 1
    assert document["versions"][0]["variables_shards"] == 1


def test_duplicates_leftovers_and_ignored_names(base_path: Path) -> None:
    shutil.copytree(base_path / "1", base_path / "001")
    (base_path / ".incoming-2").mkdir()
    (base_path / "2.partial").mkdir()
    (base_path / "README").write_text("notes")
    (base_path / "5").write_text("a file, not a directory")
    report = check_model(base_path)
    assert report.problems == (
        "001, 1: the same version 1 twice; TF Serving loads only one of them",
        "5: numeric name but not a directory",
        ".incoming-2: leftover of an interrupted copy or publish",
        "2.partial: leftover of an interrupted copy or publish",
    )
    assert report.ignored == ("README",)
    assert [v.directory for v in report.versions] == ["001", "1"]
    assert all(v.ok for v in report.versions)


def test_empty_and_missing_base_path(tmp_path: Path) -> None:
    empty = check_model(tmp_path)
    assert empty.problems == (
        "no version directories: TF Serving unloads every version of the model",
    )
    missing = check_model(tmp_path / "nope")
    assert not missing.ok
    assert "does not exist" in missing.problems[0]


def test_truncated_variables_shard(base_path: Path) -> None:
    data = base_path / "1" / DATA
    size = data.stat().st_size
    data.write_bytes(data.read_bytes()[: size - 4])
    (problem,) = only_version_problems(base_path)
    assert problem.startswith(f"{DATA}: truncated: {size - 4} bytes, the index needs {size}")
    assert "(tensor '" in problem


def test_missing_and_stale_shards(sharded_base: Path) -> None:
    variables = sharded_base / "7" / "variables"
    (variables / "variables.data-00002-of-00004").unlink()
    (variables / "variables.data-00000-of-00001").write_bytes(b"from an older save")
    assert only_version_problems(sharded_base) == [
        "variables/variables.data-00002-of-00004: missing",
        "variables/variables.data-00000-of-00001: not part of this checkpoint (4 shard(s))",
    ]


def test_sharded_model_is_complete(sharded_base: Path) -> None:
    report = check_model(sharded_base)
    assert report.ok
    assert report.versions[0].shards == 4


def test_missing_files(base_path: Path) -> None:
    (base_path / "1" / "variables" / "variables.index").unlink()
    (base_path / "1" / "saved_model.pb").unlink()
    assert only_version_problems(base_path) == [
        "saved_model.pb: missing",
        "variables/variables.index: missing",
    ]


def test_missing_signature(base_path: Path) -> None:
    assert only_version_problems(base_path, signature_name="predict") == [
        "saved_model.pb: no signature 'predict' (signatures: by_count, serving_default)"
    ]
    assert only_version_problems(base_path, signature_name="by_count") == []


def test_leftover_temp_file_inside_version(base_path: Path) -> None:
    (base_path / "1" / "variables" / "variables.data-00000-of-00001.tempstate42").write_text("x")
    assert only_version_problems(base_path) == [
        "variables/variables.data-00000-of-00001.tempstate42: leftover of an interrupted copy "
        "or save"
    ]


def test_warmup_file_is_verified(base_path: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"dense": [1, 2, 3, 4], "count": 2, "tags": "a"}) + "\n")
    path = generate_warmup(base_path / "1", samples, records=3).path
    assert check_model(base_path).versions[0].warmup_records == 3
    path.write_bytes(path.read_bytes()[:-1])
    (problem,) = only_version_problems(base_path)
    assert problem.startswith("assets.extra/tf_serving_warmup_requests: record 2 ")
    assert "truncated" in problem


def test_manifest_written_then_verified_then_mismatch(base_path: Path, tmp_path: Path) -> None:
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps({"dense": [1, 2, 3, 4], "count": 2, "tags": "a"}) + "\n")
    generate_warmup(base_path / "1", samples, records=1)
    written = check_model(base_path, write_manifest=True)
    assert written.ok
    assert written.versions[0].manifest == "written"
    listed = json.loads((base_path / "1" / MANIFEST_NAME).read_text())["files"]
    assert "assets.extra/tf_serving_warmup_requests" in listed
    assert DATA in listed
    assert check_model(base_path).versions[0].manifest == "verified"
    (base_path / "1" / "fingerprint.pb").write_bytes(b"changed")
    report = check_model(base_path)
    assert report.versions[0].manifest == "mismatch"
    assert report.versions[0].problems[0].startswith(f"{MANIFEST_NAME}: fingerprint.pb: ")


def test_no_manifest_for_a_broken_version(base_path: Path) -> None:
    (base_path / "1" / DATA).write_bytes(b"")
    report = check_model(base_path, write_manifest=True)
    assert not report.ok
    assert report.versions[0].manifest == "not written"
    assert not (base_path / "1" / MANIFEST_NAME).exists()


def test_single_version(base_path: Path) -> None:
    shutil.copytree(base_path / "1", base_path / "2")
    (base_path / "2" / "saved_model.pb").unlink()
    assert check_model(base_path, version=1).ok
    assert not check_model(base_path).ok
    assert check_model(base_path, version=9).problems == ("version 9: no such version directory",)
    assert warmup_path(base_path / "1") == base_path / "1" / "assets.extra" / (
        "tf_serving_warmup_requests"
    )
