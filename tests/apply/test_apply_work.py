"""Unit tests of what apply computes before any host is touched (no test bed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.apply_sync.harness import serve
from tfsconf.apply.activations import reload_deadline_of
from tfsconf.apply.batching import placements
from tfsconf.apply.work import HTTP_VERSION_INDEX, SourceVersions
from tfsconf.errors import UserError
from tfsconf.resolve import model as r


def test_http_source_lists_its_versions_through_its_index(tmp_path: Path) -> None:
    """An http source under a latest/all policy: TF Serving's own file-system source lists
    the base path (file_system_storage_path_source.cc); plain HTTP cannot, so the source
    serves <url>/.tfsconf-versions.json and apply picks the versions from it."""
    (tmp_path / "m").mkdir()
    index = tmp_path / "m" / HTTP_VERSION_INDEX
    index.write_text(json.dumps({"versions": [3, 1, 2], "note": "ignored"}))
    with serve(tmp_path) as address:
        source = r.Source(kind="http", location=f"http://{address}/m")
        assert SourceVersions(5.0).versions(source) == [1, 2, 3]
        index.write_text(json.dumps({"versions": [1, "2"]}))
        with pytest.raises(UserError, match="positive integers"):
            SourceVersions(5.0).versions(source)
        index.unlink()
        with pytest.raises(UserError, match=r"404.*\.tfsconf-versions\.json"):
            SourceVersions(5.0).versions(source)


def test_batching_placements_follow_the_per_model_file() -> None:
    """bundle_factory_util.cc GetPerModelBatchingParams reads <version>/batching_params.pbtxt
    only when a version loads: every version on the host whose file must change is listed,
    versions published by this run (staged with their file) are not."""
    key = "rank/models/m/batching_params.pbtxt"
    models = {"m": {"base_path": "/m", "versions": [1, 2]}}
    assert placements({key: "A"}, models, {key: "A"}, models) == []
    assert placements({key: "B"}, models, {key: "A"}, models, {("/m", 2)}) == [
        {"base_path": "/m", "version": 1, "content": "B"}
    ]
    assert placements({}, models, {key: "A"}, models) == [
        {"base_path": "/m", "version": 1, "content": None},
        {"base_path": "/m", "version": 2, "content": None},
    ]
    grown = {"m": {"base_path": "/m", "versions": [1, 2, 3]}}
    assert placements({key: "A"}, grown, {key: "A"}, models) == [
        {"base_path": "/m", "version": 3, "content": "A"}
    ]


def test_reload_deadline_is_derived_from_the_server_flags() -> None:
    """server_core.cc ReloadConfig blocks until a new model is AVAILABLE: the next disk poll
    (file_system_storage_path_source.cc), the load and warmup (the health timeout), and
    max_num_load_retries x load_retry_interval_micros (loader_harness.cc); main.cc's
    defaults (1 s, 5 retries, 60 s) apply to what the flags leave out."""
    flags = (
        "--port=8500\n--file_system_poll_wait_seconds=30\n--max_num_load_retries=3\n"
        "--load_retry_interval_micros=30000000\n"
    )
    assert reload_deadline_of(flags, 600.0) == 30 + 600 + 3 * 30
    assert reload_deadline_of("--port=8500\n", 300.0) == 1 + 300 + 5 * 60
    assert reload_deadline_of("--max_num_load_retries=0\n", 20.0) == 1 + 20
