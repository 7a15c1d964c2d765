"""The compiled bundle: every artifact of an environment, in memory, with its manifest.

Compilers are registered explicitly by artifact kind. Server artifacts depend only on the
server definition, which every host of a group shares, so each is rendered once per
server and reused for every host: compile cost grows with hosts only by file writes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tfsconf.compile import images, protos, runtime, warmup_tasks
from tfsconf.resolve import model as r
from tfsconf.resolve.flags import SESSION_CONFIG, server_flags

MANIFEST = "manifest.json"
MANIFEST_SCHEMA_VERSION = 2
"""2: hosts name the image each docker server runs (server_images), which plan reads."""
GENERATOR = "tfsconf"


@dataclass(frozen=True, slots=True)
class Bundle:
    """Relative path -> bytes for every artifact, manifest.json included."""

    environment: str
    files: Mapping[str, bytes]
    image_refs: Mapping[str, str]


ServerCompiler = Callable[[r.Server, r.Environment, Mapping[str, str]], Mapping[str, bytes]]


def _models_config(
    server: r.Server, env: r.Environment, refs: Mapping[str, str]
) -> dict[str, bytes]:
    return {"models.config": protos.render_models_config(server, env)}


def _batching(server: r.Server, env: r.Environment, refs: Mapping[str, str]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    # a per-model server still needs the global file: its thread pool comes only from there
    common = server.settings.batching or server.settings.batching_thread_pool
    if common is not None:
        out["batching_parameters.txt"] = protos.render_batching(common, env)
    for model in server.models:
        if model.batching is not None:
            # placed by apply into every version as <version>/batching_params.pbtxt
            out[f"models/{model.name}/batching_params.pbtxt"] = protos.render_batching(
                model.batching, env
            )
    return out


def _monitoring(server: r.Server, env: r.Environment, refs: Mapping[str, str]) -> dict[str, bytes]:
    if not server.settings.prometheus:
        return {}
    return {"monitoring.config": protos.render_monitoring(server, env)}


def _session_config(
    server: r.Server, env: r.Environment, refs: Mapping[str, str]
) -> dict[str, bytes]:
    config = server.settings.session_config
    if config is None:
        return {}
    return {SESSION_CONFIG: protos.render_session_config(config, env)}


def _flags(server: r.Server, env: r.Environment, refs: Mapping[str, str]) -> dict[str, bytes]:
    text = "".join(flag.render() + "\n" for flag in server_flags(server))
    return {"server.flags": text.encode()}


def _service(server: r.Server, env: r.Environment, refs: Mapping[str, str]) -> dict[str, bytes]:
    if server.runtime == "process":
        return {"launch.json": runtime.render_launch(server, env)}
    image_ref = refs[server.image] if server.runtime == "docker" else None
    return {runtime.unit_name(server): runtime.render_unit(server, env, image_ref)}


SERVER_COMPILERS: Mapping[str, ServerCompiler] = {
    "models_config": _models_config,
    "batching": _batching,
    "monitoring": _monitoring,
    "session_config": _session_config,
    "flags": _flags,
    "service": _service,
}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_bundle(env: r.Environment) -> Bundle:
    files: dict[str, bytes] = {}
    refs: dict[str, str] = {}
    # Only docker servers run an image; native and process runtimes use the host's binary.
    used = {srv.image for host in env.hosts for srv in host.servers if srv.runtime == "docker"}
    for image in env.images:
        if image.name not in used:
            continue
        dockerfile = images.render_dockerfile(image, env)
        files[f"images/{image.name}/Dockerfile"] = dockerfile
        refs[image.name] = images.image_reference(image, env, dockerfile)
    rendered: dict[int, list[tuple[str, bytes]]] = {}
    warmup = warmup_tasks.WarmupRenderer(env)
    for host in env.hosts:
        for server in host.servers:
            artifacts = rendered.get(id(server))
            if artifacts is None:
                artifacts = rendered[id(server)] = [
                    item
                    for compiler in SERVER_COMPILERS.values()
                    for item in compiler(server, env, refs).items()
                ]
            prefix = f"hosts/{host.name}/{server.name}/"
            for name, data in artifacts:
                files[prefix + name] = data
        files[f"hosts/{host.name}/warmup.json"] = warmup.render(host)
    digests: dict[int, str] = {}
    artifacts_index = {}
    for path in sorted(files):
        data = files[path]
        digest = digests.get(id(data))
        if digest is None:
            digest = digests[id(data)] = _sha256(data)
        artifacts_index[path] = digest
    manifest = {
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
                    server.name: server.image
                    for server in host.servers
                    if server.runtime == "docker"
                },
            }
            for host in env.hosts
        },
        "artifacts": artifacts_index,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return Bundle(environment=env.name, files=files, image_refs=refs)
