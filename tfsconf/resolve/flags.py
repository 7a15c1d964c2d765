"""The exact command line of a server, derived once from its resolved settings.

Flags are always written as --name=value: TF Serving silently keeps the default when the
'=' is missing (seed 004). Each flag remembers which spec setting produced it, so that a
flag the declared release lacks is reported at the line that asked for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tfsconf.diagnostics import Path
from tfsconf.resolve import model as r
from tfsconf.spec.settings import ServerSettings, plain_flags

# The files a server is pointed at by flag, in the active release's config directory.
# The flags are derived here, before compile, so the names are declared here and the
# artifact registry (tfsconf/compile/artifacts.py) takes them from here.
MODELS_CONFIG = "models.config"
"""ModelServerConfig (text format), read by --model_config_file."""
BATCHING_PARAMETERS = "batching_parameters.txt"
"""BatchingParameters (text format), read by --batching_parameters_file."""
MONITORING_CONFIG = "monitoring.config"
"""MonitoringConfig (text format), read by --monitoring_config_file."""
SESSION_CONFIG = "session_config.pbtxt"
"""The TensorFlow ConfigProto (text format) read by --tensorflow_session_config_file."""


@dataclass(frozen=True, slots=True)
class Flag:
    name: str
    value: str
    origin: Path

    def render(self) -> str:
        return f"--{self.name}={self.value}"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_path(server: r.Server, artifact: str) -> str:
    """Where an artifact of the active release is read by the server (same path in the
    container: the config directory is mounted at its host path)."""
    return f"{server.config_dir}/current/{artifact}"


def _plain(server: r.Server, name: str) -> Flag | None:
    s = server.settings
    value = getattr(s.layered, name)
    if value is None or name not in s.origins:
        return None
    return Flag(name, _text(value), s.origin(name, server.spec_path))


def _ports_and_config(server: r.Server) -> Iterator[Flag]:
    s, sp = server.settings, server.spec_path
    yield Flag("port", str(server.grpc_port), (*sp, "grpc_port"))
    yield Flag("rest_api_port", str(server.rest_port), (*sp, "rest_port"))
    yield Flag("model_config_file", config_path(server, MODELS_CONFIG), sp)
    yield Flag(
        "model_config_file_poll_wait_seconds",
        str(s.model_config_file_poll_wait_seconds),
        s.origin("model_config_file_poll_wait_seconds", sp),
    )


def _batching(server: r.Server) -> Iterator[Flag]:
    s, sp = server.settings, server.spec_path
    if not s.batching_enabled:
        return
    yield Flag("enable_batching", "true", s.origin("batching.enabled", sp))
    if s.batching is not None or s.batching_thread_pool is not None:
        path = config_path(server, BATCHING_PARAMETERS)
        yield Flag("batching_parameters_file", path, s.origin("batching", sp))
    if s.batching_per_model:
        origin = s.origin("batching.per_model", sp)
        yield Flag("enable_per_model_batching_parameters", "true", origin)


def _monitoring(server: r.Server) -> Iterator[Flag]:
    s, sp = server.settings, server.spec_path
    if s.prometheus:
        path = config_path(server, MONITORING_CONFIG)
        yield Flag("monitoring_config_file", path, s.origin("monitoring.prometheus", sp))


def _channel_arguments(server: r.Server) -> Iterator[Flag]:
    s, sp = server.settings, server.spec_path
    if s.layered.grpc_channel_arguments:
        value = ",".join(s.layered.grpc_channel_arguments)
        yield Flag("grpc_channel_arguments", value, s.origin("grpc_channel_arguments", sp))


def _session_config(server: r.Server) -> Iterator[Flag]:
    s, sp = server.settings, server.spec_path
    if s.session_config is not None:
        path = config_path(server, SESSION_CONFIG)
        yield Flag("tensorflow_session_config_file", path, s.origin("session_config", sp))


def _version_labels(server: r.Server) -> Iterator[Flag]:
    name = "allow_version_labels_for_unavailable_models"
    if server.settings.layered.allow_version_labels_for_unavailable_models is None:
        # TF Serving applies the label map before it loads anything (server_core.cc
        # ReloadConfig, UpdateModelVersionLabelMap), so at start every label points at a
        # version that is not loaded yet: without this flag a server with labels cannot
        # start. It is set whether or not the models have labels today, so that adding
        # the first label or removing the last stays a hot reload instead of a restart.
        # Moving an existing label still needs the version AVAILABLE (apply pushes such
        # moves in phases).
        yield Flag(name, "true", server.spec_path)
    elif (flag := _plain(server, name)) is not None:
        yield flag


PLAIN_FLAGS: tuple[str, ...] = plain_flags(ServerSettings)
"""The server settings marked FLAG in tfsconf/spec/settings.py: each is written as the flag
of the same name, --name=value, when the spec sets it (a setting left out keeps TF Serving's
own default)."""


@dataclass(frozen=True, slots=True)
class Plain:
    """Plain flags written at this place of the command line."""

    names: tuple[str, ...]

    def __call__(self, server: r.Server) -> Iterator[Flag]:
        for name in self.names:
            if (flag := _plain(server, name)) is not None:
                yield flag


# Plain flags that earlier releases of tfsconf wrote among the computed ones keep their
# places, since the order is part of every compiled unit and flags file.
_POLLING = Plain(("file_system_poll_wait_seconds",))
_SESSION = Plain(
    (
        "per_process_gpu_memory_fraction",
        "tensorflow_session_parallelism",
        "tensorflow_intra_op_parallelism",
        "tensorflow_inter_op_parallelism",
    )
)
_SERVING = Plain(
    (
        "grpc_max_threads",
        "enable_grpc_healthcheck_service",
        "rest_api_num_threads",
        "rest_api_timeout_in_ms",
        "enable_model_warmup",
        "num_request_iterations_for_warmup",
        "max_num_load_retries",
        "load_retry_interval_micros",
    )
)
_PLACED = frozenset(_POLLING.names + _SESSION.names + _SERVING.names)
_THE_OTHERS = Plain(tuple(name for name in PLAIN_FLAGS if name not in _PLACED))
"""Every other plain flag, in the order the spec declares them: a new one needs no entry here."""

COMMAND_LINE: tuple[Callable[[r.Server], Iterator[Flag]], ...] = (
    _ports_and_config,
    _POLLING,
    _batching,
    _monitoring,
    _SESSION,
    _channel_arguments,
    _SERVING,
    _session_config,
    _THE_OTHERS,
    _version_labels,
)
"""A server's command line in order (the order is part of every compiled unit and flags
file). A plain setting needs only its spec field marked FLAG and its release window in
tfsconf/tfserving/flag_table.py; a computed flag is a function here.
tests/resolve/test_settings_declared_once.py checks that they agree."""


def server_flags(server: r.Server) -> tuple[Flag, ...]:
    return tuple(flag for part in COMMAND_LINE for flag in part(server))
