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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from tfsconf.apply import activations as act
from tfsconf.apply.ansible import DEFAULT_FORKS
from tfsconf.apply.batching import placements
from tfsconf.apply.model_work import resolved_of
from tfsconf.apply.record import HostRecord, now, operator
from tfsconf.compile.artifacts import MODELS_CONFIG
from tfsconf.contracts import Activation, ActivationKind, HostWork, Push, Record, WorkKind
from tfsconf.errors import UserError
from tfsconf.resolve import model as r

if TYPE_CHECKING:
    from tfsconf.apply.lock import BreakMode
    from tfsconf.apply.report import ApplyReport

RECORD_KIND: WorkKind = "rollback"


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
    forks: int | None = DEFAULT_FORKS,
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
        out[host] = HostRecord(host, cast(Record, data))
    return out


def _by_server(record: HostRecord) -> dict[str, dict[str, str]]:
    servers = record.data.get("manifest", {}).get("servers", [])
    out: dict[str, dict[str, str]] = {s: {} for s in servers}
    for rel, text in record.files.items():
        server, slash, rest = rel.partition("/")
        if slash and server in out:
            out[server][rest] = text
    return out


def _change(
    name: str, before: Mapping[str, str] | None, after: Mapping[str, str] | None
) -> tuple[ActivationKind, list[Push]]:
    """How a server goes from its current files to the target's: only models.config
    differs -> a hot reload (phased when a label moves), else a restart."""
    from tfsconf.plan import configs

    if before is None:
        return "create", []
    if after is None:
        return "remove", []
    config = MODELS_CONFIG.path()
    if {k: v for k, v in before.items() if k != config} != {
        k: v for k, v in after.items() if k != config
    }:
        return "restart", []
    old_config, new_config = before[config], after[config]
    steps, _counts = configs.phases(old_config.encode(), new_config.encode(), name)
    return "hot-reload", act.pushes(steps, new_config)


def rollback_activations(
    current: HostRecord, target: HostRecord, address: str, timeout: float
) -> list[Activation]:
    old = _by_server(current)
    new = _by_server(target)
    old_models = resolved_of(current.data.get("models") or {})
    new_models = resolved_of(target.data.get("models") or {})
    out: list[Activation] = []
    # servers the target release lacks stop first: their ports may go to another server
    for name in sorted(set(old) | set(new), key=lambda n: (n in new, n)):
        before, after = old.get(name), new.get(name)
        if before == after:
            continue
        kind, phases = _change(name, before, after)
        out.append(
            act.activation(
                server=name,
                kind=kind,
                address=address,
                files=after if after is not None else before or {},
                resolved=new_models,
                timeout=timeout,
                before=act.previous(
                    current.release if before is not None else None, before or {}, old_models
                ),
                phases=phases,
            )
        )
    return out


def rollback_work(
    env: r.Environment,
    current: HostRecord,
    target: HostRecord,
    *,
    health_timeout: float | None = None,
) -> HostWork:
    """The work that takes a host from its current release back to `target`; over 60
    lines because the work is one literal of every HostWork key (mypy checks them)."""
    # long: one literal of every HostWork key, like apply's (mypy checks each key).
    host = next((h for h in env.hosts if h.name == current.host), None)
    if host is None:
        raise UserError(f"host {current.host} is not in the spec")
    group = next(g for g in env.groups if g.name == host.group)
    old = _by_server(current)
    new = _by_server(target)
    release = target.release
    manifest = target.data.get("manifest", {})
    address = str(manifest.get("address") or host.address)
    timeout = health_timeout or group.rollout.health_timeout_seconds
    record_doc = cast(Record, {k: v for k, v in target.data.items() if k != "history"})
    record_doc["applied_at"] = now()
    record_doc["operator"] = operator()
    images = dict(target.data.get("images") or {})
    image_files = dict(target.data.get("image_files") or {})
    env_images = {i.name: i for i in env.images}
    target_models = target.data.get("models") or {}
    current_models = current.data.get("models") or {}
    # one literal of the whole HostWork, like apply's (work.py): mypy checks every key
    return {
        "kind": RECORD_KIND,
        "release": release,
        "config_root": env.config_root,
        "model_root": env.model_root,
        "runtime": str(manifest.get("runtime") or host.runtime),
        "base_paths": sorted({str(v.get("base_path")) for v in target_models.values()}),
        "versions_present": [
            {"base_path": str(v.get("base_path")), "version": int(version)}
            for v in target_models.values()
            for version in v.get("versions", [])
        ],
        "need_bytes": 0,
        "gpus": [],
        "preload": [],
        "tfserving_version": "",
        "stage": new,
        "targets": {**dict.fromkeys(new, release), **dict.fromkeys(set(old) - set(new))},
        "rollback_targets": {s: current.release for s in old} | dict.fromkeys(set(new) - set(old)),
        "removed_servers": sorted(set(old) - set(new)),
        "syncs": [],
        "sync": {"retries": 0, "bwlimit": 0},
        "batching": placements(target.files, target_models, current.files, current_models),
        "batching_revert": placements(current.files, current_models, target.files, target_models),
        "images": [
            {
                "name": name,
                "ref": ref,
                "registry": bool(env_images[name].registry) if name in env_images else False,
                "dockerfile": image_files.get(name, ""),
            }
            for name, ref in sorted(images.items())
        ],
        "activations": rollback_activations(current, target, address, timeout),
        "record": record_doc,
        "keep_releases": group.rollout.keep_releases,
        "timeout": timeout,
    }


def run_rollback(
    env: r.Environment,
    inventory: Mapping[str, Any],
    records: Mapping[str, HostRecord | None],
    targets: Mapping[str, str],
    skipped: Mapping[str, str],
    *,
    break_mode: BreakMode = "none",
    known_locks: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Callable[[str, str, str], None] | None = None,
    forks: int | None = DEFAULT_FORKS,
) -> ApplyReport:
    """Put the `targets` hosts (host -> release) back on their releases, under the host
    locks, as read in `records`; refused as stale (nothing changed) when a host's record
    moved since. `skipped` hosts are reported unchanged."""
    import time
    import uuid

    from tfsconf.apply.report import ApplyReport, HostReport
    from tfsconf.apply.rollout import locked_rollout

    started = time.monotonic()
    applied = {h: rec for h, rec in records.items() if rec is not None}
    report = ApplyReport(env.name, uuid.uuid4().hex[:12])
    groups = {h.name: h.group for h in env.hosts}
    for host in sorted(skipped):
        record = records.get(host)
        report.hosts.append(
            HostReport(host, groups[host], "unchanged", record.release if record else None)
        )

    def release_of(record: HostRecord | None) -> str | None:
        return record.release if record is not None else None

    def prepare(fresh: Mapping[str, HostRecord | None]) -> dict[str, HostWork]:
        moved = sorted(h for h in records if release_of(fresh.get(h)) != release_of(records[h]))
        if moved:
            raise UserError(
                "stale rollback: " + ", ".join(moved) + " changed since the rollback was "
                "shown; nothing was changed",
                hint="run rollback again and review it",
            )
        fetched = fetch_release_records(inventory, env.config_root, targets, forks=forks)
        return {h: rollback_work(env, applied[h], fetched[h]) for h in sorted(targets)}

    locked_rollout(
        env,
        inventory,
        report,
        prepare,
        break_mode=break_mode,
        known_locks=known_locks,
        progress=progress,
        forks=forks,
    )
    report.seconds = time.monotonic() - started
    return report
