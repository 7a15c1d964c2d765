"""Pass 1: the validated spec as written (versions, paths, image, warmup settings)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path as FsPath
from pathlib import PurePosixPath

from tfsconf.diagnostics import Path
from tfsconf.spec import model as s
from tfsconf.spec.files import MAX_SAMPLES_BYTES, FileRefused, check_readable, confine
from tfsconf.spec.rules.collector import Collector, duplicates
from tfsconf.tfserving.flag_table import BATCHING_FIELD_SINCE, BATCHING_SERVER_ONLY
from tfsconf.tfserving.flags import OLDEST_SUPPORTED, newest_known, parse_version
from tfsconf.tfserving.images import default_allocator, known_range
from tfsconf.tfserving.warmup import MAX_WARMUP_RECORDS, SAMPLE_EXTENSIONS, sample_format_of


def check_references(
    env: s.Environment,
    out: Collector,
    *,
    spec_dir: PurePosixPath,
    files_root: PurePosixPath | None = None,
) -> None:
    """`files_root`: the tree every file the spec names must lie in (default: spec_dir)."""
    # long: a flat list of independent checks in the order their messages are reported.
    root = spec_dir if files_root is None else files_root
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

    check_models(list(enumerate(env.models)), env.paths, out, spec_dir=spec_dir, files_root=root)
    _check_roots(env.paths, out)

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
    needs_default = alloc.kind != "system" and (alloc.package is None or alloc.library is None)
    if needs_default and default_allocator(env.tfserving_version, alloc.kind) is None:
        written = "allocator" in env.image.model_fields_set and "image" in env.model_fields_set
        out.error(
            ("image", "allocator") if written else ("tfserving_version",),
            f"tfsconf knows the {alloc.kind} package and path of the tensorflow/serving "
            f"images of releases {known_range()} only (the base Ubuntu differs by release): "
            "set allocator.package and allocator.library for this one",
            env.tfserving_version,
        )
    if env.image.tag is not None and env.image.registry is None:
        out.error(("image", "tag"), "a pre-built image tag needs image.registry to pull it from")
    _check_batching_blocks(env, major_minor, out)

    defaults = [(("defaults",), env.defaults)] + [
        (("host_groups", name, "defaults"), g.defaults) for name, g in env.host_groups.items()
    ]
    for path, block in defaults:
        if block is not None and block.model is not None:
            _check_warmup_spec(block.model.warmup, (*path, "model", "warmup"), out, spec_dir, root)
    for index, server in enumerate(env.servers):
        if server.model_defaults is not None:
            _check_warmup_spec(
                server.model_defaults.warmup,
                ("servers", index, "model_defaults", "warmup"),
                out,
                spec_dir,
                root,
            )


def check_models(
    models: list[tuple[int, s.Model]],
    paths: s.Paths | None,
    out: Collector,
    *,
    spec_dir: PurePosixPath,
    files_root: PurePosixPath | None = None,
) -> None:
    """Each model's paths, versions, labels and warmup. Takes (index, model) pairs so that
    a spec with schema errors elsewhere still gets these checks for its valid models."""
    base_paths: list[tuple[int, str]] = []
    for index, model in models:
        mpath: Path = ("models", index)
        base = PurePosixPath(model.base_path)
        if paths is not None:
            root = PurePosixPath(paths.model_root)
            if base == root or root not in base.parents:
                out.error(
                    (*mpath, "base_path"),
                    f"must be a directory under paths.model_root ({paths.model_root})",
                    model.base_path,
                )
        base_paths.append((index, model.base_path))
        _check_versions(model, mpath, out)
        _check_warmup_spec(model.warmup, (*mpath, "warmup"), out, spec_dir, files_root or spec_dir)
    for position, base_path in duplicates([b for _, b in base_paths]):
        out.error(
            ("models", base_paths[position][0], "base_path"),
            "two models share this base_path (their versions would mix)",
            base_path,
        )
    _check_nested_base_paths(models, out)


def _check_nested_base_paths(models: list[tuple[int, s.Model]], out: Collector) -> None:
    """A base path inside another is read as one of its versions when its name is numeric,
    and is scanned by both servers' file-system polls otherwise."""
    index_of = {PurePosixPath(m.base_path): i for i, m in models}
    for inner, inner_index in index_of.items():
        for parent in inner.parents:
            outer_index = index_of.get(parent)
            if outer_index is not None:
                out.error(
                    ("models", inner_index, "base_path"),
                    f"lies inside the base_path of models[{outer_index}] ({parent}): one "
                    "model's versions would show up in the other",
                    str(inner),
                )
                break


# Mounted read-only into the container at the same path: a root here would shadow the
# image's own system directories (the server binary, the allocator library).
_SYSTEM_TREES = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/boot", "/proc", "/sys")
_SYSTEM_DIRS = ("/", "/etc", "/var", "/run", "/tmp", "/home", "/root", "/opt", "/srv", "/dev")  # noqa: S108


def _check_roots(paths: s.Paths, out: Collector) -> None:
    roots = {"model_root": PurePosixPath(paths.model_root)}
    roots["config_root"] = PurePosixPath(paths.config_root)
    for name, root in roots.items():
        text = str(root)
        in_tree = any(text == t or text.startswith(t + "/") for t in _SYSTEM_TREES)
        if in_tree or text in _SYSTEM_DIRS or text.startswith("/dev/"):
            out.error(
                ("paths", name),
                "must be a directory of its own, not a system directory: it is mounted into "
                "the container at the same path",
                text,
            )
    model_root, config_root = roots["model_root"], roots["config_root"]
    if model_root == config_root or model_root in config_root.parents:
        out.error(
            ("paths", "config_root"), "must not lie inside paths.model_root", str(config_root)
        )
    elif config_root in model_root.parents:
        out.error(("paths", "model_root"), "must not lie inside paths.config_root", str(model_root))


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
        for vindex, listed in duplicates([str(v) for v in policy.versions]):
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
    warmup: s.Warmup | None,
    wpath: Path,
    out: Collector,
    spec_dir: PurePosixPath,
    files_root: PurePosixPath,
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
    try:
        check_readable(confine(FsPath(full), FsPath(files_root)), MAX_SAMPLES_BYTES)
    except FileRefused as exc:
        out.error((*wpath, "samples"), f"samples file {full}: {exc.message}", warmup.samples)
    else:
        _check_sample_format(samples, warmup, wpath, out)


def _check_sample_format(
    samples: PurePosixPath, warmup: s.Warmup, wpath: Path, out: Collector
) -> None:
    if sample_format_of(samples, warmup.format) is None:
        known = ", ".join(sorted(SAMPLE_EXTENSIONS))
        out.error(
            (*wpath, "samples"),
            f"cannot tell the sample format from the extension (known: {known}); set warmup.format",
            warmup.samples,
        )


def _batching_blocks(
    env: s.Environment,
) -> Iterator[tuple[Path, s.BatchingParameters, bool]]:
    """Every batching block as written: (path, block, is it model-level)."""
    layers: list[tuple[Path, s.Defaults | None]] = [(("defaults",), env.defaults)]
    layers += [(("host_groups", n, "defaults"), g.defaults) for n, g in env.host_groups.items()]
    for path, defaults in layers:
        server_block = defaults.server if defaults is not None else None
        model_block = defaults.model if defaults is not None else None
        if server_block is not None and server_block.batching is not None:
            yield (*path, "server", "batching"), server_block.batching, False
        if model_block is not None and model_block.batching is not None:
            yield (*path, "model", "batching"), model_block.batching, True
    for index, server in enumerate(env.servers):
        if server.batching is not None:
            yield ("servers", index, "batching"), server.batching, False
        if server.model_defaults is not None and server.model_defaults.batching is not None:
            path = ("servers", index, "model_defaults", "batching")
            yield path, server.model_defaults.batching, True
    for index, model in enumerate(env.models):
        if model.batching is not None:
            yield ("models", index, "batching"), model.batching, True


def _check_batching_blocks(env: s.Environment, release: tuple[int, int], out: Collector) -> None:
    for path, block, model_level in _batching_blocks(env):
        for name in sorted(block.model_fields_set):
            since = BATCHING_FIELD_SINCE.get(name)
            if since is not None and release < since:
                out.error(
                    (*path, name),
                    f"BatchingParameters.{name} needs TF Serving {since[0]}.{since[1]} or "
                    "later: an older server cannot parse the batching file and no batched "
                    "model loads (declared tfserving_version)",
                    getattr(block, name),
                )
            if model_level and name in BATCHING_SERVER_ONLY:
                out.error(
                    (*path, name),
                    f"{name} is a server setting: the batch thread pool is shared by every "
                    "model of a server and comes from the server's batching "
                    "(--batching_parameters_file); a per-model batching file sets only "
                    "queue options",
                    getattr(block, name),
                )
