"""The kinds a spec picks by name: how a server runs (its runtime) and where a model's
versions come from (its source kind). Each kind is declared here once; the spec's
`Literal`s, resolve, validate, compile, plan and apply take the names and traits from here.

The host modules under playbooks/ cannot import tfsconf (they run on hosts without it):
their copies are tied to these by tests/resolve/test_kinds_agree.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple, get_args

Runtime = Literal["docker", "native", "process"]
"""How a server runs on its host; the spec's `runtime` (environment and host group)."""


class RuntimeTraits(NamedTuple):
    """What tfsconf does differently for a runtime."""

    container: bool
    """The server runs in a container of the bundle's image (built or pulled on the host);
    otherwise it runs the host's own tensorflow_model_server, in the host's filesystem."""
    systemd_unit: bool
    """A compiled systemd unit starts the server; otherwise tfsconf's supervisor starts it
    from the compiled launch file."""
    host_needs: str
    """What plan says a host needs when it moves to this runtime."""


_RUNTIMES: dict[Runtime, RuntimeTraits] = {
    "docker": RuntimeTraits(
        container=True, systemd_unit=True, host_needs="the host needs Docker and the image"
    ),
    "native": RuntimeTraits(
        container=False,
        systemd_unit=True,
        host_needs="the host needs tensorflow_model_server and the allocator library",
    ),
    "process": RuntimeTraits(
        container=False,
        systemd_unit=False,
        host_needs="the host needs tensorflow_model_server; no systemd unit is used",
    ),
}
RUNTIMES: Mapping[Runtime, RuntimeTraits] = MappingProxyType(_RUNTIMES)
"""Every runtime and its traits (keys: exactly the names of `Runtime`, which a test checks)."""

SourceKind = Literal["local", "http", "webhdfs"]
"""Where apply fetches a model's versions from; the `kind` of the spec's source classes
(tfsconf/spec/model.py ModelSource, one class per kind for its own fields)."""

SOURCE_KINDS: tuple[SourceKind, ...] = get_args(SourceKind)
"""The source kinds, in the order the spec documents them."""
