"""Pass 0: names and references, on the raw YAML data."""

from __future__ import annotations

from tfsconf.diagnostics import Path
from tfsconf.spec.rules.collector import Collector, duplicates


def _items(data: object, key: str) -> list[tuple[int, dict[object, object]]]:
    """The mapping entries of the list data[key], skipping anything malformed: the schema
    pass reports malformed entries, this pass only reads names."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _names(entries: list[tuple[int, dict[object, object]]], field: str) -> list[tuple[int, str]]:
    return [(i, v) for i, item in entries if isinstance(v := item.get(field), str)]


def check_names(data: object, out: Collector) -> None:
    """Name uniqueness and references. These run on the raw data, before and regardless of
    the schema pass, so that a typo elsewhere does not hide a duplicate or a dangling name:
    every problem is reported in one run."""
    models = _names(_items(data, "models"), "name")
    servers = _items(data, "servers")
    for what, named in (("model", models), ("server", _names(servers, "name"))):
        for dup, name in duplicates([n for _, n in named]):
            out.error((f"{what}s", named[dup][0], "name"), f"duplicate {what} name", name)

    groups = data.get("host_groups") if isinstance(data, dict) else None
    groups = groups if isinstance(groups, dict) else {}
    hosts: list[tuple[Path, str, str]] = []
    for group_name, group in groups.items():
        group_hosts = _items(group, "hosts")
        if isinstance(group, dict) and group.get("hosts") == []:
            out.error(("host_groups", group_name, "hosts"), "a host group needs at least one host")
        for index, host in group_hosts:
            hpath: Path = ("host_groups", str(group_name), "hosts", index)
            for field in ("name", "address"):
                if isinstance(value := host.get(field), str):
                    hosts.append(((*hpath, field), field, value))
    for field in ("name", "address"):
        entries = [(path, value) for path, f, value in hosts if f == field]
        for dup, value in duplicates([v for _, v in entries]):
            out.error(
                entries[dup][0], f"duplicate host {field} (a host belongs to one group)", value
            )

    model_names = {name for _, name in models}
    served: set[str] = set()
    for index, server in servers:
        spath: Path = ("servers", index)
        group = server.get("group")
        if isinstance(group, str) and group not in groups:
            known = ", ".join(sorted(str(g) for g in groups)) or "none"
            out.error((*spath, "group"), f"unknown host group (known: {known})", group)
        listed = server.get("models")
        if listed == []:
            out.error((*spath, "models"), "a server must serve at least one model")
        listed = [m for m in listed if isinstance(m, str)] if isinstance(listed, list) else []
        for model_index, name in enumerate(listed):
            if name not in model_names:
                out.error((*spath, "models", model_index), "unknown model", name)
            served.add(name)
        for model_index, name in duplicates(listed):
            out.error(
                (*spath, "models", model_index),
                "model listed twice on this server (model names must be unique per server)",
                name,
            )
    for index, name in models:
        if name not in served:
            out.warning(("models", index, "name"), "model is not served by any server", name)
