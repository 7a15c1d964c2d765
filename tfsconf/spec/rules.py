"""TF Serving's rules, checked offline (DOMAIN.md), each problem one diagnostic.

Two passes: reference rules run on the spec as written (names, references, paths), and
only when they pass is the spec resolved and the layered rules run on the result, using
each value's origin to point at the line that set it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import PurePosixPath

from tfsconf.diagnostics import Diagnostic, Path
from tfsconf.resolve import model as r
from tfsconf.spec import model as s
from tfsconf.spec.yamlload import Positions
from tfsconf.tfserving.flags import (
    OLDEST_SUPPORTED,
    flag_missing_reason,
    newest_known,
    parse_version,
    server_flags,
)
from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, SAMPLE_EXTENSIONS, sample_format_of

Report = Callable[..., None]


class Collector:
    """Gathers diagnostics, placing each at the position of its spec path."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.items: list[Diagnostic] = []

    def error(self, path: Path, message: str, value: object = ...) -> None:
        self.items.append(self.positions.diagnostic(path, message, value=value))

    def warning(self, path: Path, message: str, value: object = ...) -> None:
        self.items.append(self.positions.diagnostic(path, message, value=value, severity="warning"))

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)


def _duplicates(items: list[str]) -> Iterator[tuple[int, str]]:
    counts = Counter(items)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if counts[item] > 1:
            if item in seen:
                yield index, item
            seen.add(item)


# --- pass 0: names and references, on the raw YAML data ----------------------------------


def _items(data: object, key: str) -> list[tuple[int, dict[object, object]]]:
    """The mapping entries of the list data[key], skipping anything malformed: the schema
    pass reports malformed entries, this pass only reads names."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _names(entries: list[tuple[int, dict[object, object]]], field: str) -> list[tuple[int, str]]:
    return [(i, v) for i, item in entries if isinstance(v := item.get(field), str)]


def check_names(data: object, out: Collector) -> None:
    """Name uniqueness and references. These run on the raw data, before and regardless of
    the schema pass, so that a typo elsewhere does not hide a duplicate or a dangling name:
    every problem is reported in one run."""
    models = _names(_items(data, "models"), "name")
    servers = _items(data, "servers")
    for what, named in (("model", models), ("server", _names(servers, "name"))):
        for dup, name in _duplicates([n for _, n in named]):
            out.error((f"{what}s", named[dup][0], "name"), f"duplicate {what} name", name)

    groups = data.get("host_groups") if isinstance(data, dict) else None
    groups = groups if isinstance(groups, dict) else {}
    hosts: list[tuple[Path, str, str]] = []
    for group_name, group in groups.items():
        group_hosts = _items(group, "hosts")
        if isinstance(group, dict) and group.get("hosts") == []:
            out.error(("host_groups", group_name, "hosts"), "a host group needs at least one host")
        for index, host in group_hosts:
            hpath: Path = ("host_groups", str(group_name), "hosts", index)
            for field in ("name", "address"):
                if isinstance(value := host.get(field), str):
                    hosts.append(((*hpath, field), field, value))
    for field in ("name", "address"):
        entries = [(path, value) for path, f, value in hosts if f == field]
        for dup, value in _duplicates([v for _, v in entries]):
            out.error(
                entries[dup][0], f"duplicate host {field} (a host belongs to one group)", value
            )

    model_names = {name for _, name in models}
    served: set[str] = set()
    for index, server in servers:
        spath: Path = ("servers", index)
        group = server.get("group")
        if isinstance(group, str) and group not in groups:
            known = ", ".join(sorted(str(g) for g in groups)) or "none"
            out.error((*spath, "group"), f"unknown host group (known: {known})", group)
        listed = server.get("models")
        if listed == []:
            out.error((*spath, "models"), "a server must serve at least one model")
        listed = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
        for model_index, name in enumerate(listed):
            if name not in model_names:
                out.error((*spath, "models", model_index), "unknown model", name)
            served.add(name)
        for model_index, name in _duplicates(listed):
            out.error(
                (*spath, "models", model_index),
                "model listed twice on this server (model names must be unique per server)",
                name,
            )
    for index, name in models:
        if name not in served:
            out.warning(("models", index, "name"), "model is not served by any server", name)


# --- pass 1: the spec as written --------------------------------------------------------


def check_references(env: s.Environment, out: Collector, *, spec_dir: PurePosixPath) -> None:
    major_minor = parse_version(env.tfserving_version)
    if major_minor < OLDEST_SUPPORTED:
        out.error(
            ("tfserving_version",),
            f"TF Serving releases before {OLDEST_SUPPORTED[0]}.{OLDEST_SUPPORTED[1]} "
            "are not supported",
            env.tfserving_version,
        )
    elif major_minor > newest_known():
        out.warning(
            ("tfserving_version",),
            "newer than the releases tfsconf knows; flags are checked against "
            f"{newest_known()[0]}.{newest_known()[1]}",
            env.tfserving_version,
        )

    root = PurePosixPath(env.paths.model_root)
    base_paths: list[str] = []
    for index, model in enumerate(env.models):
        mpath: Path = ("models", index)
        base = PurePosixPath(model.base_path)
        if base == root or root not in base.parents:
            out.error(
                (*mpath, "base_path"),
                f"must be a directory under paths.model_root ({env.paths.model_root})",
                model.base_path,
            )
        base_paths.append(model.base_path)
        _check_versions(model, mpath, out)
        _check_warmup_spec(model.warmup, (*mpath, "warmup"), out, spec_dir)
    for index, base_path in _duplicates(base_paths):
        out.error(
            ("models", index, "base_path"),
            "two models share this base_path (their versions would mix)",
            base_path,
        )

    alloc = env.image.allocator
    if alloc.kind != "jemalloc" and alloc.malloc_conf is not None:
        out.error(
            ("image", "allocator", "malloc_conf"),
            f"MALLOC_CONF only configures jemalloc, not {alloc.kind}",
            alloc.malloc_conf,
        )
    if alloc.kind == "system" and (alloc.package or alloc.library):
        out.error(
            ("image", "allocator", "kind"), "the system allocator takes no package or library"
        )
    if env.image.tag is not None and env.image.registry is None:
        out.error(("image", "tag"), "a pre-built image tag needs image.registry to pull it from")

    defaults = [(("defaults",), env.defaults)] + [
        (("host_groups", name, "defaults"), g.defaults) for name, g in env.host_groups.items()
    ]
    for path, block in defaults:
        if block is not None and block.model is not None:
            _check_warmup_spec(block.model.warmup, (*path, "model", "warmup"), out, spec_dir)
    for index, server in enumerate(env.servers):
        if server.model_defaults is not None:
            _check_warmup_spec(
                server.model_defaults.warmup,
                ("servers", index, "model_defaults", "warmup"),
                out,
                spec_dir,
            )


def _check_versions(model: s.Model, mpath: Path, out: Collector) -> None:
    policy = model.versions
    labels = model.labels or {}
    if isinstance(policy, s.SpecificPolicy):
        vpath: Path = (*mpath, "versions", "versions")
        if not policy.versions:
            out.error(vpath, "a specific version policy needs at least one version")
        for vindex, version in enumerate(policy.versions):
            if version <= 0:
                out.error((*vpath, vindex), "versions must be positive integers", version)
        for vindex, listed in _duplicates([str(v) for v in policy.versions]):
            out.error((*vpath, vindex), "version listed twice", int(listed))
        for label, version in sorted(labels.items()):
            if version not in policy.versions:
                out.error(
                    (*mpath, "labels", label),
                    "label points at a version the policy does not serve "
                    f"(serving {sorted(policy.versions)}); TF Serving refuses it",
                    version,
                )
    elif labels:
        kind = "latest 1 (default)" if policy is None else policy.policy
        for label, version in sorted(labels.items()):
            if version <= 0:
                out.error((*mpath, "labels", label), "label versions must be positive", version)
            else:
                out.warning(
                    (*mpath, "labels", label),
                    f"with version policy '{kind}' tfsconf cannot check offline that this "
                    "version is served; a label on an unserved version fails the reload",
                    version,
                )


def _check_warmup_spec(
    warmup: s.Warmup | None, wpath: Path, out: Collector, spec_dir: PurePosixPath
) -> None:
    if warmup is None:
        return
    if warmup.records > MAX_WARMUP_RECORDS:
        out.error(
            (*wpath, "records"),
            f"TF Serving replays at most {MAX_WARMUP_RECORDS} warmup records",
            warmup.records,
        )
    samples = PurePosixPath(warmup.samples)
    full = samples if samples.is_absolute() else spec_dir / samples
    if not os.path.isfile(full):
        out.error((*wpath, "samples"), f"samples file not found ({full})", warmup.samples)
    elif sample_format_of(samples, warmup.format) is None:
        known = ", ".join(sorted(SAMPLE_EXTENSIONS))
        out.error(
            (*wpath, "samples"),
            f"cannot tell the sample format from the extension (known: {known}); set warmup.format",
            warmup.samples,
        )


# --- pass 2: the resolved environment ---------------------------------------------------


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
        for server in servers:
            if id(server) not in checked:
                checked.add(id(server))
                _check_server(server, version, out)


def _check_group_placement(
    group: r.Group, hosts: list[r.Host], servers: tuple[r.Server, ...], out: Collector
) -> None:
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
        elif server.settings.per_process_gpu_memory_fraction is not None:
            out.error(
                server.settings.origin("per_process_gpu_memory_fraction", sp),
                "per_process_gpu_memory_fraction on a CPU server (set gpu, or remove it)",
                server.settings.per_process_gpu_memory_fraction,
            )
    by_gpu: dict[int, list[r.Server]] = {}
    for server in servers:
        if server.gpu is not None:
            by_gpu.setdefault(server.gpu, []).append(server)
    for gpu, sharing in sorted(by_gpu.items()):
        if len(sharing) < 2:
            continue
        names = ", ".join(x.name for x in sharing)
        fractions = [x.settings.per_process_gpu_memory_fraction for x in sharing]
        for server, fraction in zip(sharing, fractions, strict=True):
            if fraction is None:
                out.error(
                    (*server.spec_path, "gpu"),
                    f"servers {names} share GPU {gpu}: each must set "
                    "per_process_gpu_memory_fraction (otherwise each claims the whole GPU)",
                    gpu,
                )
        if all(f is not None for f in fractions):
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
    s_ = server.settings
    sp = server.spec_path
    parallel = [
        s_.tensorflow_session_parallelism,
        s_.tensorflow_intra_op_parallelism,
        s_.tensorflow_inter_op_parallelism,
    ]
    if all(p is not None for p in parallel):
        names = ("session", "intra_op", "inter_op")
        out.error(
            r.most_specific([s_.origin(f"tensorflow_{name}_parallelism", sp) for name in names]),
            "session, intra-op and inter-op parallelism cannot all be set at once "
            "(TF Serving refuses to start)",
        )
    keys = [arg.split("=", 1)[0] for arg in s_.grpc_channel_arguments]
    for index, key in _duplicates(keys):
        out.error(
            (*s_.origin("grpc_channel_arguments", sp), index),
            "gRPC channel argument given twice",
            key,
        )
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
    if model.warmup is not None and not s_.enable_model_warmup:
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
    if b.max_execution_batch_size is not None:
        if not b.enable_large_batch_splitting:
            out.error(
                origin("max_execution_batch_size"),
                "max_execution_batch_size needs enable_large_batch_splitting: true",
                b.max_execution_batch_size,
            )
        elif b.max_batch_size is not None and b.max_execution_batch_size > b.max_batch_size:
            out.error(
                origin("max_execution_batch_size"),
                f"max_execution_batch_size must be <= max_batch_size ({b.max_batch_size})",
                b.max_execution_batch_size,
            )
