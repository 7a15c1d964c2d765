"""Per-model batching files in the version directories, where TF Serving reads them.

With `--enable_per_model_batching_parameters`, TF Serving reads
`<base_path>/<version>/batching_params.pbtxt` when that version loads
(servables/tensorflow/bundle_factory_util.cc, GetPerModelBatchingParams); a version
without the file is served unbatched, and a loaded version never reads it again. So apply
puts the compiled file (`<server>/models/<model>/batching_params.pbtxt` in a host's
artifacts) into every version a server will serve before that version can load:

- a version synced by this run gets it in its staging directory, before the rename that
  publishes it (the `batching` of each sync);
- a version already on the host gets it (or loses it) by a temporary file renamed over
  it, before `current` switches and the server reloads or restarts (`placements`);
- a failed host puts the previous release's files back before its servers are reverted,
  and `tfsconf rollback` places the target release's files the same way.

A changed file for a version that is already loaded only takes effect when the version
loads again, which is why the planner restarts the server for it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

BATCHING_PARAMS = "batching_params.pbtxt"


def per_model_files(files: Mapping[str, str] | Mapping[str, bytes]) -> dict[str, str]:
    """model -> text of its per-model batching file, from a host's artifacts keyed
    `<server>/models/<model>/batching_params.pbtxt` (servers of one host that serve the same
    base path resolve the same file: validate checks it)."""
    out: dict[str, str] = {}
    for rel, data in sorted(files.items()):
        parts = rel.split("/")
        if len(parts) == 4 and parts[1] == "models" and parts[3] == BATCHING_PARAMS:
            text = data.decode() if isinstance(data, bytes) else str(data)
            out.setdefault(parts[2], text)
    return out


def placements(
    want_files: Mapping[str, str] | Mapping[str, bytes],
    want_models: Mapping[str, Mapping[str, Any]],
    have_files: Mapping[str, str] | Mapping[str, bytes],
    have_models: Mapping[str, Mapping[str, Any]],
    skip: Collection[tuple[str, int]] = (),
) -> list[dict[str, Any]]:
    """Versions already on the host whose batching_params.pbtxt must change to go from the
    `have` state to the `want` state: [{"base_path", "version", "content" (None: none)}].

    `*_models` are records' `models` ({model: {"base_path", "versions"}}); `skip` holds the
    (base path, version) pairs this run publishes itself, with their file staged."""
    want = per_model_files(want_files)
    have = per_model_files(have_files)
    items: dict[tuple[str, int], dict[str, Any]] = {}
    for model, info in sorted(want_models.items()):
        base_path = str(info["base_path"])
        content = want.get(model)
        before = have.get(model)
        had = have_models.get(model) or {}
        known = set(had.get("versions", [])) if had.get("base_path") == base_path else set()
        for version in info.get("versions", []):
            key = (base_path, int(version))
            if key in skip or key in items:
                continue
            # a version the host served before holds `before`; one it did not may hold
            # anything an earlier state left, so it is set whenever a file is wanted
            if content != before or (version not in known and content is not None):
                items[key] = {"base_path": base_path, "version": int(version), "content": content}
    return [items[key] for key in sorted(items)]
