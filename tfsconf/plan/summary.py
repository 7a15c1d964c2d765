"""The one-line summary of a plan or a host ("Plan: 2 servers hot-reload, ..."), from the
number of each kind of change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfsconf.plan.model import HostPlan


COUNT_KEYS = (
    "hosts_create",
    "hosts_remove",
    "create",
    "remove",
    "rebuild",
    "restart",
    "hot-reload",
    "sync",
    "warmup",
)


def counts(hosts: tuple[HostPlan, ...] | list[HostPlan]) -> dict[str, int]:
    out = dict.fromkeys(COUNT_KEYS, 0)
    for host in hosts:
        if host.change == "create":
            out["hosts_create"] += 1
        elif host.change == "remove":
            out["hosts_remove"] += 1
        for server in host.servers:
            if server.activation is not None:
                out[server.activation] += 1
        for action in host.actions:
            if action.kind == "sync":
                out["sync"] += action.versions_count
            elif action.kind == "warmup":
                out["warmup"] += action.versions_count
    return out


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def summary_line(numbers: Mapping[str, int], *, prefix: str) -> str:
    """e.g. "Plan: 2 servers hot-reload, 1 restart, 3 model versions to sync." """
    parts: list[str] = []
    if numbers["hosts_create"]:
        parts.append(_plural(numbers["hosts_create"], "host") + " to create")
    if numbers["hosts_remove"]:
        parts.append(_plural(numbers["hosts_remove"], "host") + " to remove")
    first = True
    for key, verb in (
        ("create", "to create"),
        ("remove", "to remove"),
        ("rebuild", "rebuild"),
        ("restart", "restart"),
        ("hot-reload", "hot-reload"),
    ):
        if numbers[key]:
            noun = _plural(numbers[key], "server") if first else str(numbers[key])
            parts.append(f"{noun} {verb}")
            first = False
    if numbers["sync"]:
        parts.append(_plural(numbers["sync"], "model version") + " to sync")
    if numbers["warmup"]:
        parts.append(_plural(numbers["warmup"], "warmup file") + " to generate")
    if not parts:
        return prefix + "no server changes (artifacts only)."
    return prefix + ", ".join(parts) + "."
