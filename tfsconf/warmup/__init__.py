"""Warmup files for TF Serving: generated from a SavedModel's signature, then proven.

TF Serving replays ``assets.extra/tf_serving_warmup_requests`` when it loads a version,
and a bad record fails the load. This package writes that file from sample data and
checks it before it ships, without importing TensorFlow (except ``replay``).
"""

from __future__ import annotations

from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, WARMUP_RELATIVE_PATH, warmup_path
from tfsconf.warmup.generate import WarmupResult, generate_warmup
from tfsconf.warmup.verify import WarmupProblem, WarmupReport, verify_warmup

__all__ = [
    "MAX_WARMUP_RECORDS",
    "WARMUP_RELATIVE_PATH",
    "WarmupProblem",
    "WarmupReport",
    "WarmupResult",
    "generate_warmup",
    "verify_warmup",
    "warmup_path",
]
