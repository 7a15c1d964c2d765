"""Server activations, built one way for apply, rollback and repair.

An activation tells the playbooks how one server takes its new release (restart, hot
reload in phases, stop), what it must serve afterwards (the health gate), what to try
(smoke) and what it ran before (the revert of a failed host). Everything about the
server's process comes from the server.flags it runs with (the new release's, or for a
removed server its last one), so a server without them is an error, never port 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from tfsconf.compile.artifacts import FLAGS, MODELS_CONFIG, unit_file
from tfsconf.contracts import Activation, ActivationKind, Expect, Previous, Push, SmokeItem
from tfsconf.errors import UserError
from tfsconf.plan.model import Phase

TFSERVING_DEFAULT_GRPC_PORT = 8500
"""main.cc: --port defaults to 8500."""


def grpc_port_of(flags: str | None, server: str) -> int:
    """The gRPC port a server listens on, from its recorded server.flags (a revert and a
    rollback wait on it, so a missing record is an error, never port 0)."""
    if flags is None:
        raise UserError(
            f"server {server}: the host's record holds no {FLAGS.path()}, so the port to "
            "wait on is unknown"
        )
    match = re.search(r"^--port=(\d+)$", flags, re.MULTILINE)
    return int(match.group(1)) if match else TFSERVING_DEFAULT_GRPC_PORT


def reload_deadline_of(flags: str | None, load_allowance: float) -> float:
    """The reload deadline of a server, from the flags it runs with (serving.reload_deadline)."""
    from tfsconf.apply.serving import reload_deadline

    values = dict(re.findall(r"^--([a-z_]+)=(\d+)$", flags or "", re.MULTILINE))

    def number(name: str) -> int | None:
        return int(values[name]) if name in values else None

    return reload_deadline(
        file_system_poll_wait_seconds=number("file_system_poll_wait_seconds"),
        max_num_load_retries=number("max_num_load_retries"),
        load_retry_interval_micros=number("load_retry_interval_micros"),
        load_allowance=load_allowance,
    )


def config_poll_seconds_of(flags: str | None) -> int:
    """--model_config_file_poll_wait_seconds (0: reloads are RPCs sent by apply)."""
    match = re.search(r"^--model_config_file_poll_wait_seconds=(\d+)$", flags or "", re.MULTILINE)
    return int(match.group(1)) if match else 0


def policy_expect(models_config: str | None, resolved: Mapping[str, list[int]]) -> Expect:
    """model -> the versions a models.config makes the server serve; a latest/all policy
    takes the versions resolved when the release was applied."""
    from tfsconf.apply.serving import expectations

    if not models_config:
        return {}
    out: Expect = {}
    for model, versions in expectations(models_config).items():
        out[model] = versions if versions is not None else resolved.get(model)
    return out


_ACTIVATION_KINDS: tuple[ActivationKind, ...] = (
    "create",
    "remove",
    "rebuild",
    "restart",
    "hot-reload",
    "none",
)


def activation_kind(kind: str) -> ActivationKind:
    """A plan's server action as an activation (sync and warmup are no activations)."""
    for known in _ACTIVATION_KINDS:
        if kind == known:
            return known
    raise ValueError(f"{kind!r} is not a server activation")


def pushes(phases: Iterable[Phase], final: str) -> list[Push]:
    """The models.config pushes of a hot reload: the plan's phases, else one push."""
    out: list[Push] = []
    for phase in phases:
        expect: dict[str, list[int]] = {}
        for model, version in phase.wait_for:
            expect.setdefault(model, []).append(version)
        out.append({"models_config": phase.models_config, "expect": expect})
    return out or [{"models_config": final, "expect": {}}]


def previous(
    release: str | None, files: Mapping[str, str], resolved: Mapping[str, list[int]]
) -> Previous:
    """What a server ran before: its release (None: it is new) and that release's files."""
    config = files.get(MODELS_CONFIG.path())
    return {
        "release": release,
        "models_config": config,
        "expect": policy_expect(config, resolved),
    }


def activation(
    *,
    server: str,
    kind: ActivationKind,
    address: str,
    files: Mapping[str, str],
    resolved: Mapping[str, list[int]],
    timeout: float,
    before: Previous,
    phases: list[Push] | None = None,
    smoke: list[SmokeItem] | None = None,
) -> Activation:
    """One server's activation. `files` are the artifacts of the release it runs
    afterwards (for a removed server: the one it ran), `resolved` that release's
    latest/all versions; a removed server has nothing to wait for."""
    flags = files.get(FLAGS.path())
    removed = kind == "remove"
    return {
        "server": server,
        "kind": kind,
        "address": address,
        "grpc_port": grpc_port_of(flags, server),
        "reload_deadline": reload_deadline_of(flags, timeout),
        "config_poll_seconds": config_poll_seconds_of(flags),
        "unit": unit_file(server),
        "phases": phases or [],
        "expect": {} if removed else policy_expect(files.get(MODELS_CONFIG.path()), resolved),
        "smoke": smoke or [],
        "previous": before,
    }
