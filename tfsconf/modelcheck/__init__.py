"""Model checks: catch, before TF Serving loads a model, what would fail or half-load it.

Version directory naming, duplicates, leftovers of interrupted copies, SavedModel
completeness (including every byte of every variables shard), the configured signature,
the warmup file, and a checksum manifest for model sync. No TensorFlow runtime.
"""

from __future__ import annotations

from tfsconf.modelcheck.check import ModelReport, VersionReport, check_model
from tfsconf.modelcheck.manifest import MANIFEST_NAME, compare_manifest, write_manifest
from tfsconf.modelcheck.render import render_json, render_text

__all__ = [
    "MANIFEST_NAME",
    "ModelReport",
    "VersionReport",
    "check_model",
    "compare_manifest",
    "render_json",
    "render_text",
    "write_manifest",
]
