"""`tfsconf warmup` as a user runs it: a real process, exit codes, stdout vs stderr."""

from __future__ import annotations

from pathlib import Path

import pytest
from cliprobe import probe, tfsconf

from tfsconf.warmup import WARMUP_RELATIVE_PATH

pytestmark = pytest.mark.slow


def test_generate_then_verify(mixed_model: Path, mixed_samples: Path) -> None:
    done = tfsconf(
        "warmup", "generate", "--model-dir", str(mixed_model), "--samples", str(mixed_samples),
        "--records", "6", "--batch-sizes", "1,2",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    target = mixed_model / WARMUP_RELATIVE_PATH
    assert done.stdout == f"{target}\n"
    assert "wrote 6 records (mixed/serving_default, batch sizes 1,2)" in done.stderr
    done = tfsconf("warmup", "verify", str(mixed_model))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{target}: 6 records (6 predict_log)", "ok"]


def test_generate_and_verify_do_not_initialise_tensorflow(
    mixed_model: Path, mixed_samples: Path
) -> None:
    generated = probe(
        "warmup", "generate", "--model-dir", str(mixed_model), "--samples", str(mixed_samples),
    )  # fmt: skip
    verified = probe("warmup", "verify", str(mixed_model))
    for outcome in (generated, verified):
        assert outcome == {"code": 0, "tensorflow": False, "runtime": [], "native": False}


def test_replay_does_use_tensorflow(mixed_model: Path, mixed_samples: Path) -> None:
    assert probe(
        "warmup", "generate", "--model-dir", str(mixed_model), "--samples", str(mixed_samples),
    )["code"] == 0  # fmt: skip
    outcome = probe("warmup", "verify", str(mixed_model), "--replay")
    assert outcome["code"] == 0
    assert outcome["tensorflow"] is True  # the probe itself can tell the two apart
    assert outcome["native"] is True


def test_user_errors_exit_1_without_traceback(mixed_model: Path, mixed_samples: Path) -> None:
    done = tfsconf(
        "warmup", "generate", "--model-dir", str(mixed_model), "--samples", str(mixed_samples),
        "--records", "1001",
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith("error: 1001 warmup records requested")
    assert "Traceback" not in done.stderr


def test_bad_batch_sizes_option(mixed_model: Path, mixed_samples: Path) -> None:
    done = tfsconf(
        "warmup", "generate", "--model-dir", str(mixed_model), "--samples", str(mixed_samples),
        "--batch-sizes", "1,eight",
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        1,
        "error: --batch-sizes: 'eight' is not an integer\n",
    )


def test_verify_corrupted_file_exits_1(mixed_model: Path, mixed_samples: Path) -> None:
    assert tfsconf(
        "warmup", "generate", "--model-dir", str(mixed_model), "--samples", str(mixed_samples),
    ).returncode == 0  # fmt: skip
    target = mixed_model / WARMUP_RELATIVE_PATH
    target.write_bytes(target.read_bytes()[:-3])
    done = tfsconf("warmup", "verify", str(mixed_model))
    assert done.returncode == 1
    assert "problem: " in done.stdout
    assert "truncated" in done.stdout
    assert "Traceback" not in done.stderr
