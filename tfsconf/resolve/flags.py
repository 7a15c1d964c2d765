"""The exact command line of a server, derived once from its resolved settings.

Flags are always written as --name=value: TF Serving silently keeps the default when the
'=' is missing (seed 004). Each flag remembers which spec setting produced it, so that a
flag the declared release lacks is reported at the line that asked for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfsconf.diagnostics import Path
from tfsconf.resolve import model as r

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


def server_flags(server: r.Server) -> tuple[Flag, ...]:
    s = server.settings
    sp = server.spec_path
    flags = [
        Flag("port", str(server.grpc_port), (*sp, "grpc_port")),
        Flag("rest_api_port", str(server.rest_port), (*sp, "rest_port")),
        Flag("model_config_file", config_path(server, "models.config"), sp),
        Flag(
            "model_config_file_poll_wait_seconds",
            str(s.model_config_file_poll_wait_seconds),
            s.origin("model_config_file_poll_wait_seconds", sp),
        ),
    ]

    def optional(name: str, setting: str | None = None) -> None:
        key = setting or name
        value = getattr(s, key)
        if value is not None and key in s.origins:
            flags.append(Flag(name, _text(value), s.origin(key, sp)))

    optional("file_system_poll_wait_seconds")
    if s.batching_enabled:
        flags.append(Flag("enable_batching", "true", s.origin("batching.enabled", sp)))
        if s.batching is not None or s.batching_thread_pool is not None:
            flags.append(
                Flag(
                    "batching_parameters_file",
                    config_path(server, "batching_parameters.txt"),
                    s.origin("batching", sp),
                )
            )
        if s.batching_per_model:
            flags.append(
                Flag(
                    "enable_per_model_batching_parameters",
                    "true",
                    s.origin("batching.per_model", sp),
                )
            )
    if s.prometheus:
        flags.append(
            Flag(
                "monitoring_config_file",
                config_path(server, "monitoring.config"),
                s.origin("monitoring.prometheus", sp),
            )
        )
    optional("per_process_gpu_memory_fraction")
    optional("tensorflow_session_parallelism")
    optional("tensorflow_intra_op_parallelism")
    optional("tensorflow_inter_op_parallelism")
    if s.grpc_channel_arguments:
        flags.append(
            Flag(
                "grpc_channel_arguments",
                ",".join(s.grpc_channel_arguments),
                s.origin("grpc_channel_arguments", sp),
            )
        )
    optional("grpc_max_threads")
    optional("enable_grpc_healthcheck_service")
    optional("rest_api_num_threads")
    optional("rest_api_timeout_in_ms")
    optional("enable_model_warmup")
    optional("num_request_iterations_for_warmup")
    optional("max_num_load_retries")
    optional("load_retry_interval_micros")
    if s.session_config is not None:
        flags.append(
            Flag(
                "tensorflow_session_config_file",
                config_path(server, SESSION_CONFIG),
                s.origin("session_config", sp),
            )
        )
    for name in (
        "num_load_threads",
        "num_unload_threads",
        "enable_profiler",
        "xla_gpu_compilation_enabled",
        "mixed_precision",
        "flush_filesystem_caches",
        "grpc_socket_path",
        "enable_signature_method_name_check",
        "prefer_tflite_model",
        "num_tflite_pools",
        "num_tflite_interpreters_per_pool",
        "enable_serialization_as_tensor_content",
    ):
        optional(name)
    if s.allow_version_labels_for_unavailable_models is None:
        # TF Serving applies the label map before it loads anything (server_core.cc
        # ReloadConfig, UpdateModelVersionLabelMap), so at start every label points at a
        # version that is not loaded yet: without this flag a server with labels cannot
        # start. It is set whether or not the models have labels today, so that adding
        # the first label or removing the last stays a hot reload instead of a restart.
        # Moving an existing label still needs the version AVAILABLE (apply pushes such
        # moves in phases).
        flags.append(Flag("allow_version_labels_for_unavailable_models", "true", sp))
    else:
        optional("allow_version_labels_for_unavailable_models")
    return tuple(flags)
