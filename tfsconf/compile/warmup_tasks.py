"""warmup.json: which model versions on a host need a warmup file, and from what samples.

Apply (or `tfsconf warmup generate`) executes these tasks before a version is published,
so the file is in place when TF Serving first loads the version.
"""

from __future__ import annotations

import json
import os
from collections.abc import MutableMapping
from pathlib import Path, PurePosixPath

from tfsconf.errors import UserError
from tfsconf.resolve import model as r
from tfsconf.spec.files import MAX_SAMPLES_BYTES, FileRefused, sha256_bounded
from tfsconf.tfserving.warmup import WARMUP_RELATIVE_PATH, sample_format_of


def _file_sha256(path: str, hashes: MutableMapping[str, str]) -> str:
    """Validation placed the file inside the allowed tree; it is read again here with the
    same bounds (a regular file of bounded size), in case it changed since."""
    digest = hashes.get(path)
    if digest is None:
        try:
            digest = hashes[path] = sha256_bounded(Path(path), MAX_SAMPLES_BYTES)
        except FileRefused as exc:
            raise UserError(f"warmup samples {path}: {exc.message}") from None
    return digest


def warmup_tasks(
    host: r.Host, env: r.Environment, hashes: MutableMapping[str, str]
) -> list[dict[str, object]]:
    tasks: dict[tuple[str, str], dict[str, object]] = {}
    spec_dir = os.path.dirname(env.spec_file)
    for server in host.servers:
        for model in server.models:
            warmup = model.warmup
            if warmup is None:
                continue
            key = (model.name, model.base_path)
            task = tasks.get(key)
            if task is not None:
                servers = task["servers"]
                assert isinstance(servers, list)
                servers.append(server.name)
                continue
            samples = warmup.samples
            shown = os.path.relpath(samples, spec_dir) if samples.startswith(spec_dir) else samples
            tasks[key] = {
                "model": model.name,
                "base_path": model.base_path,
                "versions": list(model.policy.versions)
                if model.policy.kind == "specific"
                else None,
                "version_policy": model.policy.describe(),
                "signature_name": model.signature_name,
                "samples": shown,
                "samples_format": sample_format_of(PurePosixPath(samples), warmup.format),
                "samples_sha256": _file_sha256(samples, hashes),
                "records": warmup.records,
                "batch_sizes": list(warmup.batch_sizes),
                "output": WARMUP_RELATIVE_PATH.as_posix(),
                "servers": [server.name],
            }
    return [tasks[key] for key in sorted(tasks)]


class WarmupRenderer:
    """Renders warmup.json per host. The tasks depend only on the servers a host runs,
    which every host of a group shares, so they are built and encoded once per group."""

    def __init__(self, env: r.Environment) -> None:
        self._env = env
        self._sample_hashes: dict[str, str] = {}
        self._encoded_tasks: dict[int, str] = {}

    def render(self, host: r.Host) -> bytes:
        tasks = self._encoded_tasks.get(id(host.servers))
        if tasks is None:
            listed = warmup_tasks(host, self._env, self._sample_hashes)
            # nested one level in the document: indent continuation lines by two spaces
            tasks = json.dumps(listed, indent=2, sort_keys=True).replace("\n", "\n  ")
            self._encoded_tasks[id(host.servers)] = tasks
        head = {"environment": self._env.name, "host": host.name, "schema_version": 1}
        text = json.dumps(head, indent=2, sort_keys=True)
        return (text[:-2] + f',\n  "tasks": {tasks}\n}}\n').encode()
