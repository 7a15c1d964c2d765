"""Where TF Serving looks for warmup data, and the limits it enforces on it."""

from __future__ import annotations

from pathlib import Path

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_RELATIVE_PATH = Path(WARMUP_DIR) / WARMUP_FILE

# saved_model_warmup_util.cc rejects a file with more records than this; the load fails.
MAX_WARMUP_RECORDS = 1000


def warmup_path(model_dir: Path) -> Path:
    """<version dir>/assets.extra/tf_serving_warmup_requests."""
    return model_dir / WARMUP_RELATIVE_PATH
