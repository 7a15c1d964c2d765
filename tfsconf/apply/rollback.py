"""`tfsconf rollback`: put hosts back on a release they ran before.

Every release a host applied is kept there as a record (.tfsconf/releases/<id>.json, the
newest `keep_releases` of them) with its artifacts, so a rollback needs neither the old
spec nor the model sources: the versions it serves were published when it was applied and
apply never deletes a version. Preflight checks that they are still on disk. The rollout
is apply's own (preflight, lock, steps, health gates, automatic rollback of a failed host);
only the work differs: artifacts come from the record, and nothing is synced.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from tfsconf.apply.ansible import DEFAULT_FORKS
from tfsconf.apply.batching import placements
from tfsconf.apply.record import HostRecord, now, operator
from tfsconf.apply.work import (
    _policy_expect,
    config_poll_seconds_of,
    grpc_port_of,
    reload_deadline_of,
)
from tfsconf.errors import UserError
from tfsconf.resolve import model as r

RECORD_KIND = "rollback"


def choose_targets(
    records: Mapping[str, HostRecord | None], to: str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """host -> release to return to, and host -> why a host is skipped."""
    targets: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for host, record in sorted(records.items()):
        if record is None:
            skipped[host] = "never applied"
            continue
        history = [str(e.get("release")) for e in record.data.get("history", [])]
        if to is not None:
            if to == record.release:
                skipped[host] = f"already on {to}"
            elif to in history:
                targets[host] = to
            else:
                skipped[host] = f"{to} is not in this host's history"
            continue
        earlier = [rel for rel in reversed(history) if rel != record.release]
        if earlier:
            targets[host] = earlier[0]
        else:
            skipped[host] = "no earlier release"
    return targets, skipped


def fetch_release_records(
    inventory: Mapping[str, Any],
    config_root: str,
    targets: Mapping[str, str],
    *,
    forks: int = DEFAULT_FORKS,
) -> dict[str, HostRecord]:
    from tfsconf.apply import ansible

    result = ansible.run(
        "fetch_release.yml",
        inventory=inventory,
        extravars={"tfsconf_config_root": config_root, "tfsconf_release": dict(targets)},
        limit=sorted(targets),
        progress=None,
        forks=forks,
    )
    out: dict[str, HostRecord] = {}
    for host, release in sorted(targets.items()):
        failure = result.first_failure(host)
        raw = str(result.results.get(host, {}).get("release_record", ""))
        if failure is not None or not raw:
            why = failure.message if failure else "no record"
            raise UserError(
                f"{host}: the record of release {release} is not on the host ({why}); "
                "only the newest keep_releases releases are kept"
            )
        data = json.loads(base64.b64decode(raw))
        out[host] = HostRecord(host, data)
    return out


def _by_server(record: HostRecord) -> dict[str, dict[str, str]]:
    servers = record.data.get("manifest", {}).get("servers", [])
    out: dict[str, dict[str, str]] = {s: {} for s in servers}
    for rel, text in record.files.items():
        server, slash, rest = rel.partition("/")
        if slash and server in out:
            out[server][rest] = text
    return out


def rollback_work(
    env: r.Environment,
    current: HostRecord,
    target: HostRecord,
    *,
    health_timeout: float | None = None,
) -> dict[str, Any]:
    from tfsconf.plan import configs

    host = next((h for h in env.hosts if h.name == current.host), None)
    if host is None:
        raise UserError(f"host {current.host} is not in the spec")
    group = next(g for g in env.groups if g.name == host.group)
    old = _by_server(current)
    new = _by_server(target)
    release = target.release
    manifest = target.data.get("manifest", {})
    address = str(manifest.get("address") or host.address)
    old_models = {
        m: list(v.get("versions", [])) for m, v in (current.data.get("models") or {}).items()
    }
    new_models = {
        m: list(v.get("versions", [])) for m, v in (target.data.get("models") or {}).items()
    }
    timeout = health_timeout or group.rollout.health_timeout_seconds
    activations: list[dict[str, Any]] = []
    # servers the target release lacks stop first: their ports may go to another server
    for name in sorted(set(old) | set(new), key=lambda n: (n in new, n)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        old_config = (before or {}).get("models.config")
        new_config = (after or {}).get("models.config")
        flags = (after or before or {}).get("server.flags")
        phases: list[dict[str, Any]] = []
        if before is None:
            kind = "create"
        elif after is None:
            kind = "remove"
        elif {k: v for k, v in before.items() if k != "models.config"} == {
            k: v for k, v in after.items() if k != "models.config"
        }:
            kind = "hot-reload"
            assert old_config is not None and new_config is not None
            steps, _counts = configs.phases(old_config.encode(), new_config.encode(), name)
            for phase in steps or ():
                expect: dict[str, list[int]] = {}
                for model, version in phase.wait_for:
                    expect.setdefault(model, []).append(version)
                phases.append({"models_config": phase.models_config, "expect": expect})
            if not phases:
                phases.append({"models_config": new_config, "expect": {}})
        else:
            kind = "restart"
        activations.append(
            {
                "server": name,
                "kind": kind,
                "address": address,
                "grpc_port": grpc_port_of(flags, name),
                "reload_deadline": reload_deadline_of(flags, timeout),
                "config_poll_seconds": config_poll_seconds_of(flags),
                "unit": f"tfserving-{name}.service",
                "phases": phases,
                "expect": _policy_expect(new_config, new_models) if new_config else {},
                "smoke": [],
                "previous": {
                    "release": current.release if before is not None else None,
                    "models_config": old_config,
                    "expect": _policy_expect(old_config, old_models) if old_config else {},
                },
            }
        )
    record_doc = dict(target.data)
    record_doc.pop("history", None)
    record_doc["applied_at"] = now()
    record_doc["operator"] = operator()
    images = dict(target.data.get("images") or {})
    image_files = dict(target.data.get("image_files") or {})
    env_images = {i.name: i for i in env.images}
    return {
        "kind": RECORD_KIND,
        "release": release,
        "config_root": env.config_root,
        "model_root": env.model_root,
        "runtime": str(manifest.get("runtime") or host.runtime),
        "base_paths": sorted(
            {str(v.get("base_path")) for v in (target.data.get("models") or {}).values()}
        ),
        "versions_present": [
            {"base_path": str(v.get("base_path")), "version": int(version)}
            for v in (target.data.get("models") or {}).values()
            for version in v.get("versions", [])
        ],
        "need_bytes": 0,
        "gpus": [],
        "stage": new,
        "targets": {**dict.fromkeys(new, release), **dict.fromkeys(set(old) - set(new))},
        "rollback_targets": {s: current.release for s in old} | dict.fromkeys(set(new) - set(old)),
        "removed_servers": sorted(set(old) - set(new)),
        "syncs": [],
        "sync": {"retries": 0, "bwlimit": 0},
        "batching": placements(
            target.files,
            target.data.get("models") or {},
            current.files,
            current.data.get("models") or {},
        ),
        "batching_revert": placements(
            current.files,
            current.data.get("models") or {},
            target.files,
            target.data.get("models") or {},
        ),
        "images": [
            {
                "name": name,
                "ref": ref,
                "registry": bool(env_images[name].registry) if name in env_images else False,
                "dockerfile": image_files.get(name, ""),
            }
            for name, ref in sorted(images.items())
        ],
        "activations": activations,
        "record": record_doc,
        "keep_releases": group.rollout.keep_releases,
        "timeout": timeout,
    }
