"""`tfsconf status`: each host's last-applied record, the drift of the spec against it,
and what TF Serving reports for every model version (GetModelStatus)."""

from __future__ import annotations

import contextlib
from typing import Any

from tfsconf.compile.artifacts import MODELS_CONFIG
from tfsconf.kinds import RUNTIMES
from tfsconf.plan.model import Plan


def collect_status(context: Any, plan: Plan) -> dict[str, Any]:
    # long: one pass over hosts and servers building the status document field by field.
    import grpc

    from tfsconf.apply.containers import container_states
    from tfsconf.apply.drift import file_drift
    from tfsconf.apply.serving import expectations, model_status
    from tfsconf.apply.tunnel import open_endpoints

    env = context.loaded.resolved
    containers = container_states(env, context.inventory)
    records = context.source.records
    drift = {hp.name: hp.summary() for hp in plan.hosts}
    hosts = []
    healthy = True
    files_drift = False
    for host in env.hosts:
        record = records.get(host.name)
        servers = []
        with contextlib.ExitStack() as stack:
            endpoints, unreachable = open_endpoints(
                stack,
                host,
                [s.grpc_port for s in host.servers] if record else [],
                context.inventory,
            )
            for server in host.servers:
                text = record.files.get(f"{server.name}/{MODELS_CONFIG.path()}") if record else None
                models = []
                for model, versions in sorted(expectations(text).items()) if text else ():
                    wanted = versions
                    if wanted is None and record is not None:
                        wanted = (record.data.get("models", {}).get(model) or {}).get("versions")
                    endpoint = endpoints.get(server.grpc_port)
                    try:
                        if endpoint is None:
                            live, error = {}, unreachable
                        else:
                            live, error = model_status(endpoint, model, timeout=3), ""
                    except grpc.RpcError as exc:
                        live, error = {}, f"{exc.code().name}"
                    states = {str(v): s for v, (s, _) in sorted(live.items())}
                    ok = not error and all(states.get(str(v)) == "AVAILABLE" for v in wanted or [])
                    ok = ok and (bool(wanted) or "AVAILABLE" in states.values())
                    healthy = healthy and ok
                    models.append(
                        {
                            "model": model,
                            "expected": wanted,
                            "states": states,
                            "ok": ok,
                            "error": error,
                        }
                    )
                entry: dict[str, Any] = {
                    "server": server.name,
                    "grpc_port": server.grpc_port,
                    "models": models,
                }
                if RUNTIMES[host.runtime].container and host.name in containers:
                    found = containers[host.name].get(server.name)
                    entry["container"] = found.as_json() if found else None
                    healthy = healthy and found is not None and found.running
                servers.append(entry)
        drifted = (
            [str(d) for d in file_drift(record, context.source.on_host.get(host.name) or {})]
            if record is not None
            else []
        )
        files_drift = files_drift or bool(drifted)
        hosts.append(
            {
                "drifted_files": drifted,
                "host": host.name,
                "address": host.address,
                "release": record.release if record else None,
                "applied_at": record.data.get("applied_at") if record else None,
                "operator": record.data.get("operator") if record else None,
                "drift": drift.get(host.name, ""),
                "servers": servers,
            }
        )
    return {
        "environment": env.name,
        "in_sync": not plan.has_changes and healthy and not files_drift,
        "drift": plan.has_changes or files_drift,
        "healthy": healthy,
        "hosts": hosts,
    }


def render_status(result: dict[str, Any]) -> str:
    lines = [f"environment {result['environment']}"]
    for host in result["hosts"]:
        release = host["release"] or "never applied"
        when = f" at {host['applied_at']} by {host['operator']}" if host["release"] else ""
        lines.append(f"{host['host']} ({host['address']}): release {release}{when}")
        if host["drift"]:
            lines.append(f"  drift: {host['drift']}")
        for what in host.get("drifted_files", []):
            lines.append(f"  drifted on the host: {what}")
        for server in host["servers"]:
            if "container" in server:
                found = server["container"]
                if found is None:
                    lines.append(f"  {server['server']}: NO CONTAINER")
                else:
                    since = f"running since {found['started_at']}"
                    lines.append(
                        f"  {server['server']}: container {found['name']} image {found['image']} "
                        + (since if found["running"] else "NOT RUNNING")
                    )
            for model in server["models"]:
                states = ", ".join(f"v{v} {s}" for v, s in model["states"].items()) or (
                    model["error"] or "not served"
                )
                mark = "ok" if model["ok"] else "NOT OK"
                lines.append(f"  {server['server']}/{model['model']}: {states} [{mark}]")
    verdict = (
        "in sync"
        if result["in_sync"]
        else (
            "DRIFT: the spec or the files differ from the hosts" if result["drift"] else "UNHEALTHY"
        )
    )
    lines.append(verdict)
    return "\n".join(lines) + "\n"
