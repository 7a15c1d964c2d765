"""generate: odd inputs get clear errors, files come out readable by the serving user."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tfsconf.errors import UserError
from tfsconf.tfserving.warmup import WARMUP_RELATIVE_PATH
from tfsconf.warmup import generate_warmup, verify_warmup

pytestmark = pytest.mark.slow


def test_the_warmup_file_is_readable_by_other_users(mixed_model: Path, mixed_samples: Path) -> None:
    generate_warmup(mixed_model, mixed_samples, records=3)
    mode = stat.S_IMODE((mixed_model / WARMUP_RELATIVE_PATH).stat().st_mode)
    assert mode == 0o644  # TF Serving often runs as another user than the one who generates


def test_a_huge_integer_for_a_float_input_is_a_user_error(
    mixed_model: Path, tmp_path: Path
) -> None:
    samples = tmp_path / "big.jsonl"
    samples.write_text(
        json.dumps({"dense": [1, 2, 3, int("9" * 400)], "count": 1, "tags": "a"}) + "\n"
    )
    with pytest.raises(UserError, match=r"big\.jsonl:1: input 'dense' expects float"):
        generate_warmup(mixed_model, samples, records=1)


def test_deeply_nested_samples_are_a_user_error(mixed_model: Path, tmp_path: Path) -> None:
    samples = tmp_path / "deep.jsonl"
    samples.write_text('{"dense": ' + "[" * 5000 + "]" * 5000 + "}\n")
    with pytest.raises(UserError, match="nested"):
        generate_warmup(mixed_model, samples, records=1)


def test_a_csv_with_a_byte_order_mark_reads_its_first_column(
    mixed_model: Path, tmp_path: Path
) -> None:
    samples = tmp_path / "excel.csv"
    samples.write_bytes(b"\xef\xbb\xbfcount,label\r\n3,1\r\n")  # as spreadsheets save it
    result = generate_warmup(mixed_model, samples, records=1, signature_name="by_count")
    assert result.records == 1
    assert not verify_warmup(mixed_model).problems


def test_a_fixed_batch_dimension_is_respected(tmp_path: Path) -> None:
    import tensorflow as tf

    class Fixed(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": x * 2}

    version = tmp_path / "fixed" / "1"
    module = Fixed()
    tf.saved_model.save(module, str(version), signatures={"serving_default": module.serve})
    samples = tmp_path / "x.jsonl"
    samples.write_text('{"x": [1, 2, 3, 4]}\n')
    with pytest.raises(UserError, match="fixed batch dimension of 1"):
        generate_warmup(version, samples, records=2, batch_sizes=[1, 8])
    assert not (version / WARMUP_RELATIVE_PATH).exists()  # nothing half-written
    generate_warmup(version, samples, records=2, batch_sizes=[1])
    assert not verify_warmup(version).problems
