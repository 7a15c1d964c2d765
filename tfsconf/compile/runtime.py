"""How a server process is started: the systemd unit (docker or native) or, for the
supervised-process runtime, a launch file with the exact argv and environment."""

from __future__ import annotations

import json

from tfsconf.compile.templating import Templates
from tfsconf.kinds import RUNTIMES
from tfsconf.resolve import model as r
from tfsconf.resolve.flags import server_flags

NATIVE_BINARY = "/usr/bin/tensorflow_model_server"


def container_name(server: r.Server) -> str:
    return f"tfserving-{server.name}"


def docker_argv(server: r.Server, image_ref: str) -> list[str]:
    """The docker run command line, one option (with its value) per entry."""
    # --init: tini as PID 1 forwards SIGTERM; the server installs no SIGTERM handler, and
    # as PID 1 it would ignore the signal, so `docker stop` waited out its whole timeout
    # and killed it (tensorflow/serving#1853)
    argv = [f"/usr/bin/docker run --rm --init --name {container_name(server)}"]
    if server.gpu is not None:
        argv.append(f"--gpus device={server.gpu}")
    if server.docker_network == "host":
        # the server binds its ports on the host itself; nothing to publish
        argv.append("--network host")
    else:
        argv.append(f"--publish {server.grpc_port}:{server.grpc_port}")
        if server.rest_port:
            argv.append(f"--publish {server.rest_port}:{server.rest_port}")
    # read-only: the server never writes its config or models; apply does, on the host
    for path in (server.model_root, server.config_dir):
        argv.append(f"--mount type=bind,source={path},target={path},readonly")
    argv.append(image_ref)
    return argv + [flag.render() for flag in server_flags(server)]


def preload_environment(image: r.Image) -> list[tuple[str, str]]:
    values = []
    if image.allocator_library:
        values.append(("LD_PRELOAD", image.allocator_library))
        if image.malloc_conf:
            values.append(("MALLOC_CONF", image.malloc_conf))
    return values


def visible_devices(server: r.Server) -> tuple[str, str]:
    """Outside a container a process sees every GPU of the host: a GPU server gets its own,
    a CPU server none (a GPU build would otherwise claim memory on all of them)."""
    return ("CUDA_VISIBLE_DEVICES", "" if server.gpu is None else str(server.gpu))


def render_unit(
    server: r.Server, env: r.Environment, image_ref: str | None, templates: Templates
) -> bytes:
    """The systemd unit; image_ref is the image a docker server runs (None otherwise)."""
    image = env.image(server.image)
    if image_ref is not None:
        argv, env_vars = docker_argv(server, image_ref), []
    else:
        argv = [NATIVE_BINARY] + [flag.render() for flag in server_flags(server)]
        env_vars = [*preload_environment(image), visible_devices(server)]
    return templates.render(
        "tfserving.service.j2",
        environment=env.name,
        server=server.name,
        in_container=RUNTIMES[server.runtime].container,
        container=container_name(server),
        argv=argv,
        environment_vars=env_vars,
    )


def render_launch(server: r.Server, env: r.Environment) -> bytes:
    """The supervised-process runtime: argv and environment, for a supervisor to exec."""
    image = env.image(server.image)
    env_vars = dict([*preload_environment(image), visible_devices(server)])
    data = {
        "schema_version": 1,
        "server": server.name,
        "argv": ["tensorflow_model_server"] + [f.render() for f in server_flags(server)],
        "env": env_vars,
        "grpc_port": server.grpc_port,
        "rest_port": server.rest_port,
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
