#!/usr/bin/python
"""Ansible module: publish one model version on a host, verified, by staging and rename.

Runs on the target host (python3 >= 3.8, stdlib only). TF Serving loads any directory
whose name is an integer, including one still being copied, so the version is assembled
under ``<base_path>/.tfsconf-staging-<version>`` (ignored by the server), verified file by
file, given its ``.tfsconf-manifest.json`` and only then renamed to ``<base_path>/<version>``.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tfsconf_sync_files import (
    SOURCE_KINDS,
    STAGING_PREFIX,
    SyncError,
    describe_error,
)
from ansible.module_utils.tfsconf_sync_publish import Syncer

DOCUMENTATION = r"""
module: tfsconf_model_sync
short_description: Publish a TF Serving model version atomically and verified
description:
  - Copies C(<source.location>/<version>/) into C(<base_path>/.tfsconf-staging-<version>),
    verifies every file (sha256 from the source's C(.tfsconf-manifest.json), or md5 from
    C(MD5SUMS)), adds the warmup file and a tfsconf manifest, then renames the staging
    directory to C(<base_path>/<version>). A numeric directory never holds partial content.
  - An existing C(<base_path>/<version>) whose manifest matches the source is left alone
    (changed=false, file contents are not read; the manifest written at publish time is
    trusted, only sizes are checked). One with other content is an error; it is never
    modified or deleted, since TF Serving may be serving it.
  - On failure or interruption the staging directory stays; the next run keeps the staged
    files whose digest matches and fetches only the rest. A full disk (ENOSPC, EDQUOT) is
    not retried, and the staging directory is removed to give the space back; the message
    says what was being written and how much the filesystem has free.
  - C(<version>/batching_params.pbtxt) is tfsconf's, not the source's; TF Serving reads it
    when the version loads (per-model batching), so it is staged with the version before
    the rename publishes it. In a published version it is the one file that is changed in
    place (a temporary file renamed over it, then the manifest), or removed, to match
    O(batching_params); a version without the file is served unbatched.
options:
  base_path: {type: path, required: true, description: The model's base path on the host.}
  version: {type: int, required: true, description: Version number (> 0).}
  source:
    type: dict
    description: Where C(<location>/<version>/) is read from (required unless only_batching).
    suboptions:
      kind: {type: str, required: true, choices: [local, http, webhdfs]}
      location:
        type: str
        required: true
        description: A directory (local), an http(s) URL (http), or webhdfs://host:port/path.
      checksums:
        type: str
        default: sha256
        choices: [sha256, md5]
        description: md5 reads C(<url>/<version>/MD5SUMS) (http, webhdfs) instead of the manifest.
  auth:
    type: dict
    description:
      - Credentials for an http source (HTTP basic) or a webhdfs source (delegation token).
        Sent only to the source's own origin (not to a host it redirects to) and never
        returned or logged (C(secret) is a no_log option).
    suboptions:
      scheme: {type: str, required: true, choices: [basic, delegation]}
      username: {type: str, description: The user name for basic.}
      secret: {type: str, required: true, no_log: true, description: Password or token.}
  warmup_file:
    type: path
    description: >-
      A file on the host placed at assets.extra/tf_serving_warmup_requests. The action of
      the same name (playbooks/action_plugins) takes warmup_src instead, a file on the
      controller, and sends it with the call.
  batching_params:
    type: str
    description: Text of the version's batching_params.pbtxt; omitted = the version has none.
  only_batching:
    type: bool
    default: false
    description: The version is published; only make its batching_params.pbtxt match.
  retries: {type: int, default: 3, description: Extra attempts per file after a failure.}
  retry_delay: {type: float, default: 2, description: Seconds between attempts.}
  bwlimit: {type: int, default: 0, description: Bytes per second for copying; 0 = unlimited.}
  timeout: {type: float, default: 60, description: Seconds per HTTP request.}
notes:
  - Supports check mode (nothing is written; changed says whether a sync is needed).
  - Each file is hashed as it is read and written, chunk by chunk (the digest is of the
    bytes written). Two files are copied at once (one when bwlimit is set); while more
    cores than files are at work, each digest is computed in a thread of its own.
  - A local source without a manifest is hashed while copying and the copy is verified by
    reading it back (in a thread, while it is written); an unchanged run then also hashes
    the source (give the source a manifest to make unchanged runs stat-only).
  - An md5 source has no sha256 to compare with the published manifest, so an unchanged
    run md5-hashes the published files.
"""
EXAMPLES = r"""
- name: Publish version 3 of resnet
  tfsconf_model_sync:
    base_path: /srv/models/resnet
    version: 3
    source: {kind: http, location: "https://models.example/resnet"}
    warmup_file: /srv/tfserving/config/main/current/warmup/resnet.tfrecord
    bwlimit: 104857600
"""
RETURN = r"""
version_dir: {type: str, description: The published directory.}
files_copied: {type: int, description: Files fetched (the warmup file counts when written).}
files_skipped: {type: int, description: Files already present and verified (staged or published).}
bytes_copied: {type: int, description: Bytes fetched.}
tree_sha256: {type: str, description: The manifest's tree_sha256 of the version.}
seconds: {type: float, description: Wall time of the module.}
"""


def run(module: AnsibleModule) -> dict[str, Any]:
    started = time.monotonic()
    params = module.params
    if params["version"] <= 0:
        raise SyncError(f"version must be a positive integer, got {params['version']}")
    syncer = Syncer(module)
    result = {
        "changed": False,
        "version_dir": syncer.version_dir,
        "files_copied": 0,
        "files_skipped": 0,
        "bytes_copied": 0,
        "tree_sha256": "",
    }
    if params["only_batching"]:
        if not os.path.isdir(syncer.version_dir) or os.path.islink(syncer.version_dir):
            raise SyncError(f"{syncer.version_dir} is not a published version")
        changed, tree = syncer.place_batching(module.check_mode)
        result.update(changed=changed, tree_sha256=tree, batching_changed=changed)
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    if syncer.source is None:
        raise SyncError("source is required unless only_batching is set")
    entries = syncer.expected_entries()
    if os.path.lexists(syncer.version_dir):
        if not os.path.isdir(syncer.version_dir) or os.path.islink(syncer.version_dir):
            raise SyncError(f"{syncer.version_dir} exists and is not a directory")
        problems, tree = syncer.published_problems(entries)
        if problems:
            shown = "; ".join(problems[:10])
            more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
            raise SyncError(
                f"{syncer.version_dir} is already published with other content: {shown}{more}. "
                "A published version is never modified in place or deleted (TF Serving may be "
                "serving it): publish the new content under a new version number"
            )
        changed, tree = syncer.place_batching(module.check_mode)
        result.update(
            changed=changed, files_skipped=len(entries), tree_sha256=tree, batching_changed=changed
        )
    elif module.check_mode:
        result["changed"] = True
    else:
        try:
            result["tree_sha256"] = syncer.sync(entries)
        finally:
            result.update(
                files_copied=syncer.files_copied,
                files_skipped=syncer.files_skipped,
                bytes_copied=syncer.bytes_copied,
            )
        result["changed"] = True
    result["seconds"] = round(time.monotonic() - started, 3)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_path": {"type": "path", "required": True},
            "version": {"type": "int", "required": True},
            "source": {
                "type": "dict",
                "options": {
                    "kind": {"type": "str", "required": True, "choices": SOURCE_KINDS},
                    "location": {"type": "str", "required": True},
                    "checksums": {"type": "str", "default": "sha256", "choices": ["sha256", "md5"]},
                },
            },
            "auth": {
                "type": "dict",
                "options": {
                    "scheme": {"type": "str", "required": True, "choices": ["basic", "delegation"]},
                    "username": {"type": "str"},
                    "secret": {"type": "str", "required": True, "no_log": True},
                },
            },
            "warmup_file": {"type": "path"},
            "batching_params": {"type": "str"},
            "only_batching": {"type": "bool", "default": False},
            "retries": {"type": "int", "default": 3},
            "retry_delay": {"type": "float", "default": 2.0},
            "bwlimit": {"type": "int", "default": 0},
            "timeout": {"type": "float", "default": 60.0},
        },
        supports_check_mode=True,
    )
    # a password in the URL must not come back in `invocation` or any message
    source = module.params["source"] or {"location": ""}
    password = urllib.parse.urlsplit(source["location"]).password
    if password:
        module.no_log_values.add(password)
    try:
        result = run(module)
    except SyncError as exc:
        module.fail_json(msg=str(exc), **staging_note(module))
    except OSError as exc:
        where = exc.filename if exc.filename else module.params["base_path"]
        module.fail_json(msg=f"{where}: {describe_error(exc)}", **staging_note(module))
    module.exit_json(**result)


def staging_note(module: AnsibleModule) -> dict[str, str]:
    """Where a failed run left its staging directory (the next run resumes from it)."""
    staging = os.path.join(
        os.path.abspath(module.params["base_path"]), f"{STAGING_PREFIX}{module.params['version']}"
    )
    return {"staging_dir": staging} if os.path.isdir(staging) else {}


if __name__ == "__main__":
    main()
