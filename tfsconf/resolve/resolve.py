"""Apply the defaults layers (environment -> host group -> server -> model) once.

Layering is a typed merge: a layer overrides only the fields it writes (pydantic's
model_fields_set), nested blocks such as batching or monitoring merge field by field, and
the result is an object of the spec's own class. Beside it, the spec path of every winning
value is kept as its origin, keyed by its dotted name ("batching.max_batch_size").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import TypeVar

from pydantic import BaseModel

from tfsconf.diagnostics import Path
from tfsconf.resolve import model as r
from tfsconf.spec import model as s
from tfsconf.tfserving.flag_table import BATCHING_SERVER_ONLY
from tfsconf.tfserving.images import default_allocator

_LEAF_BLOCKS = ("warmup", "jump_host")
"""Blocks that a layer replaces whole instead of merging field by field."""

M = TypeVar("M", bound=BaseModel)
Layers = Sequence[tuple[BaseModel | None, Path]]


def merge(cls: type[M], layers: Layers) -> tuple[M, dict[str, Path]]:
    """Merge the fields of `cls` of each layer in order (later layers win field by field)
    into one `cls`, with the origin of every field and block that a layer wrote."""
    origins: dict[str, Path] = {}
    for obj, path in layers:
        if obj is not None:
            _record_origins(obj, path, "", frozenset(cls.model_fields), origins)
    return _merge(cls, [obj for obj, _ in layers if obj is not None]), origins


def _merge(cls: type[M], objs: Sequence[BaseModel]) -> M:
    fields: dict[str, object] = {}
    blocks: dict[str, list[BaseModel]] = {}
    for obj in objs:
        for name in obj.model_fields_set & cls.model_fields.keys():
            value = getattr(obj, name)
            if isinstance(value, BaseModel) and name not in _LEAF_BLOCKS:
                blocks.setdefault(name, []).append(value)
            else:
                fields[name] = value
    for name, written in blocks.items():
        # a block is merged from the layers that wrote it as a block; a later `null`
        # does not erase what earlier layers set inside it
        fields[name] = _merge(type(written[-1]), written)
    # the values were validated when each layer was; the merge only picks among them
    return cls.model_construct(_fields_set=set(fields), **fields)


def _record_origins(
    obj: BaseModel,
    path: Path,
    prefix: str,
    allowed: frozenset[str] | None,
    origins: dict[str, Path],
) -> None:
    for name in sorted(obj.model_fields_set):
        if allowed is not None and name not in allowed:
            continue
        value = getattr(obj, name)
        # the block itself is recorded too: `batching: {}` was written in this layer
        origins[prefix + name] = (*path, name)
        if isinstance(value, BaseModel) and name not in _LEAF_BLOCKS:
            _record_origins(value, (*path, name), prefix + name + ".", None, origins)


def batching_of(params: s.BatchingParameters) -> r.Batching:
    """The BatchingParameters fields of a merged block (a server's block also says whether
    and how to batch: those fields are not parameters)."""
    if type(params) is s.BatchingParameters:
        return params
    written = params.model_fields_set & s.BatchingParameters.model_fields.keys()
    return s.BatchingParameters.model_construct(
        _fields_set=set(written), **{name: getattr(params, name) for name in written}
    )


def _server_settings(merged: s.ServerSettings, origins: dict[str, Path]) -> r.ServerSettings:
    """The resolved forms of the settings that have one (see r.ServerSettings); every
    other setting, the plain flags among them, is read from the merged block as it is."""
    block = merged.batching
    written = block.model_fields_set if block is not None else frozenset()
    # a batching block batches unless it says enabled: false; `batching: {}` does not
    enabled = bool(block.enabled) if block is not None and "enabled" in written else bool(written)
    per_model = enabled and block is not None and bool(block.per_model)
    pool = {
        name: value
        for name in BATCHING_SERVER_ONLY
        if block is not None and (value := getattr(block, name)) is not None
    }
    batching = thread_pool = None
    if block is not None and enabled and not per_model:
        batching = batching_of(block)
    elif per_model and pool:
        # per model, the server's own file holds only the thread pool
        thread_pool = s.BatchingParameters.model_construct(_fields_set=set(pool), **pool)
    session_config = None
    if "session_config" in origins:
        session_config = merged.session_config or s.SessionConfig()
    monitoring = merged.monitoring or s.Monitoring()
    defaults = r.ServerSettings()
    return r.ServerSettings(
        layered=merged,
        model_config_reload=merged.model_config_reload or defaults.model_config_reload,
        model_config_file_poll_wait_seconds=(
            merged.model_config_file_poll_wait_seconds
            if merged.model_config_file_poll_wait_seconds is not None
            else defaults.model_config_file_poll_wait_seconds
        ),
        prometheus=bool(monitoring.prometheus),
        prometheus_path=monitoring.path or defaults.prometheus_path,
        batching_enabled=enabled,
        batching_per_model=per_model,
        batching=batching,
        session_config=session_config,
        batching_thread_pool=thread_pool,
        origins=origins,
    )


def _policy(spec: s.LatestPolicy | s.AllPolicy | s.SpecificPolicy | None) -> r.VersionPolicy:
    if spec is None:
        return r.VersionPolicy(kind="latest", num_versions=1)
    if isinstance(spec, s.LatestPolicy):
        return r.VersionPolicy(kind="latest", num_versions=spec.count)
    if isinstance(spec, s.AllPolicy):
        return r.VersionPolicy(kind="all")
    return r.VersionPolicy(kind="specific", versions=tuple(spec.versions))


def _source(spec: s.LocalSource | s.HttpSource | s.WebhdfsSource) -> r.Source:
    if isinstance(spec, s.LocalSource):
        return r.Source(kind="local", location=spec.path)
    auth: r.SourceAuth | None = None
    if isinstance(spec.auth, s.HttpAuth):
        auth = r.SourceAuth("basic", spec.auth.password_env, spec.auth.username)
    elif isinstance(spec.auth, s.WebhdfsAuth):
        auth = r.SourceAuth("delegation", spec.auth.delegation_env)
    return r.Source(kind=spec.kind, location=spec.url, checksums=spec.checksums, auth=auth)


def _model(
    spec: s.Model,
    spec_path: Path,
    model_layers: Layers,
    settings: r.ServerSettings,
    server_batching: s.ServerBatching | None,
    spec_dir: PurePosixPath,
) -> r.Model:
    merged, origins = merge(s.ModelSettings, [*model_layers, (spec, spec_path)])
    batching: r.Batching | None = None
    if settings.batching_per_model and any(k.startswith("batching") for k in origins):
        # the server's batching fields are the defaults of each model's own file
        written = [b for b in (server_batching, merged.batching) if b is not None]
        batching = batching_of(_merge(s.BatchingParameters, written))
    warmup_spec = merged.warmup
    warmup: r.Warmup | None = None
    if warmup_spec is not None:
        sizes = warmup_spec.batch_sizes
        effective = batching if batching is not None else settings.batching
        if sizes is None:
            sizes = list(effective.allowed_batch_sizes or ()) if effective else [1]
            sizes = sizes or [1]
        samples = PurePosixPath(warmup_spec.samples)
        warmup = r.Warmup(
            samples=str(samples if samples.is_absolute() else spec_dir / samples),
            samples_as_written=warmup_spec.samples,
            format=warmup_spec.format,
            records=warmup_spec.records,
            batch_sizes=tuple(sizes),
        )
    return r.Model(
        name=spec.name,
        platform=merged.platform or "tensorflow",
        base_path=spec.base_path,
        source=_source(spec.source),
        policy=_policy(spec.versions),
        policy_is_default=spec.versions is None,
        labels=tuple(sorted((spec.labels or {}).items())),
        signature_name=merged.signature_name or "serving_default",
        warmup=warmup,
        batching=batching,
        spec_path=spec_path,
        origins=origins,
    )


def _images(env: s.Environment, kinds: Iterable[str]) -> tuple[r.Image, ...]:
    images = []
    alloc = env.image.allocator
    # the release's own pin and path (tfsconf/tfserving/images.py); validate refuses a spec
    # that needs a default the table does not have
    default = default_allocator(env.tfserving_version, alloc.kind)
    package, library, conf = (
        (default.package, default.library, default.malloc_conf) if default else (None, None, None)
    )
    for kind in sorted(set(kinds)):
        suffix = "-gpu" if kind == "gpu" else ""
        images.append(
            r.Image(
                name=f"tfserving-{kind}",
                base=(env.image.base_gpu if kind == "gpu" else env.image.base_cpu)
                or f"tensorflow/serving:{env.tfserving_version}{suffix}",
                allocator=alloc.kind,
                allocator_package=alloc.package or package,
                allocator_library=alloc.library or library,
                malloc_conf=alloc.malloc_conf if "malloc_conf" in alloc.model_fields_set else conf,
                extra_packages=tuple(env.image.extra_packages),
                registry=env.image.registry,
                tag=env.image.tag,
            )
        )
    return tuple(images)


def _connection(layers: Iterable[s.Connection | None]) -> r.Connection:
    c = _merge(s.Connection, [item for item in layers if item is not None])
    jump = (
        r.JumpHost(
            address=c.jump_host.address,
            user=c.jump_host.user if c.jump_host.user is not None else c.user,
            port=c.jump_host.port if c.jump_host.port is not None else 22,
        )
        if c.jump_host is not None
        else None
    )
    return r.Connection(
        user=c.user,
        port=c.port if c.port is not None else 22,
        private_key_file=c.private_key_file,
        known_hosts_file=c.known_hosts_file,
        host_key_checking=c.host_key_checking if c.host_key_checking is not None else True,
        become=c.become if c.become is not None else False,
        jump_host=jump,
        # a bastion means the hosts sit in a network only SSH reaches
        grpc_via=c.grpc_via or ("ssh" if jump is not None else "direct"),
    )


def _rollout(layers: Iterable[s.Rollout | None]) -> r.Rollout:
    ro = _merge(s.Rollout, [item for item in layers if item is not None])
    return r.Rollout(
        # RolloutStep is validated as a count or a percentage; None: not written
        step=ro.step if isinstance(ro.step, int | str) else 1,
        max_fail_percentage=ro.max_fail_percentage if ro.max_fail_percentage is not None else 0,
        health_timeout_seconds=(
            ro.health_timeout_seconds if ro.health_timeout_seconds is not None else 300
        ),
        keep_releases=ro.keep_releases if ro.keep_releases is not None else 5,
    )


def resolve_environment(env: s.Environment, *, spec_file: str, spec_sha256: str) -> r.Environment:
    """Resolve a spec whose references were already checked (tfsconf.spec.rules)."""
    # long: one pass over groups, hosts and servers building the resolved environment in
    #   order; the lookups it builds first are shared by every step.
    spec_dir = PurePosixPath(spec_file).parent
    models_by_name = {m.name: (i, m) for i, m in enumerate(env.models)}
    env_defaults = env.defaults or s.Defaults()
    servers_by_group: dict[str, list[r.Server]] = {}
    for index, server in enumerate(env.servers):
        spath: Path = ("servers", index)
        group = env.host_groups[server.group]
        group_defaults = group.defaults or s.Defaults()
        merged, origins = merge(
            s.ServerSettings,
            [
                (env_defaults.server, ("defaults", "server")),
                (group_defaults.server, ("host_groups", server.group, "defaults", "server")),
                (server, spath),
            ],
        )
        settings = _server_settings(merged, origins)
        model_layers: Layers = [
            (env_defaults.model, ("defaults", "model")),
            (group_defaults.model, ("host_groups", server.group, "defaults", "model")),
            (server.model_defaults, (*spath, "model_defaults")),
        ]
        models = []
        for name in server.models:
            model_index, model_spec = models_by_name[name]
            models.append(
                _model(
                    model_spec,
                    ("models", model_index),
                    model_layers,
                    settings,
                    merged.batching,
                    spec_dir,
                )
            )
        servers_by_group.setdefault(server.group, []).append(
            r.Server(
                name=server.name,
                group=server.group,
                gpu=server.gpu,
                grpc_port=server.grpc_port,
                rest_port=server.rest_port,
                image="tfserving-gpu" if server.gpu is not None else "tfserving-cpu",
                runtime=group.runtime or env.runtime,
                config_dir=f"{env.paths.config_root}/{server.name}",
                model_root=env.paths.model_root,
                settings=settings,
                models=tuple(models),
                spec_path=spath,
                docker_network=group.docker_network or env.docker_network,
            )
        )
    hosts: list[r.Host] = []
    groups: list[r.Group] = []
    for group_name in sorted(env.host_groups):
        group = env.host_groups[group_name]
        servers = tuple(sorted(servers_by_group.get(group_name, []), key=lambda x: x.name))
        runtime = group.runtime or env.runtime
        groups.append(
            r.Group(
                name=group_name,
                hosts=tuple(sorted(h.name for h in group.hosts)),
                rollout=_rollout([env.rollout, group.rollout]),
                runtime=runtime,
            )
        )
        for host_index, host in enumerate(group.hosts):
            hosts.append(
                r.Host(
                    name=host.name,
                    address=host.address,
                    group=group_name,
                    gpus=host.gpus,
                    connection=_connection([env.connection, group.connection, host.connection]),
                    runtime=runtime,
                    servers=servers,
                    spec_path=("host_groups", group_name, "hosts", host_index),
                )
            )
    kinds = ["gpu" if srv.gpu is not None else "cpu" for srv in env.servers]
    return r.Environment(
        name=env.environment,
        tfserving_version=env.tfserving_version,
        spec_file=spec_file,
        spec_sha256=spec_sha256,
        model_root=env.paths.model_root,
        config_root=env.paths.config_root,
        images=_images(env, kinds),
        groups=tuple(groups),
        hosts=tuple(sorted(hosts, key=lambda h: h.name)),
    )
