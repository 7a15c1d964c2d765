"""The model actions of a host's plan: which versions to sync and which warmup files to
generate, one action per (model, version) on the host, shared by every server on it.

Versions to fetch come from the desired spec, since a version is immutable once
published: a changed source does not re-fetch an existing version. What the host has is
read from the old models.config (a specific policy names its versions; under latest/all
they are only known to the source) and the old warmup tasks.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tfsconf.compile.artifacts import WARMUP_TASKS
from tfsconf.compile.explain import changes
from tfsconf.errors import UserError
from tfsconf.plan import configs
from tfsconf.plan.model import Action
from tfsconf.plan.state import HostState
from tfsconf.resolve import model as r

RiskSink = Callable[[str, str, str], None]
"""(kind, message, address): records a risk."""

_WARMUP_IGNORED = {"versions", "version_policy", "servers"}


def _warmup_tasks(data: bytes | None) -> dict[str, dict[str, object]]:
    if data is None:
        return {}
    try:
        document = json.loads(data)
        return {str(t["base_path"]): t for t in document["tasks"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{WARMUP_TASKS.path()} is malformed: {exc}") from exc


def _warmup_settings(task: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in task.items() if k not in _WARMUP_IGNORED}


@dataclass
class _OnHost:
    """What the host's old models.config files say is there, per base path."""

    present: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    unknown: set[str] = field(default_factory=set)
    """Base paths served under latest/all: their versions are not named."""
    policies: dict[str, set[configs.Policy]] = field(default_factory=lambda: defaultdict(set))


def _on_host(old_entries: Mapping[str, Mapping[str, configs.Entry]]) -> _OnHost:
    found = _OnHost()
    for entries in old_entries.values():
        for entry in entries.values():
            found.policies[entry.base_path].add(entry.policy)
            if entry.policy.kind == "specific":
                found.present[entry.base_path].update(entry.policy.versions)
            else:
                found.unknown.add(entry.base_path)
    return found


@dataclass
class _ModelSync:
    actions: list[Action]
    synced: list[int]
    """Specific versions synced by this plan."""
    by_policy: bool
    """A latest/all sync, resolved at apply time."""


def _sync(host: str, model: r.Model, on_host: _OnHost) -> _ModelSync:
    policy = model.policy
    base_path = model.base_path
    prefix = f"{host}/models/{model.name}"
    source = f"fetch from {model.source.kind} {model.source.location}"
    if model.source.auth is not None:  # the variable's name, never its value
        source += f" (credentials from ${model.source.auth.secret_env})"
    verify = f"verify {model.source.checksums}, publish by rename into {base_path}"
    out = _ModelSync([], [], False)
    if policy.kind == "specific":
        for version in [v for v in policy.versions if v not in on_host.present[base_path]]:
            reasons = [source, verify]
            if base_path in on_host.unknown:
                reasons.append(
                    "may already be on disk (served under a latest/all policy): "
                    "files whose checksum matches are skipped"
                )
            out.actions.append(
                Action("sync", f"{prefix}/{version}", tuple(reasons), model.name, version, 1)
            )
            out.synced.append(version)
        return out
    wanted = configs.Policy(policy.kind, policy.num_versions)
    if wanted not in on_host.policies.get(base_path, set()):
        count = policy.num_versions if policy.kind == "latest" else 1
        reason = (
            f"the source's {wanted.describe()} version(s), resolved at apply time"
            if policy.kind == "latest"
            else "every version of the source, resolved at apply time"
        )
        out.actions.append(
            Action("sync", prefix, (reason, source, verify), model.name, None, count)
        )
        out.by_policy = True
    return out


def _warmup(
    host: str,
    model: r.Model,
    sync: _ModelSync,
    before: Mapping[str, object] | None,
    warmup: Mapping[str, object],
    served_before: bool,
    risk: RiskSink,
) -> list[Action]:
    """Warmup files for what is synced now, and for versions kept on the host when warmup
    was just enabled (on a model served before) or its settings changed."""
    policy = model.policy
    prefix = f"{host}/models/{model.name}"
    what = (
        f"generate {warmup['records']} records from {warmup['samples']} "
        f"into <version>/{warmup['output']}"
    )
    out = [Action("warmup", f"{prefix}/{v}", (what,), model.name, v, 1) for v in sync.synced]
    latest_count = policy.num_versions if policy.kind == "latest" else 1
    if sync.by_policy:
        reasons = (what + " for each synced version",)
        out.append(Action("warmup", prefix, reasons, model.name, None, latest_count))
    enabled = before is None and served_before
    if not enabled and (before is None or _warmup_settings(before) == _warmup_settings(warmup)):
        return out
    if before is None:
        reason = f"warmup enabled; {what}"
    else:
        changed_keys = [
            key for key, _, _ in changes(_warmup_settings(before), _warmup_settings(warmup))
        ]
        reason = f"warmup settings changed ({', '.join(changed_keys)}); {what}"
    kept = [
        v for v in (policy.versions if policy.kind == "specific" else ()) if v not in sync.synced
    ]
    out.extend(Action("warmup", f"{prefix}/{v}", (reason,), model.name, v, 1) for v in kept)
    if policy.kind != "specific" and not sync.by_policy:
        reasons = (reason + " for every served version",)
        out.append(Action("warmup", prefix, reasons, model.name, None, latest_count))
    risk(
        "warmup-not-reloaded",
        f"{model.name}: a regenerated warmup file is read only when a version "
        "loads: versions already loaded keep their warmup until a restart",
        host,
    )
    return out


def model_actions(
    host: str,
    old: HostState | None,
    new: HostState,
    servers: tuple[r.Server, ...],
    old_entries: Mapping[str, Mapping[str, configs.Entry]],
    risk: RiskSink,
) -> list[Action]:
    """sync and warmup actions of a host; `old_entries` are its old servers' models.config
    entries (server -> model -> entry), `servers` the desired ones as the spec resolved."""
    on_host = _on_host(old_entries)
    old_warmup = _warmup_tasks(old.files.get(WARMUP_TASKS.path()) if old else None)
    new_warmup = _warmup_tasks(new.files.get(WARMUP_TASKS.path()))
    models: dict[str, r.Model] = {}
    for server in servers:
        for model in server.models:
            models.setdefault(model.base_path, model)
    actions: list[Action] = []
    for base_path, model in sorted(models.items()):
        sync = _sync(host, model, on_host)
        actions.extend(sync.actions)
        warmup = new_warmup.get(base_path)
        if warmup is not None:
            served_before = base_path in on_host.policies
            before = old_warmup.get(base_path)
            actions.extend(_warmup(host, model, sync, before, warmup, served_before, risk))
    order = {"sync": 0, "warmup": 1}
    actions.sort(key=lambda a: (a.model or "", a.version or -1, order[a.kind], a.address))
    return actions
