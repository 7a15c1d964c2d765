"""The environment spec as written in environments/<env>.yaml.

These classes mirror the YAML one to one: unknown keys and wrong types are errors, nothing
is defaulted that the resolver should decide. Settings that layer (environment -> host group
-> server -> model) are optional here; tfsconf.resolve applies the layers and the defaults.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from tfsconf.kinds import Runtime
from tfsconf.spec.connection import Connection, GrpcVia, JumpHost
from tfsconf.spec.safe import (
    AbsolutePath,
    Address,
    AptPackage,
    EnvName,
    EnvValue,
    HostName,
    ImageReference,
    ImageRepository,
    ImageTag,
    LabelName,
    Name,
    RolloutStep,
    TfServingVersion,
    Url,
    UserName,
)
from tfsconf.spec.settings import (
    INT32_MAX,
    INT64_MAX,
    BatchingParameters,
    Int64,
    ModelSettings,
    Monitoring,
    NonNegative,
    NonNegative64,
    Port,
    Positive,
    Positive64,
    ServerBatching,
    ServerSettings,
    SessionConfig,
    SpecModel,
    Warmup,
)

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "SCHEMA_VERSION",
    "AllPolicy",
    "Allocator",
    "BatchingParameters",
    "Connection",
    "Defaults",
    "DockerNetwork",
    "Environment",
    "GrpcVia",
    "Host",
    "HostGroup",
    "HttpAuth",
    "HttpSource",
    "Image",
    "Int64",
    "JumpHost",
    "LatestPolicy",
    "LocalSource",
    "Model",
    "ModelSettings",
    "ModelSource",
    "Monitoring",
    "NonNegative",
    "NonNegative64",
    "Paths",
    "Port",
    "Positive",
    "Positive64",
    "Rollout",
    "Server",
    "ServerBatching",
    "ServerSettings",
    "SessionConfig",
    "SpecModel",
    "SpecificPolicy",
    "VersionPolicy",
    "Warmup",
    "WebhdfsAuth",
    "WebhdfsSource",
]

SCHEMA_VERSION = 1


class Defaults(SpecModel):
    """Settings inherited by everything below this level unless it sets its own."""

    server: ServerSettings | None = None
    """Server settings every server below inherits unless it sets its own."""
    model: ModelSettings | None = None
    """Model settings every model served below inherits unless it sets its own."""


# --- models -------------------------------------------------------------------------------


class LatestPolicy(SpecModel):
    """Serve the newest `count` versions."""

    policy: Literal["latest"]
    """Serve the newest versions (TF Serving's default policy: latest 1)."""
    count: Annotated[int, Field(ge=1, le=1000)] = 1
    """How many of the newest versions to serve (default 1)."""


class AllPolicy(SpecModel):
    """Serve every version under base_path."""

    policy: Literal["all"]
    """Serve every version found under base_path."""


class SpecificPolicy(SpecModel):
    """Serve exactly the listed versions."""

    policy: Literal["specific"]
    """Serve exactly the versions listed."""
    versions: list[Int64]
    """The version numbers to serve: positive, each once."""


VersionPolicy = Annotated[LatestPolicy | AllPolicy | SpecificPolicy, Field(discriminator="policy")]


class LocalSource(SpecModel):
    """Versions copied from a directory on the machine that runs apply."""

    kind: Literal["local"]
    """Copy versions from a directory on the machine that runs apply."""
    path: AbsolutePath = Field(description="Directory holding <version>/ subdirectories.")


class HttpAuth(SpecModel):
    """HTTP basic authentication. The password is never written in the spec: apply reads
    it from an environment variable of the machine it runs on."""

    username: UserName
    """User name for HTTP basic authentication."""
    password_env: EnvName = Field(
        description="Environment variable holding the password (read at apply time)."
    )


class WebhdfsAuth(SpecModel):
    """A WebHDFS delegation token, read at apply time from an environment variable."""

    delegation_env: EnvName = Field(
        description="Environment variable holding the delegation token (sent as delegation=)."
    )


class HttpSource(SpecModel):
    """Versions downloaded over HTTP(S), verified against published checksums."""

    kind: Literal["http"]
    """Fetch versions over HTTP(S)."""
    url: Url = Field(description="Base URL; versions are fetched from <url>/<version>/.")
    checksums: Literal["sha256", "md5"] = "sha256"
    """How each downloaded file is verified: sha256 (default) reads <url>/<version>/.tfsconf-
    manifest.json, md5 reads <url>/<version>/MD5SUMS."""
    auth: HttpAuth | None = None
    """HTTP basic authentication; the password comes from an environment variable."""


class WebhdfsSource(SpecModel):
    """Versions downloaded from HDFS over WebHDFS, verified against checksums."""

    kind: Literal["webhdfs"]
    """Fetch versions from HDFS over WebHDFS."""
    url: Url = Field(description="webhdfs://namenode:9870/path of the model's versions.")
    checksums: Literal["sha256", "md5"] = "md5"
    """How each downloaded file is verified: md5 (default) reads <version>/MD5SUMS, sha256 reads
    <version>/.tfsconf-manifest.json."""
    auth: WebhdfsAuth | None = None
    """A delegation token from an environment variable."""


ModelSource = Annotated[LocalSource | HttpSource | WebhdfsSource, Field(discriminator="kind")]


class Model(ModelSettings):
    """A model: where its versions come from, where they live on the hosts, which
    versions are served and under which labels."""

    name: Name
    """Model name clients ask for (ModelConfig.name); unique in the environment."""
    base_path: AbsolutePath = Field(
        description="Where the versions live on the host (and in the container): must be "
        "under paths.model_root."
    )
    source: ModelSource
    """Where apply copies the versions from: kind local, http or webhdfs."""
    versions: VersionPolicy | None = Field(
        default=None, description="Version policy; TF Serving's default is latest 1."
    )
    labels: dict[LabelName, Int64] | None = None
    """Version labels (ModelConfig.version_labels), label -> version, e.g. stable: 42. A label may
    only point at a version the policy serves."""


# --- image, hosts, servers ------------------------------------------------------------


class Allocator(SpecModel):
    """The memory allocator preloaded into TF Serving (LD_PRELOAD)."""

    kind: Literal["jemalloc", "tcmalloc", "system"] = "jemalloc"
    """Memory allocator preloaded into the server: jemalloc (default) or tcmalloc give freed model
    memory back to the OS on a version swap; system keeps glibc malloc."""
    malloc_conf: EnvValue | None = None
    """MALLOC_CONF of jemalloc, e.g. background_thread:true,dirty_decay_ms:1000 (jemalloc only)."""
    package: AptPackage | None = Field(
        default=None,
        description="Pinned package, name=version; defaults to the one of the Ubuntu under "
        "the tensorflow/serving release (known for 2.5 to 2.20).",
    )
    library: AbsolutePath | None = Field(
        default=None,
        description="File to LD_PRELOAD; defaults to the package's file for the release.",
    )


class Image(SpecModel):
    """The serving image every docker server runs."""

    base_gpu: ImageReference | None = Field(
        default=None, description="Base of the GPU image; default tensorflow/serving:<version>-gpu."
    )
    base_cpu: ImageReference | None = Field(
        default=None, description="Base of the CPU image; default tensorflow/serving:<version>."
    )
    allocator: Allocator = Allocator()
    """Memory allocator of the image (LD_PRELOAD)."""
    extra_packages: list[AptPackage] = []  # noqa: RUF012 (pydantic copies defaults)
    """More apt packages for the image, each pinned as name=version."""
    registry: ImageRepository | None = Field(
        default=None, description="Pull pre-built images from here instead of building."
    )
    tag: ImageTag | None = None
    """Tag of the pre-built image in registry; needs registry."""


class Host(SpecModel):
    """One machine of a host group."""

    name: HostName
    """Host name in plans, reports and the Ansible inventory; unique."""
    address: Address
    """IP address or DNS name apply connects to (SSH) and calls TF Serving at."""
    gpus: Annotated[int, Field(ge=0, le=1024)] = 0
    """Number of GPUs on the host (default 0); a server's gpu index must be below it."""
    connection: Connection | None = None
    """SSH settings of this host; override the group's and the environment's."""


class Rollout(SpecModel):
    """How a host group is rolled out: hosts per step, failures tolerated, health
    timeout, releases kept."""

    step: RolloutStep | None = Field(
        default=None, description='Hosts per rollout step: a count (2) or a percentage ("25%").'
    )
    max_fail_percentage: Annotated[int, Field(ge=0, le=100)] | None = None
    """Percentage of a group's hosts that may fail before the rollout stops (Ansible's
    max_fail_percentage; default 0: the first failure stops it)."""
    health_timeout_seconds: Annotated[int, Field(ge=1, le=86400)] | None = None
    """Seconds a host's servers have to report every version AVAILABLE after a change before the
    host is rolled back (default 300)."""
    keep_releases: Annotated[int, Field(ge=1, le=100)] | None = None
    """Releases kept on each host for rollback (default 5)."""


DockerNetwork = Literal["bridge", "host"]
_NETWORK_HELP = (
    "Container networking of the docker runtime: bridge publishes the server's ports, host "
    "shares the host's network stack (no NAT, no docker-proxy; needs no bridge on the host)."
)


class HostGroup(SpecModel):
    """Hosts that run the same servers, with their own connection, rollout and
    defaults."""

    hosts: list[Host]
    """The hosts of this group; at least one. Every server of the group runs on each."""
    runtime: Runtime | None = None
    """How the servers run: docker (a container per server), native (a systemd unit running
    tensorflow_model_server) or process; default: the environment's."""
    docker_network: DockerNetwork | None = Field(default=None, description=_NETWORK_HELP)
    connection: Connection | None = None
    """SSH settings of the group's hosts; override the environment's."""
    rollout: Rollout | None = None
    """Rollout steps of this group; override the environment's."""
    defaults: Defaults | None = None
    """Server and model settings of this group; override the environment's."""


class Server(ServerSettings):
    """One TF Serving process on every host of its group, with its ports, GPU and
    models."""

    name: Name
    """Server name (one TF Serving process on each host of its group); unique."""
    group: Name
    """Host group the server runs on (a key of host_groups)."""
    gpu: Annotated[int, Field(ge=0, le=1023)] | None = Field(
        default=None, description="GPU index; omit for a CPU server."
    )
    grpc_port: Port = 8500
    """--port, the gRPC port (default 8500); unique among the group's servers."""
    rest_port: Annotated[int, Field(ge=0, le=65535)] = 8501
    """--rest_api_port, the REST port (default 8501); 0 turns REST off. Must differ from
    grpc_port."""
    models: list[Name]
    """Names of the models this server serves (from models), each once."""
    model_defaults: ModelSettings | None = None
    """Model settings for the models of this server; override the environment's and the group's."""


class Paths(SpecModel):
    """Where models and configs live on the hosts."""

    model_root: AbsolutePath = "/srv/tfserving/models"
    """Directory on the hosts holding every model's base_path (default /srv/tfserving/models);
    mounted read-only into containers at the same path."""
    config_root: AbsolutePath = "/srv/tfserving/config"
    """Directory on the hosts for the servers' config releases (default /srv/tfserving/config); not
    inside model_root."""


class Environment(SpecModel):
    """One environment: the whole TF Serving estate it runs."""

    schema_version: Literal[1] = 1
    """Version of this file format; 1."""
    environment: Name
    """Name of the environment (e.g. production); the file is usually environments/<name>.yaml."""
    tfserving_version: TfServingVersion
    """TF Serving release to run, quoted: "2.18.0". Flags and batching fields are checked against it
    (1.15 or later)."""
    image: Image = Image()
    """The serving image: base images, memory allocator, extra packages, or a pre-built image from a
    registry."""
    paths: Paths = Paths()
    """Where models and configs live on the hosts."""
    connection: Connection | None = None
    """SSH settings for every host (host groups and hosts override them)."""
    runtime: Runtime = "docker"
    """How servers run: docker (default; a container per server), native (systemd unit) or
    process."""
    docker_network: DockerNetwork = Field(default="bridge", description=_NETWORK_HELP)
    rollout: Rollout | None = None
    """Rollout steps for every group (groups override them)."""
    defaults: Defaults | None = None
    """Server and model settings every server and model inherits."""
    host_groups: dict[Name, HostGroup]
    """Host groups by name: hosts that run the same servers."""
    servers: list[Server]
    """TF Serving processes: each runs on every host of its group."""
    models: list[Model]
    """The models: where their versions come from and how they are served."""
