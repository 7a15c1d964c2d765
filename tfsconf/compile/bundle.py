"""The compiled bundle: every artifact of an environment, in memory, with its manifest.

Each artifact kind is declared once, with its renderer, in compile/artifacts.py. Server
artifacts depend only on the server definition, which every host of a group shares, so
each is rendered once per server and reused for every host: compile cost grows with hosts
only by file writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from tfsconf.compile import artifacts
from tfsconf.compile.templating import Templates
from tfsconf.contracts import Manifest
from tfsconf.kinds import RUNTIMES
from tfsconf.resolve import model as r

MANIFEST = artifacts.MANIFEST.path()
MANIFEST_SCHEMA_VERSION = 2
"""2: hosts name the image each docker server runs (server_images), which plan reads."""
GENERATOR = "tfsconf"


@dataclass(frozen=True, slots=True)
class Bundle:
    """Relative path -> bytes for every artifact, manifest.json included."""

    environment: str
    files: Mapping[str, bytes]
    image_refs: Mapping[str, str]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _in_container(server: r.Server) -> bool:
    return RUNTIMES[server.runtime].container


def build_bundle(env: r.Environment) -> Bundle:
    files: dict[str, bytes] = {}
    refs: dict[str, str] = {}
    templates = Templates()
    # Only a container runs an image; the other runtimes use the host's own binary.
    used = {srv.image for host in env.hosts for srv in host.servers if _in_container(srv)}
    for image in env.images:
        if image.name not in used:
            continue
        path, dockerfile, refs[image.name] = artifacts.render_dockerfile(image, env, templates)
        files[path] = dockerfile
    job = artifacts.Compilation(image_refs=refs, templates=templates)
    rendered: dict[int, list[tuple[str, bytes]]] = {}
    warmup = artifacts.warmup_renderer(env)
    for host in env.hosts:
        for server in host.servers:
            own = rendered.get(id(server))
            if own is None:
                own = rendered[id(server)] = artifacts.render_server(server, env, job)
            for name, data in own:
                files[artifacts.server_path(host.name, server.name, name)] = data
        rel, data = warmup(host)
        files[artifacts.host_path(host.name, rel)] = data
    digests: dict[int, str] = {}
    artifacts_index: dict[str, str] = {}
    for path in sorted(files):
        data = files[path]
        digest = digests.get(id(data))
        if digest is None:
            digest = digests[id(data)] = _sha256(data)
        artifacts_index[path] = digest
    manifest: Manifest = {
        "generator": GENERATOR,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "environment": env.name,
        "tfserving_version": env.tfserving_version,
        "spec_sha256": env.spec_sha256,
        "images": dict(sorted(refs.items())),
        "hosts": {
            host.name: {
                "address": host.address,
                "group": host.group,
                "runtime": host.runtime,
                "servers": [server.name for server in host.servers],
                "server_images": {
                    server.name: server.image for server in host.servers if _in_container(server)
                },
            }
            for host in env.hosts
        },
        "artifacts": artifacts_index,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return Bundle(environment=env.name, files=files, image_refs=refs)
