"""variables.index read without TensorFlow, checked against what TensorFlow reports."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tfsconf.errors import UserError
from tfsconf.modelcheck.bundle_index import read_bundle_index, shard_name

pytestmark = pytest.mark.slow


def tf_variables(version_dir: Path) -> dict[str, list[int]]:
    import tensorflow as tf

    prefix = str(version_dir / "variables" / "variables")
    return dict(tf.train.list_variables(prefix))


def test_single_shard_index(built_check_models: Path) -> None:
    version = built_check_models / "mixed"
    index = read_bundle_index(version / "variables" / "variables.index")
    assert index.num_shards == 1
    names = {t.name for t in index.tensors}
    assert names == set(tf_variables(version))
    data = version / "variables" / shard_name("variables", 0, 1)
    assert max(t.offset + t.size for t in index.tensors) == data.stat().st_size


def test_multi_shard_index(built_check_models: Path) -> None:
    version = built_check_models / "sharded"
    index = read_bundle_index(version / "variables" / "variables.index")
    assert index.num_shards == 4
    assert {t.shard for t in index.tensors} == {0, 1, 2, 3}
    base_names = {t.name.removesuffix(" (a slice)") for t in index.tensors}
    assert base_names == set(tf_variables(version))
    for shard in range(4):
        data = version / "variables" / shard_name("variables", shard, 4)
        end = max(t.offset + t.size for t in index.tensors if t.shard == shard)
        assert end == data.stat().st_size


def test_damaged_index(built_check_models: Path, tmp_path: Path) -> None:
    index_path = tmp_path / "variables.index"
    shutil.copy(built_check_models / "mixed" / "variables" / "variables.index", index_path)
    blob = bytearray(index_path.read_bytes())
    blob[3] ^= 0xFF
    index_path.write_bytes(bytes(blob))
    with pytest.raises(UserError, match=r"variables.index: damaged checkpoint index: .*CRC"):
        read_bundle_index(index_path)
    index_path.write_bytes(bytes(blob[:-10]))
    with pytest.raises(UserError, match="bad table magic number"):
        read_bundle_index(index_path)
