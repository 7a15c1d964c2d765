"""The tensorflow/serving images: which Ubuntu each release is built on, and so which
allocator package, pin and library file its image can install.

One table, keyed by TF Serving release, read by both the resolver (the defaults it fills
in) and the validator (which releases have defaults at all).

Evidence for the base of each release: the last FROM of
tensorflow_serving/tools/docker/Dockerfile.gpu (and FROM of tools/docker/Dockerfile, the
CPU image) at each release tag of tensorflow/serving:
- 2.5.1 to 2.11.1: `nvidia/cuda:11.2.1-base-ubuntu18.04` / `ubuntu:18.04`;
- 2.12.0 to 2.14.1: `nvidia/cuda:11.8.0-base-ubuntu20.04` / `ubuntu:20.04`;
- 2.16.1 to 2.19.1: `nvidia/cuda:12.2.0-base-ubuntu20.04 as base_build` / `ubuntu:20.04`;
- 2.20.0: `nvidia/cuda:12.5.1-base-ubuntu22.04 as base_build` / `ubuntu:22.04@sha256:...`.

Evidence for the package versions: each is the version that Ubuntu release ships (its
.deb is in archive.ubuntu.com's pool: jemalloc in universe/j/jemalloc, google-perftools in
main/g/google-perftools); the 20.04 and 22.04 revisions are also in ../shared DOMAIN.md.
The library path is the one that package installs (the multiarch directory of amd64, the
only architecture the tensorflow/serving images are published for).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tfsconf.tfserving.flags import parse_version

AllocatorKind = Literal["jemalloc", "tcmalloc", "system"]

_LIB = "/usr/lib/x86_64-linux-gnu"


@dataclass(frozen=True, slots=True)
class AllocatorBuild:
    """What the image installs and preloads for one allocator."""

    package: str  # apt `name=version`, pinned to the base's own revision
    library: str  # the file LD_PRELOAD names
    malloc_conf: str | None  # default MALLOC_CONF (jemalloc only)


@dataclass(frozen=True, slots=True)
class ImageBase:
    """The Ubuntu release under a range of TF Serving releases (first..last inclusive)."""

    first: tuple[int, int]
    last: tuple[int, int]
    ubuntu: str
    allocators: Mapping[AllocatorKind, AllocatorBuild]

    def describe(self) -> str:
        return (
            f"tensorflow/serving {self.first[0]}.{self.first[1]}-{self.last[0]}.{self.last[1]} "
            f"(Ubuntu {self.ubuntu})"
        )


# jemalloc 5 purges freed pages in a background thread: freed model memory goes back to
# the OS between requests. jemalloc 3.6 (Ubuntu 18.04) has no background_thread option
# and prints "Invalid conf pair" for it, so it gets no default.
_BACKGROUND_PURGE = "background_thread:true"

IMAGE_BASES: tuple[ImageBase, ...] = (
    ImageBase(
        first=(2, 5),
        last=(2, 11),
        ubuntu="18.04",
        allocators={
            "jemalloc": AllocatorBuild("libjemalloc1=3.6.0-11", f"{_LIB}/libjemalloc.so.1", None),
            "tcmalloc": AllocatorBuild(
                "libgoogle-perftools4=2.5-2.2ubuntu3", f"{_LIB}/libtcmalloc.so.4", None
            ),
        },
    ),
    ImageBase(
        first=(2, 12),
        last=(2, 19),
        ubuntu="20.04",
        allocators={
            "jemalloc": AllocatorBuild(
                "libjemalloc2=5.2.1-1ubuntu1", f"{_LIB}/libjemalloc.so.2", _BACKGROUND_PURGE
            ),
            "tcmalloc": AllocatorBuild(
                "libgoogle-perftools4=2.7-1ubuntu2", f"{_LIB}/libtcmalloc.so.4", None
            ),
        },
    ),
    ImageBase(
        first=(2, 20),
        last=(2, 20),
        ubuntu="22.04",
        allocators={
            "jemalloc": AllocatorBuild(
                "libjemalloc2=5.2.1-4ubuntu1", f"{_LIB}/libjemalloc.so.2", _BACKGROUND_PURGE
            ),
            "tcmalloc": AllocatorBuild(
                "libgoogle-perftools4=2.9.1-0ubuntu3", f"{_LIB}/libtcmalloc.so.4", None
            ),
        },
    ),
)


def image_base(version: str) -> ImageBase | None:
    """The base of the tensorflow/serving image of `version`, or None outside the table."""
    release = parse_version(version)
    for base in IMAGE_BASES:
        if base.first <= release <= base.last:
            return base
    return None


def known_range() -> str:
    first, last = IMAGE_BASES[0].first, IMAGE_BASES[-1].last
    return f"{first[0]}.{first[1]} to {last[0]}.{last[1]}"


def default_allocator(version: str, kind: AllocatorKind) -> AllocatorBuild | None:
    """The allocator build the image of `version` gets by default (None: system malloc,
    or a release whose base tfsconf does not know)."""
    base = image_base(version)
    if base is None or kind == "system":
        return None
    return base.allocators[kind]
