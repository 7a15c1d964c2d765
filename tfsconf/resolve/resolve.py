"""Apply the defaults layers (environment -> host group -> server -> model) once.

Layering is field-wise: a layer overrides only the keys it writes (pydantic's
model_fields_set), nested blocks such as batching or monitoring merge key by key, and the
spec path of every winning value is kept as its origin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any, cast

from pydantic import BaseModel

from tfsconf.diagnostics import Path
from tfsconf.resolve import model as r
from tfsconf.spec import model as s
from tfsconf.tfserving.images import default_allocator

_LEAF_BLOCKS = ("warmup",)
_SERVER_FIELDS = frozenset(s.ServerSettings.model_fields)
_MODEL_FIELDS = frozenset(s.ModelSettings.model_fields)
_BATCHING_FIELDS = frozenset(s.BatchingParameters.model_fields)

Layers = Sequence[tuple[BaseModel | None, Path]]


def layer(layers: Layers, allowed: frozenset[str]) -> tuple[dict[str, object], dict[str, Path]]:
    """Merge settings objects in order; later layers win key by key."""
    values: dict[str, object] = {}
    origins: dict[str, Path] = {}
    for obj, path in layers:
        if obj is not None:
            _collect(obj, path, "", allowed, values, origins)
    return values, origins


def _collect(
    obj: BaseModel,
    path: Path,
    prefix: str,
    allowed: frozenset[str] | None,
    values: dict[str, object],
    origins: dict[str, Path],
) -> None:
    for name in sorted(obj.model_fields_set):
        if allowed is not None and name not in allowed:
            continue
        value = getattr(obj, name)
        key = prefix + name
        if isinstance(value, BaseModel) and name not in _LEAF_BLOCKS:
            # the block itself is recorded too: `batching: {}` says "batch, with defaults"
            origins[key] = (*path, name)
            _collect(value, (*path, name), key + ".", None, values, origins)
        else:
            values[key] = value
            origins[key] = (*path, name)


def _sub(values: Mapping[str, object], prefix: str) -> dict[str, object]:
    return {k[len(prefix) :]: v for k, v in values.items() if k.startswith(prefix)}


def _batching(params: Mapping[str, object]) -> r.Batching:
    fields = {k: v for k, v in params.items() if k in _BATCHING_FIELDS}
    sizes = fields.pop("allowed_batch_sizes", None)
    return r.Batching(
        allowed_batch_sizes=tuple(cast(list[int], sizes or ())),
        **cast(dict[str, Any], fields),
    )


def _server_settings(values: dict[str, object], origins: dict[str, Path]) -> r.ServerSettings:
    batching_values = _sub(values, "batching.")
    enabled = bool(batching_values.get("enabled", bool(batching_values)))
    per_model = bool(batching_values.get("per_model", False)) and enabled
    batching = _batching(batching_values) if enabled and not per_model else None
    pool = {
        k: batching_values[k]
        for k in ("num_batch_threads", "thread_pool_name")
        if per_model and batching_values.get(k) is not None
    }
    flat = {
        k: v
        for k, v in values.items()
        if "." not in k and k not in ("monitoring", "batching", "session_config") and v is not None
    }
    session = _sub(values, "session_config.")
    if "session_config" in origins:
        flat["session_config"] = r.SessionConfig(**cast(dict[str, Any], session))
    if "grpc_channel_arguments" in flat:
        flat["grpc_channel_arguments"] = tuple(cast(list[str], flat["grpc_channel_arguments"]))
    monitoring = _sub(values, "monitoring.")
    if monitoring.get("prometheus") is not None:
        flat["prometheus"] = monitoring["prometheus"]
    if monitoring.get("path") is not None:
        flat["prometheus_path"] = monitoring["path"]
    return r.ServerSettings(
        batching_enabled=enabled,
        batching_per_model=per_model,
        batching=batching,
        batching_thread_pool=_batching(pool) if pool else None,
        origins=origins,
        **cast(dict[str, Any], flat),
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
    server_batching_values: Mapping[str, object],
    spec_dir: PurePosixPath,
) -> r.Model:
    values, origins = layer([*model_layers, (spec, spec_path)], _MODEL_FIELDS)
    batching: r.Batching | None = None
    model_batching = _sub(values, "batching.")
    if settings.batching_per_model and any(k.startswith("batching") for k in origins):
        params = {k: v for k, v in server_batching_values.items() if k in _BATCHING_FIELDS}
        params.update(model_batching)
        batching = _batching(params)
    warmup_spec = cast(s.Warmup | None, values.get("warmup"))
    warmup: r.Warmup | None = None
    if warmup_spec is not None:
        sizes = warmup_spec.batch_sizes
        effective = batching if batching is not None else settings.batching
        if sizes is None:
            sizes = list(effective.allowed_batch_sizes) if effective else [1]
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
        platform=cast(str, values.get("platform", "tensorflow")),
        base_path=spec.base_path,
        source=_source(spec.source),
        policy=_policy(spec.versions),
        policy_is_default=spec.versions is None,
        labels=tuple(sorted((spec.labels or {}).items())),
        signature_name=cast(str, values.get("signature_name", "serving_default")),
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
    values, _ = layer([(item, ()) for item in layers], frozenset(s.Connection.model_fields))
    return r.Connection(
        user=cast(str | None, values.get("user")),
        port=cast(int, values.get("port", 22)),
        private_key_file=cast(str | None, values.get("private_key_file")),
        known_hosts_file=cast(str | None, values.get("known_hosts_file")),
        host_key_checking=cast(bool, values.get("host_key_checking", True)),
        become=cast(bool, values.get("become", False)),
    )


def _rollout(layers: Iterable[s.Rollout | None]) -> r.Rollout:
    values, _ = layer([(item, ()) for item in layers], frozenset(s.Rollout.model_fields))
    return r.Rollout(
        step=cast(int | str, values.get("step", 1)),
        max_fail_percentage=cast(int, values.get("max_fail_percentage", 0)),
        health_timeout_seconds=cast(int, values.get("health_timeout_seconds", 300)),
        keep_releases=cast(int, values.get("keep_releases", 5)),
    )


def resolve_environment(env: s.Environment, *, spec_file: str, spec_sha256: str) -> r.Environment:
    """Resolve a spec whose references were already checked (tfsconf.spec.rules)."""
    spec_dir = PurePosixPath(spec_file).parent
    models_by_name = {m.name: (i, m) for i, m in enumerate(env.models)}
    env_defaults = env.defaults or s.Defaults()
    servers_by_group: dict[str, list[r.Server]] = {}
    for index, server in enumerate(env.servers):
        spath: Path = ("servers", index)
        group = env.host_groups[server.group]
        group_defaults = group.defaults or s.Defaults()
        values, origins = layer(
            [
                (env_defaults.server, ("defaults", "server")),
                (group_defaults.server, ("host_groups", server.group, "defaults", "server")),
                (server, spath),
            ],
            _SERVER_FIELDS,
        )
        settings = _server_settings(values, origins)
        model_layers: Layers = [
            (env_defaults.model, ("defaults", "model")),
            (group_defaults.model, ("host_groups", server.group, "defaults", "model")),
            (server.model_defaults, (*spath, "model_defaults")),
        ]
        server_batching = _sub(values, "batching.")
        models = []
        for name in server.models:
            model_index, model_spec = models_by_name[name]
            models.append(
                _model(
                    model_spec,
                    ("models", model_index),
                    model_layers,
                    settings,
                    server_batching,
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
