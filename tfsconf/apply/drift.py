"""Drift between a host and its record: files edited, missing or added on the host, a
`current` link moved by hand, a server that does not serve what the record says.

The plan compares the spec with the records; this compares the records with the hosts.
status reports it; apply repairs it (restores the record's files, then reloads or restarts
the server, with a plan line saying why).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tfsconf.apply.record import HostRecord
from tfsconf.compile.artifacts import MODELS_CONFIG
from tfsconf.contracts import Activation, HostWork
from tfsconf.resolve import model as r


@dataclass(frozen=True, slots=True)
class Drift:
    server: str
    what: str
    config_only: bool = False
    """Only models.config differs: restoring it and a hot reload repair it."""

    def __str__(self) -> str:
        return f"{self.server}: {self.what}"


def _servers(record: HostRecord) -> list[str]:
    return [str(s) for s in record.data.get("manifest", {}).get("servers", [])]


def file_drift(record: HostRecord, on_host: Mapping[str, Any]) -> list[Drift]:
    """Each way the files a host's servers run from differ from its record."""
    out: list[Drift] = []
    for server in _servers(record):
        seen = on_host.get(server)
        if not isinstance(seen, dict):
            out.append(
                Drift(server, f"no `current` on the host (the record says {record.release})")
            )
            continue
        if seen.get("current") != record.release:
            out.append(
                Drift(server, f"current points at {seen.get('current')}, not {record.release}")
            )
        prefix = f"{server}/"
        want = {
            rel[len(prefix) :]: hashlib.sha256(str(text).encode()).hexdigest()
            for rel, text in record.files.items()
            if rel.startswith(prefix)
        }
        have = dict(seen.get("files") or {})
        for rel in sorted(set(want) | set(have)):
            config = rel == MODELS_CONFIG.path()
            if rel not in have:
                out.append(Drift(server, f"{rel}: missing on the host", config))
            elif rel not in want:
                out.append(Drift(server, f"{rel}: on the host but not in the record"))
            elif have[rel] != want[rel]:
                out.append(
                    Drift(
                        server,
                        f"{rel}: edited on the host (sha256 {str(have[rel])[:12]}, the "
                        f"record's {want[rel][:12]})",
                        config,
                    )
                )
    return out


def serving_drift(
    host: r.Host, record: HostRecord, inventory: Mapping[str, Any] | None = None
) -> list[Drift]:
    """Servers that do not serve what the record says (a version not AVAILABLE, no answer);
    over SSH when the host's inventory entry says so (grpc_via: ssh)."""
    import contextlib

    import grpc

    from tfsconf.apply.serving import expectations, model_status
    from tfsconf.apply.tunnel import open_endpoints

    out: list[Drift] = []
    ports = {s.name: s.grpc_port for s in host.servers}
    models = record.data.get("models") or {}
    servers = [s for s in _servers(record) if s in ports]
    with contextlib.ExitStack() as stack:
        endpoints, unreachable = open_endpoints(
            stack, host, [ports[s] for s in servers], inventory or {}
        )
        for server in servers:
            text = record.files.get(f"{server}/{MODELS_CONFIG.path()}")
            if text is None:
                continue
            endpoint = endpoints.get(ports[server])
            if endpoint is None:
                out.append(
                    Drift(server, f"does not answer on port {ports[server]} ({unreachable})")
                )
                continue
            for model, versions in sorted(expectations(text).items()):
                known = models.get(model)
                wanted = versions or (list(known.get("versions") or []) if known else [])
                try:
                    live = model_status(endpoint, model, timeout=3)
                except grpc.RpcError as exc:
                    out.append(
                        Drift(
                            server, f"does not answer on port {ports[server]} ({exc.code().name})"
                        )
                    )
                    break
                states = {v: s for v, (s, _) in live.items()}
                missing = [v for v in wanted if states.get(v) != "AVAILABLE"]
                if missing or not any(s == "AVAILABLE" for s in states.values()):
                    shown = ", ".join(f"v{v} {s}" for v, s in sorted(states.items())) or "nothing"
                    out.append(
                        Drift(
                            server,
                            f"{model}: version(s) {missing or wanted} not AVAILABLE ({shown})",
                        )
                    )
    return out


def find_repairs(
    env: r.Environment,
    records: Mapping[str, HostRecord | None],
    on_host: Mapping[str, Mapping[str, Any]],
    *,
    skip: set[str],
    inventory: Mapping[str, Any] | None = None,
) -> dict[str, list[Drift]]:
    """host -> what to repair, for every host that has a record and no planned change
    (`inventory`: how to reach TF Serving over SSH, for hosts with grpc_via: ssh)."""
    out: dict[str, list[Drift]] = {}
    for host in env.hosts:
        record = records.get(host.name)
        if record is None or host.name in skip:
            continue
        found = file_drift(record, on_host.get(host.name) or {}) + serving_drift(
            host, record, inventory
        )
        if found:
            out[host.name] = found
    return out


def render_repairs(repairs: Mapping[str, list[Drift]]) -> str:
    lines = []
    for host, found in sorted(repairs.items()):
        servers = sorted({d.server for d in found})
        for server in servers:
            mine = [d for d in found if d.server == server]
            how = "hot reload" if all(d.config_only for d in mine) else "restart"
            why = "; ".join(d.what for d in mine)
            lines.append(f"  ~ {host}/{server}: repair (restore the record's files, {how}): {why}")
    return (
        ("Repairs (the hosts differ from their records):\n" + "\n".join(lines) + "\n")
        if lines
        else ""
    )


def repair_work(
    env: r.Environment,
    record: HostRecord,
    found: list[Drift],
    *,
    health_timeout: float | None = None,
) -> HostWork:
    """Work that puts a host back on its recorded release: the release staged again from
    the record (which rewrites edited files), `current` pointed at it, and each drifted
    server reloaded (only models.config differed) or restarted."""
    from tfsconf.apply import activations as act
    from tfsconf.apply.model_work import resolved_of
    from tfsconf.apply.rollback import rollback_work
    from tfsconf.apply.work import server_files

    work = rollback_work(env, record, record, health_timeout=health_timeout)
    work["kind"] = "repair"
    host = next(h for h in env.hosts if h.name == record.host)
    models = resolved_of(record.data.get("models") or {})
    activations: list[Activation] = []
    for server in sorted({d.server for d in found}):
        files = server_files(record.files, server)
        config = files.get(MODELS_CONFIG.path())
        mine = [d for d in found if d.server == server]
        hot = all(d.config_only for d in mine) and config is not None
        activations.append(
            act.activation(
                server=server,
                kind="hot-reload" if hot else "restart",
                address=host.address,
                files=files,
                resolved=models,
                timeout=work["timeout"],
                before=act.previous(record.release, files, models),
                phases=act.pushes((), config) if hot and config is not None else [],
            )
        )
    work["activations"] = activations
    return work
