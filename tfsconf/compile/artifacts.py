"""The artifact registry: every kind of file tfsconf compiles, declared once.

Each kind says where it lives in a bundle (its path pattern), what renders it, when TF
Serving reads it (which decides what a change costs: ../shared/DOMAIN.md), where apply
places it on a host, and how a change to it is explained in a plan. Compile renders
through it; plan, apply, rollback and status classify files and build paths through it,
so no file name is spelled anywhere else (tests/compile/test_artifact_registry.py greps
the package for strays).

A bundle is laid out as

    manifest.json                              the index (kind "manifest")
    images/<image>/Dockerfile                  environment artifacts
    hosts/<host>/<rel>                         host artifacts (warmup.json)
    hosts/<host>/<server>/<rel>                server artifacts (models.config, ...)

and a host's artifacts, as apply and the host record key them, are `<rel>` and
`<server>/<rel>` (the bundle path without `hosts/<host>/`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from tfsconf.compile import explain, images, protos, runtime, warmup_tasks
from tfsconf.compile.templating import Templates
from tfsconf.kinds import RUNTIMES
from tfsconf.resolve import flags as named
from tfsconf.resolve import model as r
from tfsconf.resolve.flags import server_flags

Scope = Literal["environment", "host", "server"]
Explainer = Callable[[Mapping[str, str], bytes | None, bytes | None], list[str]]


class Read(Enum):
    """When TF Serving reads an artifact, hence what a change to it costs."""

    CONFIG_RELOAD = "config reload"
    """models.config: a reload RPC or the config poll; no restart."""
    RESTART = "restart"
    """Read once at start (flags and the files they name, the unit): a process restart."""
    VERSION_LOAD = "version load"
    """Read when a model version loads: new versions get it, loaded ones keep the old."""
    IMAGE_BUILD = "image build"
    """Baked into the image: a rebuild, then a restart."""
    TFSCONF = "tfsconf only"
    """Never read by TF Serving (the bundle index, the warmup tasks the planner compares)."""


class Placement(Enum):
    """Where apply puts an artifact on a host; tfsconf.apply.work.PLACEMENT_CONSUMERS names
    the host-work keys that carry each placement to the playbooks."""

    RELEASE_DIR = "release directory"
    """<config_root>/<server>/releases/<release>/<rel>, `current` switched to it."""
    SYSTEMD_UNIT = "systemd unit"
    """Also copied to /etc/systemd/system/<unit> (docker and native runtimes)."""
    VERSION_DIR = "version directory"
    """<base_path>/<version>/<file> of every version the server serves."""
    IMAGE_BUILD_DIR = "image build directory"
    """<config_root>/.tfsconf/images/<image>/Dockerfile, built when the image is missing."""
    RECORD = "host record"
    """The last-applied record (<config_root>/.tfsconf/state.json)."""


_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Artifact:
    kind: str
    scope: Scope
    pattern: str
    """Relative to its scope's directory; `{field}` matches one path segment."""
    read: Read
    placements: frozenset[Placement]
    explain: Explainer
    flag: str | None
    """The TF Serving flag that names the file (tfserving/flags.py builds the flag)."""
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = _FIELD.split(self.pattern)
        source = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
            for index, part in enumerate(parts)
        )
        object.__setattr__(self, "regex", re.compile(source))

    def path(self, **fields: str) -> str:
        return self.pattern.format(**fields)

    def match(self, rel: str) -> dict[str, str] | None:
        """The pattern fields of `rel` (plus "name": rel itself), or None."""
        found = self.regex.fullmatch(rel)
        return {**found.groupdict(), "name": rel} if found else None


@dataclass(frozen=True, slots=True)
class Compilation:
    """What the renderers of one compile share, owned by that compile (build_bundle)."""

    image_refs: Mapping[str, str]
    """Image name -> the reference a docker server's unit runs."""
    templates: Templates
    """The Jinja2 templates, compiled on first use for this compile only."""


ServerRenderer = Callable[[r.Server, r.Environment, Compilation], Iterator[tuple[str, bytes]]]


@dataclass(frozen=True, slots=True)
class ServerArtifact(Artifact):
    render: ServerRenderer
    """(server, environment, compile) -> (path relative to the server, bytes)."""


def _models_config(
    server: r.Server, env: r.Environment, job: Compilation
) -> Iterator[tuple[str, bytes]]:
    yield MODELS_CONFIG.path(), protos.render_models_config(server, env)


def _batching(
    server: r.Server, env: r.Environment, job: Compilation
) -> Iterator[tuple[str, bytes]]:
    # a per-model server still needs the global file: its thread pool comes only from there
    common = server.settings.batching or server.settings.batching_thread_pool
    if common is not None:
        yield BATCHING.path(), protos.render_batching(common, env)


def _model_batching(
    server: r.Server, env: r.Environment, job: Compilation
) -> Iterator[tuple[str, bytes]]:
    for model in server.models:
        if model.batching is not None:
            yield MODEL_BATCHING.path(model=model.name), protos.render_batching(model.batching, env)


def _monitoring(
    server: r.Server, env: r.Environment, job: Compilation
) -> Iterator[tuple[str, bytes]]:
    if server.settings.prometheus:
        yield MONITORING.path(), protos.render_monitoring(server, env)


def _session_config(
    server: r.Server, env: r.Environment, job: Compilation
) -> Iterator[tuple[str, bytes]]:
    config = server.settings.session_config
    if config is not None:
        yield SESSION_CONFIG.path(), protos.render_session_config(config, env)


def _flags(server: r.Server, env: r.Environment, job: Compilation) -> Iterator[tuple[str, bytes]]:
    yield FLAGS.path(), "".join(flag.render() + "\n" for flag in server_flags(server)).encode()


def _launch(server: r.Server, env: r.Environment, job: Compilation) -> Iterator[tuple[str, bytes]]:
    if not RUNTIMES[server.runtime].systemd_unit:
        yield LAUNCH.path(), runtime.render_launch(server, env)


def _unit(server: r.Server, env: r.Environment, job: Compilation) -> Iterator[tuple[str, bytes]]:
    traits = RUNTIMES[server.runtime]
    if traits.systemd_unit:
        image_ref = job.image_refs[server.image] if traits.container else None
        unit = runtime.render_unit(server, env, image_ref, job.templates)
        yield unit_file(server.name), unit


_RELEASE = frozenset({Placement.RELEASE_DIR})

MODELS_CONFIG = ServerArtifact(
    "models_config",
    "server",
    named.MODELS_CONFIG,  # the name the flag gives the server
    Read.CONFIG_RELOAD,
    _RELEASE,
    explain.models_config,
    "model_config_file",
    render=_models_config,
)
BATCHING = ServerArtifact(
    "batching",
    "server",
    named.BATCHING_PARAMETERS,  # the name the flag gives the server
    Read.RESTART,
    _RELEASE,
    explain.batching,
    "batching_parameters_file",
    render=_batching,
)
MODEL_BATCHING = ServerArtifact(
    "model_batching",
    "server",
    "models/{model}/batching_params.pbtxt",
    Read.VERSION_LOAD,
    # kept with the release (the record, drift) and written into every version, where
    # TF Serving reads it (bundle_factory_util.cc GetPerModelBatchingParams)
    frozenset({Placement.RELEASE_DIR, Placement.VERSION_DIR}),
    explain.model_batching,
    None,
    render=_model_batching,
)
MONITORING = ServerArtifact(
    "monitoring",
    "server",
    named.MONITORING_CONFIG,  # the name the flag gives the server
    Read.RESTART,
    _RELEASE,
    explain.monitoring,
    "monitoring_config_file",
    render=_monitoring,
)
SESSION_CONFIG = ServerArtifact(
    "session_config",
    "server",
    named.SESSION_CONFIG,  # the name the flag gives the server
    Read.RESTART,
    _RELEASE,
    explain.session_config,
    "tensorflow_session_config_file",
    render=_session_config,
)
FLAGS = ServerArtifact(
    "flags",
    "server",
    "server.flags",
    Read.RESTART,
    _RELEASE,
    explain.flags,
    None,
    render=_flags,
)
LAUNCH = ServerArtifact(
    "launch",
    "server",
    "launch.json",
    Read.RESTART,
    _RELEASE,  # the process runtime's supervisor reads it from `current` at start
    explain.launch,
    None,
    render=_launch,
)
UNIT = ServerArtifact(
    "unit",
    "server",
    "tfserving-{server}.service",
    Read.RESTART,
    frozenset({Placement.RELEASE_DIR, Placement.SYSTEMD_UNIT}),
    explain.unit,
    None,
    render=_unit,
)
WARMUP_TASKS = Artifact(
    "warmup_tasks",
    "host",
    "warmup.json",
    Read.TFSCONF,  # the planner compares it; apply generates the warmup files themselves
    frozenset({Placement.RECORD}),
    explain.changed,
    None,
)
DOCKERFILE = Artifact(
    "dockerfile",
    "environment",
    "images/{image}/Dockerfile",
    Read.IMAGE_BUILD,
    frozenset({Placement.IMAGE_BUILD_DIR}),
    explain.changed,
    None,
)
MANIFEST = Artifact(
    "manifest", "environment", "manifest.json", Read.TFSCONF, frozenset(), explain.changed, None
)

SERVER_ARTIFACTS: tuple[ServerArtifact, ...] = (
    MODELS_CONFIG,
    BATCHING,
    MODEL_BATCHING,
    MONITORING,
    SESSION_CONFIG,
    FLAGS,
    LAUNCH,
    UNIT,
)
"""In rendering order."""
HOST_ARTIFACTS: tuple[Artifact, ...] = (WARMUP_TASKS,)
ENVIRONMENT_ARTIFACTS: tuple[Artifact, ...] = (DOCKERFILE, MANIFEST)
ARTIFACTS: tuple[Artifact, ...] = SERVER_ARTIFACTS + HOST_ARTIFACTS + ENVIRONMENT_ARTIFACTS

HOSTS_DIR = "hosts"


def unit_file(server: str) -> str:
    """The systemd unit of a server (docker and native runtimes)."""
    return UNIT.path(server=server)


def render_server(
    server: r.Server, env: r.Environment, job: Compilation
) -> list[tuple[str, bytes]]:
    """Every artifact of one server: (path relative to the server directory, bytes)."""
    return [item for artifact in SERVER_ARTIFACTS for item in artifact.render(server, env, job)]


def render_dockerfile(
    image: r.Image, env: r.Environment, templates: Templates
) -> tuple[str, bytes, str]:
    """(bundle path, Dockerfile, image reference) of an image."""
    dockerfile = images.render_dockerfile(image, env, templates)
    return (
        DOCKERFILE.path(image=image.name),
        dockerfile,
        images.image_reference(image, env, dockerfile),
    )


def warmup_renderer(env: r.Environment) -> Callable[[r.Host], tuple[str, bytes]]:
    """host -> (path relative to the host, warmup.json); shares work across hosts."""
    renderer = warmup_tasks.WarmupRenderer(env)
    return lambda host: (WARMUP_TASKS.path(), renderer.render(host))


def server_path(host: str, server: str, rel: str) -> str:
    return f"{HOSTS_DIR}/{host}/{server}/{rel}"


def host_path(host: str, rel: str) -> str:
    return f"{HOSTS_DIR}/{host}/{rel}"


def host_files(bundle_files: Mapping[str, bytes], host: str) -> dict[str, bytes]:
    """A host's artifacts from a bundle, keyed `<rel>` and `<server>/<rel>`."""
    prefix = host_path(host, "")
    return {p[len(prefix) :]: d for p, d in bundle_files.items() if p.startswith(prefix)}


def split_host_path(path: str) -> tuple[str, str] | None:
    """(host, rel) of a bundle path under hosts/, else None."""
    head, _, rest = path.partition("/")
    if head != HOSTS_DIR or not rest:
        return None
    host, _, rel = rest.partition("/")
    return host, rel


def server_of(rel: str) -> tuple[str, str] | None:
    """(server, path within the server) of a host artifact `<server>/<rel>`, else None."""
    server, slash, rest = rel.partition("/")
    return (server, rest) if slash else None


def classify(artifacts: tuple[Artifact, ...], rel: str) -> tuple[Artifact, dict[str, str]] | None:
    for artifact in artifacts:
        fields = artifact.match(rel)
        if fields is not None:
            return artifact, fields
    return None


def server_artifact(rel: str) -> tuple[ServerArtifact, dict[str, str]]:
    """The kind of a file relative to a server directory; an unknown file is a bug."""
    for artifact in SERVER_ARTIFACTS:
        fields = artifact.match(rel)
        if fields is not None:
            return artifact, fields
    raise ValueError(f"{rel}: not a server artifact this tfsconf knows")


def per_model_batching(files: Mapping[str, str] | Mapping[str, bytes]) -> dict[str, str]:
    """model -> text of its per-model batching file, from a host's artifacts keyed
    `<server>/<rel>` (servers of one host that serve the same base path resolve the same
    file: validate checks it)."""
    out: dict[str, str] = {}
    for rel, data in sorted(files.items()):
        split = server_of(rel)
        fields = MODEL_BATCHING.match(split[1]) if split else None
        if fields is not None:
            text = data.decode() if isinstance(data, bytes) else str(data)
            out.setdefault(fields["model"], text)
    return out


def version_dir_file(artifact: Artifact) -> str:
    """The file name an artifact placed into version directories takes there."""
    assert Placement.VERSION_DIR in artifact.placements
    return artifact.pattern.rsplit("/", 1)[-1]
