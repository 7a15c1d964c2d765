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

from tfsconf.compile.artifacts import MODEL_BATCHING, per_model_batching, version_dir_file
from tfsconf.contracts import ModelRecord, VersionFile

BATCHING_PARAMS = version_dir_file(MODEL_BATCHING)


def placements(
    want_files: Mapping[str, str] | Mapping[str, bytes],
    want_models: Mapping[str, ModelRecord],
    have_files: Mapping[str, str] | Mapping[str, bytes],
    have_models: Mapping[str, ModelRecord],
    skip: Collection[tuple[str, int]] = (),
) -> list[VersionFile]:
    """Versions already on the host whose batching_params.pbtxt must change to go from the
    `have` state to the `want` state (content None: the version has none).

    `*_models` are records' `models`; `skip` holds the (base path, version) pairs this run
    publishes itself, with their file staged."""
    want = per_model_batching(want_files)
    have = per_model_batching(have_files)
    items: dict[tuple[str, int], VersionFile] = {}
    for model, info in sorted(want_models.items()):
        base_path = str(info["base_path"])
        content = want.get(model)
        before = have.get(model)
        had = have_models.get(model)
        known = set(had.get("versions", [])) if had and had.get("base_path") == base_path else set()
        for version in info.get("versions", []):
            key = (base_path, int(version))
            if key in skip or key in items:
                continue
            # a version the host served before holds `before`; one it did not may hold
            # anything an earlier state left, so it is set whenever a file is wanted
            if content != before or (version not in known and content is not None):
                items[key] = {"base_path": base_path, "version": int(version), "content": content}
    return [items[key] for key in sorted(items)]
