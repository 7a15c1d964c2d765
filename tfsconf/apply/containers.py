"""The containers the docker runtime runs, as each host's engine reports them (for
`tfsconf status`): which image a server really runs, and whether it is running."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from tfsconf.compile.runtime import container_name
from tfsconf.kinds import RUNTIMES
from tfsconf.resolve import model as r


class Container(NamedTuple):
    name: str
    image: str  # the reference it was started from
    image_id: str
    running: bool
    started_at: str

    def as_json(self) -> dict[str, Any]:
        return self._asdict()


def parse_inspect(text: str) -> dict[str, Container]:
    """`docker inspect` output (a JSON array; empty when nothing matched) by name."""
    try:
        items = json.loads(text) if text.strip() else []
    except ValueError:
        return {}
    found = {}
    for item in items if isinstance(items, list) else []:
        state = item.get("State") or {}
        name = str(item.get("Name", "")).lstrip("/")
        found[name] = Container(
            name=name,
            image=str((item.get("Config") or {}).get("Image", "")),
            image_id=str(item.get("Image", "")),
            running=bool(state.get("Running")),
            started_at=str(state.get("StartedAt", "")),
        )
    return found


def container_states(
    env: r.Environment, inventory: Mapping[str, Any]
) -> dict[str, dict[str, Container | None]]:
    """host -> server -> its container (None: the engine has none by that name). Hosts
    that cannot be asked are left out."""
    from tfsconf.apply import ansible

    wanted = {
        host.name: {server.name: container_name(server) for server in host.servers}
        for host in env.hosts
        if RUNTIMES[host.runtime].container and host.servers
    }
    if not wanted:
        return {}
    result = ansible.run(
        "containers.yml",
        inventory=inventory,
        extravars={"tfsconf_containers": {h: sorted(s.values()) for h, s in wanted.items()}},
        limit=sorted(wanted),
    )
    states: dict[str, dict[str, Container | None]] = {}
    for host, servers in wanted.items():
        if host not in result.results:
            continue
        found = parse_inspect(str(result.results[host].get("containers", "")))
        states[host] = {server: found.get(name) for server, name in servers.items()}
    return states
