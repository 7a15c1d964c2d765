"""The allocator an image installs follows the Ubuntu release under each tensorflow/serving
release (tfsconf/tfserving/images.py), in the Dockerfile, the native unit and validate."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconf import api
from tfsconf.errors import SpecError
from tfsconf.tfserving.images import IMAGE_BASES, image_base

SPEC = """\
environment: alloc
tfserving_version: "{version}"
image:
  allocator: {allocator}
host_groups:
  g:
    hosts: [{{name: h1, address: 10.0.0.1, gpus: 1}}]
servers:
  - {{name: s0, group: g, gpu: 0, models: [a]}}
  - {{name: c0, group: g, grpc_port: 9500, rest_port: 9501, models: [a]}}
models:
  - {{name: a, base_path: /srv/tfserving/models/a, source: {{kind: local, path: /d/a}}}}
"""

LIB = "/usr/lib/x86_64-linux-gnu"


def _compile(tmp_path: Path, version: str, allocator: str = "{kind: jemalloc}") -> Path:
    spec = tmp_path / "alloc.yaml"
    spec.write_text(SPEC.format(version=version, allocator=allocator))
    out = tmp_path / "out"
    api.compile_environment(spec, out)
    return out


@pytest.mark.parametrize(
    ("version", "package", "library", "malloc_conf"),
    [
        ("2.5.1", "libjemalloc1=3.6.0-11", f"{LIB}/libjemalloc.so.1", None),
        ("2.11.1", "libjemalloc1=3.6.0-11", f"{LIB}/libjemalloc.so.1", None),
        ("2.12.0", "libjemalloc2=5.2.1-1ubuntu1", f"{LIB}/libjemalloc.so.2", "background_thread"),
        ("2.18.0", "libjemalloc2=5.2.1-1ubuntu1", f"{LIB}/libjemalloc.so.2", "background_thread"),
        ("2.19.1", "libjemalloc2=5.2.1-1ubuntu1", f"{LIB}/libjemalloc.so.2", "background_thread"),
        ("2.20.0", "libjemalloc2=5.2.1-4ubuntu1", f"{LIB}/libjemalloc.so.2", "background_thread"),
    ],
)
def test_jemalloc_pin_is_the_base_ubuntus_own(
    tmp_path: Path, version: str, package: str, library: str, malloc_conf: str | None
) -> None:
    """Mirrors the last FROM of tensorflow_serving/tools/docker/Dockerfile.gpu (and the FROM
    of tools/docker/Dockerfile) at each release tag: ubuntu18.04 for 2.5-2.11, ubuntu20.04
    for 2.12-2.19, ubuntu22.04 for 2.20. The pin must exist in that Ubuntu, or apt-get
    install fails inside docker build, and the preloaded file is that package's."""
    out = _compile(tmp_path, version)
    for kind in ("gpu", "cpu"):
        text = (out / f"images/tfserving-{kind}/Dockerfile").read_text()
        assert f"apt-get install -y --no-install-recommends {package} \\" in text
        assert f" && test -f {library} \\" in text  # the build fails without the file
        assert f"ENV LD_PRELOAD={library}" in text
        if malloc_conf is None:
            assert "MALLOC_CONF" not in text  # jemalloc 3.6 has no background_thread
        else:
            assert f"MALLOC_CONF={malloc_conf}" in text


@pytest.mark.parametrize(
    ("version", "package"),
    [
        ("2.8.0", "libgoogle-perftools4=2.5-2.2ubuntu3"),
        ("2.18.0", "libgoogle-perftools4=2.7-1ubuntu2"),
        ("2.20.0", "libgoogle-perftools4=2.9.1-0ubuntu3"),
    ],
)
def test_tcmalloc_pin_is_the_base_ubuntus_own(tmp_path: Path, version: str, package: str) -> None:
    """Mirrors tensorflow_serving/tools/docker/Dockerfile.gpu, last FROM, at the release
    tag (Ubuntu 18.04 / 20.04 / 22.04); tcmalloc's file is libtcmalloc.so.4 on all three."""
    out = _compile(tmp_path, version, "{kind: tcmalloc}")
    text = (out / "images/tfserving-gpu/Dockerfile").read_text()
    assert f"--no-install-recommends {package} \\" in text
    assert f"ENV LD_PRELOAD={LIB}/libtcmalloc.so.4" in text
    assert "MALLOC_CONF" not in text


def test_table_covers_every_release_from_2_5_to_2_20_once() -> None:
    """Mirrors the release tags of tensorflow/serving that have a
    tensorflow_serving/tools/docker/Dockerfile.gpu whose last FROM names an Ubuntu: no
    release between 2.5 and 2.20 is left without a base, none has two."""
    for minor in range(5, 21):
        matches = [b for b in IMAGE_BASES if b.first <= (2, minor) <= b.last]
        assert len(matches) == 1, minor
    assert image_base("2.4.0") is None
    assert image_base("2.21.0") is None
    for base in IMAGE_BASES:
        for kind, build in base.allocators.items():
            name, _, version = build.package.partition("=")
            assert name and version, (kind, build.package)  # always pinned
            assert build.library.startswith(f"{LIB}/lib")


@pytest.mark.parametrize("version", ["2.4.0", "2.21.0"])
def test_validate_refuses_a_default_allocator_outside_the_table(
    tmp_path: Path, version: str
) -> None:
    """The validate rule reads the same table as the resolver (Dockerfile.gpu's last FROM
    per tag): outside it tfsconf cannot know the pin, so the spec must name one."""
    spec = tmp_path / "alloc.yaml"
    spec.write_text(SPEC.format(version=version, allocator="{kind: jemalloc}"))
    with pytest.raises(SpecError) as caught:
        api.validate(spec)
    messages = [d.message for d in caught.value.diagnostics if d.severity == "error"]
    assert any("releases 2.5 to 2.20 only" in m for m in messages), messages

    explicit = "{kind: jemalloc, package: libjemalloc2=9.9-1, library: /opt/j/libjemalloc.so.2}"
    spec.write_text(SPEC.format(version=version, allocator=explicit))
    api.validate(spec)  # named by the operator: accepted
