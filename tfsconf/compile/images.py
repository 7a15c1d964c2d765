"""Serving images: the Dockerfile and the reference the units run."""

from __future__ import annotations

import hashlib

from tfsconf.compile.templating import Templates
from tfsconf.resolve import model as r


def render_dockerfile(image: r.Image, env: r.Environment, templates: Templates) -> bytes:
    packages = []
    if image.allocator_package:
        packages.append(image.allocator_package)
    packages += sorted(image.extra_packages)
    return templates.render(
        "Dockerfile.j2",
        environment=env.name,
        image_name=image.name,
        base=image.base,
        packages=packages,
        library=image.allocator_library,
        malloc_conf=image.malloc_conf,
    )


def image_reference(image: r.Image, env: r.Environment, dockerfile: bytes) -> str:
    """Content-addressed by default: a changed Dockerfile is a new tag, so a unit that runs
    it changes too and the plan shows rebuild + restart."""
    repository = f"{image.registry}/{image.name}" if image.registry else f"tfsconf/{image.name}"
    if image.tag:
        return f"{repository}:{image.tag}"
    digest = hashlib.sha256(dockerfile).hexdigest()[:12]
    return f"{repository}:{env.name}-{env.tfserving_version}-{digest}"
