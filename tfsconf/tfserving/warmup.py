"""Where TF Serving looks for warmup data, the limit it enforces on it, and which sample
files tfsconf builds warmup requests from. Kept free of heavy imports: validation uses it."""

from __future__ import annotations

from pathlib import Path, PurePath

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
WARMUP_RELATIVE_PATH = Path(WARMUP_DIR) / WARMUP_FILE

# saved_model_warmup_util.cc rejects a file with more records than this; the load fails.
MAX_WARMUP_RECORDS = 1000

SAMPLE_FORMATS = ("auto", "jsonl", "csv", "tfrecord")
SAMPLE_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tfrecord": "tfrecord",
    ".tfrecords": "tfrecord",
}


def warmup_path(model_dir: Path) -> Path:
    """<version dir>/assets.extra/tf_serving_warmup_requests."""
    return model_dir / WARMUP_RELATIVE_PATH


def sample_format_of(path: PurePath, declared: str = "auto") -> str | None:
    """The sample format: as declared, or by the file's extension; None when unknown."""
    if declared != "auto":
        return declared if declared in SAMPLE_FORMATS else None
    return SAMPLE_EXTENSIONS.get(path.suffix.lower())
