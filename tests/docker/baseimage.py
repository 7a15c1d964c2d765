"""A local stand-in for the tensorflow/serving:<version> image (no registry is reachable).

The root filesystem is a minimal Debian (mmdebstrap, minbase variant) with python3 and the
TF Serving stand-in installed as /usr/bin/tensorflow_model_server. Inside it, a local apt
repository (a `file:` source, the only one the image has) holds the allocator packages, so
the compiled Dockerfile's `apt-get update && apt-get install <pinned package>` runs for
real, offline. The tarball is what `docker import` takes.

Built once per machine and input set: the cache key hashes this file, the stand-in, and
the Python packages copied into the image (by name and version), so a change to any of
them builds a new tarball and an unchanged set reuses the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "standin" / "tfserving_standin.py"
CACHE = Path(os.environ.get("TFSCONF_TEST_CACHE", "/var/cache/tfsconf-test"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# libjemalloc2 and libgoogle-perftools4 with the dependencies minbase lacks
REPO_PACKAGES = ("libjemalloc2", "libgoogle-perftools4", "libtcmalloc-minimal4", "libunwind8")
APT_REPO_DIR = "/opt/tfsconf-apt"
SITE_DIR = "/opt/tfsconf-standin/site"
# Copied whole from the test environment: the stand-in's runtime dependencies.
PYTHON_TREES = ("grpc", "google/protobuf", "google/_upb", "typing_extensions.py")
PYTHON_DISTRIBUTIONS = (
    "grpcio",
    "protobuf",
    "typing-extensions",
    "tensorflow",
    "tensorflow-serving-api",
)
BUILD_SECONDS = 900


@dataclass(frozen=True)
class BaseImage:
    tarball: Path
    key: str
    packages: dict[str, str]  # name -> Debian version in the image's apt repository
    # the same image whose apt repository lacks tcmalloc (a host whose mirror lacks a pin)
    tarball_without_tcmalloc: Path


def _key() -> str:
    digest = hashlib.sha256()
    for path in (Path(__file__), STANDIN):
        digest.update(path.read_bytes())
    for name in PYTHON_DISTRIBUTIONS:
        digest.update(f"{name}={importlib.metadata.version(name)}\n".encode())
    digest.update(f"{SUITE} {MIRROR} {REPO_PACKAGES} {sys.version_info[:2]}".encode())
    return digest.hexdigest()[:16]


def _run(argv: list[str], **kwargs: object) -> str:
    proc = subprocess.run(
        argv, capture_output=True, text=True, check=False, timeout=BUILD_SECONDS, **kwargs
    )  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr}")
    return str(proc.stdout)


_COLLECT_PB2 = """
import json, sys, importlib.util
spec = importlib.util.spec_from_file_location("standin", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["standin"] = module
spec.loader.exec_module(module)
module.protos()
roots = ("tensorflow", "tensorflow_serving", "tsl", "xla")
files = sorted(
    m.__file__ for name, m in list(sys.modules.items())
    if getattr(m, "__file__", None) and name.split(".")[0] in roots
)
print(json.dumps(files))
"""


def _site_packages() -> Path:
    import grpc

    return Path(grpc.__file__).resolve().parents[1]


def _install_python(rootfs: Path) -> None:
    """The stand-in's imports: grpc and protobuf as installed here (the image's python is
    the same minor version), and only the generated pb2 modules of tensorflow and
    tensorflow_serving, in bare packages (TensorFlow's runtime is never imported)."""
    site = _site_packages()
    target = rootfs / SITE_DIR.lstrip("/")
    for tree in PYTHON_TREES:
        if (site / tree).is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(site / tree, target / tree)
        else:
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(site / tree, target / tree, ignore=ignore)
    files = json.loads(_run([sys.executable, "-c", _COLLECT_PB2, str(STANDIN)]))
    for name in files:
        source = Path(name).resolve()
        rel = source.relative_to(site)
        if not rel.name.endswith(("_pb2.py", "_pb2_grpc.py")):
            continue  # package __init__ files: written empty below
        dest = target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
        for parent in rel.parents:
            if parent != Path("."):
                init = target / parent / "__init__.py"
                if not init.exists():
                    init.write_text("")
    standin_dir = rootfs / "opt" / "tfsconf-standin"
    shutil.copy2(STANDIN, standin_dir / "tfserving_standin.py")
    server = rootfs / "usr" / "bin" / "tensorflow_model_server"
    server.write_text(
        "#!/bin/sh\n# tfsconf test image: the TF Serving stand-in, not TF Serving\n"
        f"PYTHONPATH={SITE_DIR} exec /usr/bin/python3 "
        '/opt/tfsconf-standin/tfserving_standin.py "$@"\n'
    )
    server.chmod(0o755)


def _install_apt_repository(rootfs: Path) -> dict[str, str]:
    """The allocator packages as a local, trusted apt repository, the image's only source."""
    repo = rootfs / APT_REPO_DIR.lstrip("/")
    repo.mkdir(parents=True)
    _run(["apt-get", "download", *REPO_PACKAGES], cwd=repo)
    packages = _run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo)
    (repo / "Packages").write_text(packages)
    versions = {}
    for stanza in packages.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if "Package" in fields:
            versions[fields["Package"]] = fields["Version"]
    apt = rootfs / "etc" / "apt"
    for listing in [apt / "sources.list", *apt.glob("sources.list.d/*")]:
        listing.unlink()
    (apt / "sources.list.d" / "tfsconf-test.list").write_text(
        f"deb [trusted=yes] file:{APT_REPO_DIR} ./\n"
    )
    return versions


@contextlib.contextmanager
def _locked(path: Path):  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_image() -> BaseImage:
    """The cached tarball for the current inputs, built first when missing."""
    key = _key()
    final = CACHE / f"tfserving-base-{key}"
    with _locked(CACHE / ".lock"):
        if not (final / "meta.json").exists():
            _build(final)
    meta = json.loads((final / "meta.json").read_text())
    return BaseImage(
        final / "rootfs.tar", key, meta["packages"], final / "rootfs-without-tcmalloc.tar"
    )


def _minbase() -> Path:
    """The Debian minbase root with python3 as a tarball, cached by suite and mirror (the
    slow part: a few minutes; the rest of the image is rebuilt when the stand-in changes)."""
    tag = hashlib.sha256(f"{SUITE} {MIRROR} python3".encode()).hexdigest()[:12]
    tarball = CACHE / f"minbase-{SUITE}-{tag}.tar"
    if not tarball.exists():
        partial = tarball.with_suffix(".partial.tar")
        _run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=python3",
                "--aptopt=Acquire::Retries=3",
                SUITE,
                str(partial),
                MIRROR,
            ]
        )
        partial.rename(tarball)
    return tarball


def _build(final: Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=".build-") as tmp:
        work = Path(tmp)
        rootfs = work / "rootfs"
        rootfs.mkdir()
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-xf", str(_minbase())])
        (rootfs / "opt" / "tfsconf-standin").mkdir(parents=True)
        _install_python(rootfs)
        packages = _install_apt_repository(rootfs)
        out = work / "out"
        out.mkdir()
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(out / "rootfs.tar"), "."])
        repo = rootfs / APT_REPO_DIR.lstrip("/")
        for deb in repo.glob("libgoogle-perftools4_*.deb"):
            deb.unlink()
        (repo / "Packages").write_text(_run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo))
        tar_without = str(out / "rootfs-without-tcmalloc.tar")
        _run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", tar_without, "."])
        (out / "meta.json").write_text(json.dumps({"packages": packages}, sort_keys=True))
        shutil.rmtree(final, ignore_errors=True)
        out.rename(final)


if __name__ == "__main__":
    image = base_image()
    print(image.tarball, image.packages)
