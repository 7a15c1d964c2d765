"""The last pass: the resolved environment (placement, ports, GPUs, batching and flags),
each diagnostic at the origin of the value that broke the rule."""

from __future__ import annotations

from collections.abc import Callable

from tfsconf.diagnostics import Path
from tfsconf.kinds import RUNTIMES
from tfsconf.resolve import model as r
from tfsconf.resolve.flags import server_flags
from tfsconf.spec.rules.collector import Collector, ServerScope, duplicates
from tfsconf.tfserving.flags import flag_missing_reason, parse_version


def check_resolved(env: r.Environment, out: Collector) -> None:
    version = parse_version(env.tfserving_version)
    checked: set[int] = set()
    hosts_by_group: dict[str, list[r.Host]] = {}
    for host in env.hosts:
        hosts_by_group.setdefault(host.group, []).append(host)
    for group in env.groups:
        hosts = hosts_by_group.get(group.name, [])
        servers = hosts[0].servers if hosts else ()
        _check_group_placement(group, hosts, servers, out)
        _check_shared_version_files(servers, out)
        for server in servers:
            if id(server) not in checked:
                checked.add(id(server))
                _check_server(server, version, out)


def _check_shared_version_files(servers: tuple[r.Server, ...], out: Collector) -> None:
    """Per-model batching and warmup live in each version directory, one file for every
    process on the host that serves that base path: the servers must agree on them."""
    first: dict[str, tuple[r.Server, r.Model]] = {}
    for server in servers:
        for model in server.models:
            other_server, other = first.setdefault(model.base_path, (server, model))
            if other_server is server:
                continue
            both_per_model = (
                server.settings.batching_per_model and other_server.settings.batching_per_model
            )
            if both_per_model and model.batching != other.batching:
                out.error(
                    model.origin("batching"),
                    f"servers '{other_server.name}' and '{server.name}' resolve different "
                    f"per-model batching for {model.base_path}, but its versions hold one "
                    "batching_params.pbtxt for both",
                )
            warmup = (model.warmup, model.signature_name if model.warmup else None)
            other_warmup = (other.warmup, other.signature_name if other.warmup else None)
            if warmup != other_warmup:
                out.error(
                    model.origin("warmup"),
                    f"servers '{other_server.name}' and '{server.name}' resolve different "
                    f"warmup for {model.base_path}, but its versions hold one warmup file",
                )


def _check_group_placement(
    group: r.Group, hosts: list[r.Host], servers: tuple[r.Server, ...], out: Collector
) -> None:
    # long: the port and GPU checks of one group share the per-group tables built here.
    ports: dict[int, r.Server] = {}
    for server in servers:
        sp = server.spec_path
        if server.rest_port == server.grpc_port:
            out.error(
                (*sp, "rest_port"), "REST port must differ from the gRPC port", server.rest_port
            )
        for field in ("grpc_port", "rest_port"):
            port = getattr(server, field)
            if port == 0:
                continue
            other = ports.get(port)
            if other is not None and other is not server:
                out.error(
                    (*sp, field),
                    f"port already used on the hosts of group '{group.name}' by server "
                    f"'{other.name}'",
                    port,
                )
            ports[port] = server
        if server.gpu is not None:
            for host in hosts:
                if server.gpu >= host.gpus:
                    out.error(
                        (*sp, "gpu"),
                        f"host '{host.name}' has {host.gpus} GPU(s): index must be below that",
                        server.gpu,
                    )
        fraction = server.settings.layered.per_process_gpu_memory_fraction
        if server.gpu is not None and fraction is not None and fraction > 1:
            out.warning(
                server.settings.origin("per_process_gpu_memory_fraction", sp),
                "above 1 TensorFlow allocates CUDA unified memory and oversubscribes the GPU "
                "with host memory as swap: expect much slower inference once it spills",
                fraction,
            )
        elif server.gpu is None and fraction is not None:
            out.error(
                server.settings.origin("per_process_gpu_memory_fraction", sp),
                "per_process_gpu_memory_fraction on a CPU server (set gpu, or remove it)",
                fraction,
            )
    by_gpu: dict[int, list[r.Server]] = {}
    for server in servers:
        if server.gpu is not None:
            by_gpu.setdefault(server.gpu, []).append(server)
    for gpu, sharing in sorted(by_gpu.items()):
        if len(sharing) < 2:
            continue
        names = ", ".join(x.name for x in sharing)
        fractions = [x.settings.layered.per_process_gpu_memory_fraction for x in sharing]
        for server, fraction in zip(sharing, fractions, strict=True):
            if fraction is None:
                out.error(
                    (*server.spec_path, "gpu"),
                    f"servers {names} share GPU {gpu}: each must set "
                    "per_process_gpu_memory_fraction (otherwise each claims the whole GPU)",
                    gpu,
                )
        if all(f is not None and f <= 1 for f in fractions):
            total = sum(f for f in fractions if f is not None)
            if total > 1.0 + 1e-9:
                last = sharing[-1]
                out.error(
                    last.settings.origin("per_process_gpu_memory_fraction", last.spec_path),
                    f"memory fractions of servers sharing GPU {gpu} ({names}) sum to "
                    f"{total:g}, more than 1",
                    round(total, 6),
                )


def _check_server(server: r.Server, version: tuple[int, int], out: Collector) -> None:
    # long: a flat list of independent per-server checks, in the order they report.
    s_ = server.settings
    sp = server.spec_path
    out = ServerScope(out, spec_path=sp, name=server.name)
    session = s_.layered.tensorflow_session_parallelism or 0
    intra = s_.layered.tensorflow_intra_op_parallelism or 0
    inter = s_.layered.tensorflow_inter_op_parallelism or 0
    names = ("session", "intra_op", "inter_op")
    if session > 0 and intra > 0 and inter > 0:
        out.error(
            r.most_specific([s_.origin(f"tensorflow_{name}_parallelism", sp) for name in names]),
            "session, intra-op and inter-op parallelism cannot all be set at once "
            "(TF Serving refuses to start)",
        )
    elif session > 0 and (intra > 0 or inter > 0):
        out.warning(
            s_.origin("tensorflow_session_parallelism", sp),
            "ignored by TF Serving while intra-op or inter-op parallelism is set",
            session,
        )
    keys = [arg.split("=", 1)[0] for arg in s_.layered.grpc_channel_arguments or ()]
    for index, key in duplicates(keys):
        out.error(
            (*s_.origin("grpc_channel_arguments", sp), index),
            "gRPC channel argument given twice",
            key,
        )
    for index, arg in enumerate(s_.layered.grpc_channel_arguments or ()):
        _check_channel_argument(arg, (*s_.origin("grpc_channel_arguments", sp), index), out)
    if s_.prometheus and server.rest_port == 0:
        out.error(
            s_.origin("monitoring.prometheus", sp),
            "Prometheus metrics are served on the REST port: rest_port must not be 0",
        )
    if s_.model_config_reload == "rpc" and s_.model_config_file_poll_wait_seconds > 0:
        out.error(
            s_.origin("model_config_file_poll_wait_seconds", sp),
            "config file polling must stay 0 with model_config_reload: rpc (a poll reverts "
            "an RPC reload)",
            s_.model_config_file_poll_wait_seconds,
        )
    if s_.model_config_reload == "poll" and s_.model_config_file_poll_wait_seconds == 0:
        out.error(
            s_.origin("model_config_reload", sp),
            "model_config_reload: poll needs model_config_file_poll_wait_seconds > 0",
            "poll",
        )
    if s_.layered.file_system_poll_wait_seconds == 0:
        # FileSystemStoragePathSource polls the disk once when it starts and then only
        # from its polling thread; UpdateConfig (every config reload) never polls.
        out.error(
            s_.origin("file_system_poll_wait_seconds", sp),
            "0 polls the model directories once at start only: a config reload (RPC or "
            "poll) never polls them again, so no new version or model would load until a "
            "restart",
            0,
        )
    labelled = [m for m in server.models if m.labels]
    if s_.layered.allow_version_labels_for_unavailable_models is False and labelled:
        out.error(
            s_.origin("allow_version_labels_for_unavailable_models", sp),
            f"server '{server.name}' serves labelled model '{labelled[0].name}': TF Serving "
            "applies labels before it loads anything, so with false the server cannot start",
            False,
        )
    _check_gpu_operator_settings(server, version, out)
    if not s_.batching_enabled and any(
        k.startswith("batching.") and k != "batching.enabled" for k in s_.origins
    ):
        out.warning(
            s_.origin("batching.enabled", sp),
            "batching parameters are set but batching is disabled: they are ignored",
        )
    if s_.batching is not None:
        _check_batching(s_.batching, lambda name: s_.origin(f"batching.{name}", sp), out)
    for model in server.models:
        _check_model_on_server(server, model, out)
    for flag in server_flags(server):
        reason = flag_missing_reason(flag.name, version)
        if reason is not None:
            out.error(flag.origin, f"{reason} (declared tfserving_version)", flag.render())


GRPC_MAX_MESSAGE = 2**31 - 1
"""server.cc BuildAndStart: builder.SetMaxMessageSize(numeric_limits<int32_t>::max())."""


def _check_channel_argument(arg: str, path: Path, out: Collector) -> None:
    """The model server sets its own 2 GiB message limit before it adds the channel
    arguments, and an argument given later wins: it can lower the limit, never raise it."""
    key, _, text = arg.partition("=")
    if key != "grpc.max_receive_message_length":
        return
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -(2**31) <= value <= GRPC_MAX_MESSAGE:
        # server.cc parses with absl::SimpleAtoi into int32; anything else is passed on
        # as a string, which gRPC ignores for this integer argument
        out.warning(path, "not an int32: gRPC ignores it and the 2 GiB limit stays", arg)
    elif 0 <= value < GRPC_MAX_MESSAGE:
        out.warning(
            path,
            f"lowers the server's receive limit from 2 GiB to {value} bytes; TF Serving "
            "already accepts messages up to 2 GiB, and this argument cannot raise that",
            arg,
        )


def _check_gpu_operator_settings(
    server: r.Server, version: tuple[int, int], out: Collector
) -> None:
    s_ = server.settings
    sp = server.spec_path
    profiler_flag = flag_missing_reason("enable_profiler", version) is None
    if s_.layered.enable_profiler is None and profiler_flag:
        # main.cc/server.cc: the profiler service is registered on the gRPC server
        # (Server::BuildAndStart) unless --enable_profiler=false; default true
        out.warning(
            (*sp, "name"),
            "TF Serving serves its profiler on the public gRPC port by default: anyone who "
            "reaches the port can start a trace; set enable_profiler (false to turn it off)",
            server.name,
        )
    if s_.layered.grpc_socket_path is not None and RUNTIMES[server.runtime].container:
        out.error(
            s_.origin("grpc_socket_path", sp),
            "a UNIX socket made inside the container is not reachable from the host (tfsconf "
            "mounts only read-only config and model directories): use the "
            f"{' or '.join(n for n, t in RUNTIMES.items() if not t.container)} runtime for "
            "grpc_socket_path",
            s_.layered.grpc_socket_path,
        )
    if s_.session_config is not None and s_.session_config.gpu_allow_growth and server.gpu is None:
        out.warning(
            s_.origin("session_config.gpu_allow_growth", sp),
            "gpu_allow_growth on a CPU server has no effect",
            True,
        )
    if not s_.layered.prefer_tflite_model:
        for name in ("num_tflite_pools", "num_tflite_interpreters_per_pool"):
            if getattr(s_.layered, name) is not None:
                out.warning(
                    s_.origin(name, sp),
                    "only used for TensorFlow Lite models, which load only with "
                    "prefer_tflite_model: true",
                    getattr(s_.layered, name),
                )


def _check_model_on_server(server: r.Server, model: r.Model, out: Collector) -> None:
    s_ = server.settings
    model_has_batching = any(k.startswith("batching") for k in model.origins)
    if model_has_batching and not s_.batching_per_model:
        out.error(
            model.origin("batching"),
            f"per-model batching applies only when server '{server.name}' sets "
            "batching.per_model: true",
        )
    if s_.batching_per_model and model.batching is None:
        out.warning(
            (*model.spec_path, "name"),
            f"server '{server.name}' batches per model and this model has no batching: "
            "TF Serving will not batch it",
            model.name,
        )
    if model.batching is not None:
        _check_batching(model.batching, lambda name: model.origin(f"batching.{name}"), out)
    if model.warmup is not None and s_.layered.enable_model_warmup is False:
        out.warning(
            model.origin("warmup"),
            f"server '{server.name}' disables model warmup: the warmup file is ignored",
        )
    if model.warmup is not None:
        effective = model.batching if model.batching is not None else s_.batching
        if effective is not None and effective.max_batch_size is not None:
            for size in model.warmup.batch_sizes:
                if size > effective.max_batch_size:
                    out.error(
                        model.origin("warmup"),
                        f"warmup batch size {size} exceeds max_batch_size "
                        f"{effective.max_batch_size} on server '{server.name}'",
                        size,
                    )
        if model.warmup.records < len(model.warmup.batch_sizes):
            out.error(
                model.origin("warmup"),
                f"{model.warmup.records} record(s) cannot cover "
                f"{len(model.warmup.batch_sizes)} batch sizes",
                model.warmup.records,
            )


def _check_batching(b: r.Batching, origin: Callable[[str], Path], out: Collector) -> None:
    sizes = b.allowed_batch_sizes
    if sizes:
        for index, size in enumerate(sizes):
            if size <= 0:
                out.error((*origin("allowed_batch_sizes"), index), "batch sizes must be > 0", size)
            if index and size <= sizes[index - 1]:
                out.error(
                    (*origin("allowed_batch_sizes"), index),
                    "allowed_batch_sizes must be strictly increasing",
                    size,
                )
        # The model server checks the last entry against max_batch_size when it wraps a
        # session for batching, with or without large batch splitting.
        if b.max_batch_size is None:
            out.error(
                origin("allowed_batch_sizes"),
                "allowed_batch_sizes needs max_batch_size set (its last entry must match it)",
            )
        elif sizes[-1] != b.max_batch_size:
            out.error(
                (*origin("allowed_batch_sizes"), len(sizes) - 1),
                f"last entry of allowed_batch_sizes must equal max_batch_size ({b.max_batch_size})",
                sizes[-1],
            )
    no_size = b.max_batch_size is None and b.max_execution_batch_size is None
    if b.enable_large_batch_splitting and no_size:
        # GetQueueOptions falls back to max_batch_size, whose unset wrapper reads as 0
        out.error(
            origin("enable_large_batch_splitting"),
            "large batch splitting needs max_batch_size or max_execution_batch_size "
            "(with neither, TF Serving executes batches of size 0)",
            True,
        )
    if b.max_execution_batch_size is not None:
        if not b.enable_large_batch_splitting:
            out.warning(
                origin("max_execution_batch_size"),
                "ignored by TF Serving: max_execution_batch_size needs "
                "enable_large_batch_splitting: true",
                b.max_execution_batch_size,
            )
        elif b.max_batch_size is not None and b.max_execution_batch_size > b.max_batch_size:
            out.error(
                origin("max_execution_batch_size"),
                f"max_execution_batch_size must be <= max_batch_size ({b.max_batch_size})",
                b.max_execution_batch_size,
            )
