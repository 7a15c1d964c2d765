"""Desired state against current state: per host and server, what happens and what it costs.

The planner compares two states of the same shape (see state.py) artifact by artifact, so
it treats a git base, an old bundle and the hosts' last-applied records alike. What each
artifact costs follows from when TF Serving reads it (DOMAIN.md): only models.config
reloads live; flags, batching, monitoring and the unit need a restart; a new image needs
a rebuild first. Model versions to fetch come from the desired spec, since a version is
immutable once published: a changed source does not re-fetch an existing version.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from google.protobuf import text_format

from tfsconf.errors import UserError
from tfsconf.plan import configs
from tfsconf.plan.model import (
    Action,
    ActionKind,
    Change,
    FileDiff,
    HostPlan,
    ImageChange,
    ModelChange,
    Phase,
    Plan,
    Risk,
    ServerPlan,
    text_id,
)
from tfsconf.plan.state import HostState, ServerState, State
from tfsconf.resolve import model as r
from tfsconf.resolve.flags import SESSION_CONFIG

MODELS_CONFIG = "models.config"
FLAGS = "server.flags"
WARMUP = "warmup.json"
BATCHING = "batching_parameters.txt"
MONITORING = "monitoring.config"


@dataclass
class _Diffs:
    """Unified diffs, computed once per distinct (old, new) pair and stored by id."""

    texts: dict[str, str] = field(default_factory=dict)
    _ids: dict[tuple[bytes | None, bytes | None], str] = field(default_factory=dict)

    def file(self, path: str, old: bytes | None, new: bytes | None) -> FileDiff:
        status = "added" if old is None else "removed" if new is None else "changed"
        key = (old, new)
        found = self._ids.get(key)
        if found is None:
            text = _unified(path, old, new)
            found = text_id(text)
            self.texts[found] = text
            self._ids[key] = found
        return FileDiff(path, status, found)  # type: ignore[arg-type]


_CONTEXT = 3
_HUNK = re.compile(r"^@@ -(\d+)((?:,\d+)?) \+(\d+)((?:,\d+)?) @@$")


def _unified(path: str, old: bytes | None, new: bytes | None) -> str:
    try:
        before = old.decode("utf-8").splitlines(keepends=True) if old is not None else []
        after = new.decode("utf-8").splitlines(keepends=True) if new is not None else []
    except UnicodeDecodeError:
        return "Binary files differ\n"
    # Lines both sides share at the ends, beyond the context, are cut before difflib runs
    # (its matcher is quadratic-ish and most of a changed file is unchanged), then the hunk
    # headers are shifted back: the text is the diff of the whole files.
    shortest = min(len(before), len(after))
    head = 0
    while head < shortest and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < shortest - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    start = max(0, head - _CONTEXT)
    cut_tail = max(0, tail - _CONTEXT)
    lines = difflib.unified_diff(
        before[start : len(before) - cut_tail],
        after[start : len(after) - cut_tail],
        # the path is left out of the headers: one text serves every host with this change
        "/dev/null" if old is None else "old",
        "/dev/null" if new is None else "new",
        n=_CONTEXT,
    )
    out: list[str] = []
    for raw in lines:
        line = _shift_hunk(raw, start) if start and raw.startswith("@@") else raw
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def _shift_hunk(line: str, offset: int) -> str:
    match = _HUNK.match(line.rstrip("\n"))
    if match is None:
        return line
    old_start, old_len, new_start, new_len = match.groups()
    return f"@@ -{int(old_start) + offset}{old_len} +{int(new_start) + offset}{new_len} @@\n"


def _changed(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[str]:
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def _flags(data: bytes | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (data or b"").decode("utf-8", "replace").splitlines():
        if line.startswith("--"):
            name, _, value = line[2:].partition("=")
            out[name] = value
    return out


def _flag_reasons(old: bytes | None, new: bytes | None) -> list[str]:
    out: list[str] = []
    for name, a, b in configs.changes(_flags(old), _flags(new)):
        if a is None:
            out.append(f"flag --{name}={b} added")
        elif b is None:
            out.append(f"flag --{name} removed (was {a})")
        else:
            out.append(f"flag --{name}: {a} -> {b}")
    return out


def _proto_fields(data: bytes | None) -> dict[str, str]:
    """Top-level fields of a BatchingParameters text file, wrappers unwrapped."""
    if data is None:
        return {}
    from tfsconf.protos import batching_pb2

    message = batching_pb2.BatchingParameters()
    try:
        text_format.Parse(data.decode("utf-8"), message)
    except (text_format.ParseError, UnicodeDecodeError):
        return {"(unparsable)": data.decode("utf-8", "replace")}
    out: dict[str, str] = {}
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and descriptor.message_type.full_name.startswith(
            "google.protobuf."
        ):
            shown = value.value
        elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            shown = list(value)
        else:
            shown = value
        out[descriptor.name] = str(shown).lower() if isinstance(shown, bool) else str(shown)
    return out


def _batching_reasons(what: str, old: bytes | None, new: bytes | None) -> list[str]:
    if old is None:
        return [f"{what} added"]
    if new is None:
        return [f"{what} removed"]
    changed = [
        f"{name} {a or 'unset'} -> {b or 'unset'}"
        for name, a, b in configs.changes(_proto_fields(old), _proto_fields(new))
    ]
    return [f"{what}: " + ", ".join(changed)] if changed else [f"{what} changed"]


def _restart_reasons(name: str, old: bytes | None, new: bytes | None) -> list[str]:
    if name == FLAGS:
        return _flag_reasons(old, new) or ["server flags changed"]
    if name == BATCHING:
        return _batching_reasons("batching parameters (read only at start)", old, new)
    if name.startswith("models/") and name.endswith("/batching_params.pbtxt"):
        model = name.split("/")[1]
        return _batching_reasons(
            f"per-model batching of {model} (written into each of its versions; a loaded "
            "version reads it only when it loads again)",
            old,
            new,
        )
    if name == MONITORING:
        if old is None:
            return ["monitoring enabled (read only at start)"]
        if new is None:
            return ["monitoring disabled (read only at start)"]
        return ["monitoring config changed (read only at start)"]
    if name == SESSION_CONFIG:
        status = "added" if old is None else "removed" if new is None else "changed"
        return [f"TensorFlow session config {status} (read only at start)"]
    if name.endswith(".service"):
        return [
            f"service unit {name} "
            + ("added" if old is None else "removed" if new is None else "changed")
        ]
    if name == "launch.json":
        return ["launch command changed"]
    return [f"{name} changed"]


def _ports(flags: bytes | None) -> dict[str, str]:
    found = _flags(flags)
    return {name: found[name] for name in ("port", "rest_api_port") if found.get(name, "0") != "0"}


def _batching_model(name: str) -> str | None:
    """The model of a per-model batching file (models/<m>/batching_params.pbtxt)."""
    parts = name.split("/")
    if len(parts) == 3 and parts[0] == "models" and parts[2] == "batching_params.pbtxt":
        return parts[1]
    return None


def _only_image_changed(
    before: bytes | None, after: bytes | None, old: ServerState, new: ServerState
) -> bool:
    if before is None or after is None or not old.image_ref or not new.image_ref:
        return False
    return before.replace(old.image_ref.encode(), new.image_ref.encode()) == after


def _warmup_tasks(data: bytes | None) -> dict[str, dict[str, object]]:
    if data is None:
        return {}
    try:
        document = json.loads(data)
        return {str(t["base_path"]): t for t in document["tasks"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"warmup.json is malformed: {exc}") from exc


_WARMUP_IGNORED = {"versions", "version_policy", "servers"}


def _warmup_settings(task: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in task.items() if k not in _WARMUP_IGNORED}


class _Planner:
    def __init__(self, current: State, desired: State, env: r.Environment) -> None:
        self.current = current
        self.desired = desired
        self.env = env
        self.diffs = _Diffs()
        self.risks: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.models: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.env_hosts = {host.name: host for host in env.hosts}
        self.served_by: dict[str, list[str]] = defaultdict(list)
        for host in env.hosts:
            for server in host.servers:
                for model in server.models:
                    self.served_by[model.name].append(f"{host.name}/{server.name}")

    def risk(self, kind: str, message: str, address: str) -> None:
        self.risks[(kind, message)].append(address)

    # servers ------------------------------------------------------------------------

    def _entries(self, server: ServerState | None, where: str) -> dict[str, configs.Entry]:
        if server is None or MODELS_CONFIG not in server.files:
            return {}
        return configs.parse(server.files[MODELS_CONFIG], where)[1]

    def server(
        self, host: str, name: str, old: ServerState | None, new: ServerState | None
    ) -> ServerPlan | None:
        address = f"{host}/{name}"
        old_files = old.files if old else {}
        new_files = new.files if new else {}
        changed = _changed(old_files, new_files)
        image_changed = old is not None and new is not None and old.image_ref != new.image_ref
        if not changed and not image_changed:
            return None
        files = tuple(
            self.diffs.file(f"hosts/{host}/{name}/{f}", old_files.get(f), new_files.get(f))
            for f in changed
        )
        old_entries = self._entries(old, address)
        new_entries = self._entries(new, address)
        phase_counts: dict[str, int] = {}
        phases: tuple[Phase, ...] = ()
        reasons: list[str] = []
        activation: ActionKind
        if old is None:
            activation = "create"
            reasons.append(self._describe_new_server(host, name, new))
        elif new is None:
            activation = "remove"
            reasons.append("server no longer in the spec: stopped and disabled")
        else:
            # a per-model batching file comes and goes with its model (it is placed into
            # the version directories, read when a version loads): no restart for that
            moving = (
                (old_entries.keys() ^ new_entries.keys()) if MODELS_CONFIG in changed else set()
            )
            restart = [
                f for f in changed if f != MODELS_CONFIG and _batching_model(f) not in moving
            ]
            runtime_reason = self._runtime_change(host)
            if runtime_reason:
                reasons.append(runtime_reason)
            if image_changed and new.image_ref is not None:
                activation = "rebuild"
                reasons.append(f"image {old.image_ref or '(none)'} -> {new.image_ref}")
            elif restart:
                activation = "restart"
            else:
                activation = "hot-reload"
            for f in restart:
                before, after = old_files.get(f), new_files.get(f)
                if activation == "rebuild" and _only_image_changed(before, after, old, new):
                    continue  # the unit names the new image: already said
                reasons.extend(_restart_reasons(f, before, after))
            if MODELS_CONFIG in changed:
                if activation == "hot-reload":
                    reasons.append(self._reload_reason(host, name))
                    phases, phase_counts = configs.phases(
                        old_files[MODELS_CONFIG], new_files[MODELS_CONFIG], address
                    )
                    self._refuse_phases_under_poll(address, new_files.get(FLAGS), phases)
                else:
                    reasons.append("models.config changed (loaded at start)")
        self._model_changes(address, old_entries, new_entries, phase_counts, activation)
        return ServerPlan(
            host,
            name,
            "create" if old is None else "remove" if new is None else "update",
            activation,
            tuple(reasons),
            phases,
            files,
        )

    def _runtime_change(self, host: str) -> str | None:
        before = self.current.hosts[host].runtime if host in self.current.hosts else ""
        after = self.desired.hosts[host].runtime if host in self.desired.hosts else ""
        if before == after or not before or not after:
            return None
        needs = {
            "docker": "the host needs Docker and the image",
            "native": "the host needs tensorflow_model_server and the allocator library",
            "process": "the host needs tensorflow_model_server; no systemd unit is used",
        }.get(after, "")
        return (
            f"runtime {before} -> {after}: the old service is stopped, the new one started; {needs}"
        )

    def _env_servers(self, host: str) -> tuple[r.Server, ...]:
        """The desired servers of a host, as the spec resolved them."""
        env_host = self.env_hosts.get(host)
        return env_host.servers if env_host else ()

    def _env_server(self, host: str, name: str) -> r.Server | None:
        return next((s for s in self._env_servers(host) if s.name == name), None)

    def _describe_new_server(self, host: str, name: str, new: ServerState | None) -> str:
        server = self._env_server(host, name)
        if server is None:
            return "new server"
        device = f"GPU {server.gpu}" if server.gpu is not None else "CPU"
        text = (
            f"new {server.runtime} server on {device}, gRPC {server.grpc_port}, "
            f"REST {server.rest_port}"
        )
        if new is not None and new.image_ref:
            text += f", image {new.image_ref}"
        return text

    @staticmethod
    def _refuse_phases_under_poll(
        address: str, flags: bytes | None, phases: tuple[Phase, ...]
    ) -> None:
        """Under model_config_reload: poll apply sends no reload RPC (a poll would undo it:
        server_core.cc re-reads the file every model_config_file_poll_wait_seconds), and the
        server only ever reads the release's final models.config, so the intermediate
        configs of a phased label move cannot be pushed one after another."""
        seconds = _flags(flags).get("model_config_file_poll_wait_seconds", "0")
        if not phases or seconds in ("", "0"):
            return
        moves = "; ".join(step for phase in phases[:1] for step in phase.steps)
        raise UserError(
            f"{address}: model_config_reload is poll, and this change moves a version label "
            f"onto a version that is not loaded yet ({moves}): TF Serving refuses a label on a "
            "version that is not AVAILABLE, and the config poll can only apply the final "
            "models.config. Apply it in two changes: first add the version (keep the label), "
            "then, once it is loaded, move the label; or use model_config_reload: rpc"
        )

    def _reload_reason(self, host: str, name: str) -> str:
        server = self._env_server(host, name)
        if server is not None and server.settings.model_config_reload == "poll":
            seconds = server.settings.model_config_file_poll_wait_seconds
            return (
                f"models.config changed: picked up by the config poll within {seconds} s "
                "(no reload RPC: apply waits for the poll)"
            )
        return "models.config changed: reloaded through ModelService/HandleReloadConfigRequest"

    def _model_changes(
        self,
        address: str,
        old: Mapping[str, configs.Entry],
        new: Mapping[str, configs.Entry],
        phase_counts: Mapping[str, int],
        activation: ActionKind,
    ) -> None:
        for model in sorted(old.keys() | new.keys()):
            before, after = old.get(model), new.get(model)
            if before == after:
                continue
            text = configs.describe_change(before, after, phase_counts.get(model, 1))
            self.models[(model, text)].append(address)
            if after is None:
                others = [a for a in self.served_by.get(model, []) if a != address]
                if others:
                    self.risk(
                        "model-removed",
                        f"{model} is removed from these servers but still served elsewhere: "
                        "clients still routed here for it get NOT_FOUND",
                        address,
                    )
                else:
                    self.risk(
                        "model-unloaded",
                        f"{model} is no longer served anywhere in {self.env.name}: every "
                        "client still calling it fails",
                        address,
                    )
                continue
            if before is None:
                continue
            if before.policy.kind == "specific" and after.policy.kind == "specific":
                dropped = sorted(set(before.policy.versions) - set(after.policy.versions))
                if dropped:
                    # a client-facing risk whatever activates the change: a restart unloads
                    # the version just as a reload does
                    self.risk(
                        "version-unloaded",
                        f"{model} version(s) {', '.join(map(str, dropped))} will be unloaded: "
                        "requests that name them by number fail (labels move first)",
                        address,
                    )
            if activation != "hot-reload":
                continue
            if before.base_path != after.base_path:
                self.risk(
                    "base-path-moved",
                    f"{model} moves from {before.base_path} to {after.base_path}: versions "
                    "already loaded keep serving from the old path; TF Serving does not load "
                    "the same version numbers again from the new one until a restart",
                    address,
                )
            if before.policy.kind == "specific" and after.policy.kind == "specific":
                old_v, new_v = set(before.policy.versions), set(after.policy.versions)
                dropped = sorted(old_v - new_v)
                added = sorted(new_v - old_v)
                if added and old_v and not dropped:
                    self.risk(
                        "memory-growth",
                        f"{model}: version(s) {', '.join(map(str, added))} are added beside "
                        f"{', '.join(map(str, sorted(old_v)))}: the server holds all of them "
                        "from now on",
                        address,
                    )
                if added and dropped:
                    self.risk(
                        "memory-peak",
                        f"{model}: version(s) {', '.join(map(str, added))} load while "
                        f"{', '.join(map(str, sorted(old_v)))} are still loaded (TF Serving "
                        "unloads the old only once the new is AVAILABLE): memory peaks at old + "
                        "new during the swap",
                        address,
                    )
            elif before.policy != after.policy:
                self.risk(
                    "memory-peak",
                    f"{model}: version policy {before.policy.describe()} -> "
                    f"{after.policy.describe()}: new versions load before old ones unload; "
                    "memory peaks at old + new",
                    address,
                )

    # hosts ----------------------------------------------------------------------------

    def _port_risks(self, host: str, servers: list[ServerPlan], old: HostState | None) -> None:
        """Ports that change under clients, and ports a new server takes over from a
        removed one (which must stop first: a gap in serving)."""
        if old is None:
            return
        freed: dict[str, str] = {}
        for server in servers:
            if server.change == "remove":
                for port in _ports(old.servers[server.name].files.get(FLAGS)).values():
                    freed[port] = server.name
        desired = self.desired.hosts.get(host)
        for server in servers:
            if desired is None or server.name not in desired.servers:
                continue
            now = _ports(desired.servers[server.name].files.get(FLAGS))
            if server.change == "create":
                taken = sorted({freed[p] for p in now.values() if p in freed})
                if taken:
                    self.risk(
                        "port-reuse",
                        f"new server takes over the ports of {', '.join(taken)}, which stops "
                        "first: nothing serves on those ports until the new one has loaded",
                        server.address,
                    )
            elif server.change == "update" and server.name in old.servers:
                was = _ports(old.servers[server.name].files.get(FLAGS))
                if was != now:
                    moved = ", ".join(
                        f"{flag} {was.get(flag, '-')} -> {now.get(flag, '-')}"
                        for flag in sorted(was.keys() | now.keys())
                        if was.get(flag) != now.get(flag)
                    )
                    self.risk(
                        "ports-changed",
                        f"ports change ({moved}): clients and load balancers must follow",
                        server.address,
                    )

    def host(self, name: str, old: HostState | None, new: HostState | None) -> HostPlan | None:
        if old is not None and new is not None and old.address != new.address:
            self.risk(
                "host-moved",
                f"{name} moves from {old.address} to {new.address}: that machine is set up "
                f"from scratch; nothing is stopped on {old.address}",
                name,
            )
            old = None
        servers: list[ServerPlan] = []
        old_servers = old.servers if old else {}
        new_servers = new.servers if new else {}
        for server in sorted(old_servers.keys() | new_servers.keys()):
            planned = self.server(name, server, old_servers.get(server), new_servers.get(server))
            if planned is not None:
                servers.append(planned)
        # removals first: a new server may need the ports or the GPU a removed one frees
        servers.sort(key=lambda plan: (plan.change != "remove", plan.name))
        self._port_risks(name, servers, old)
        actions = self._model_actions(name, old, new) if new is not None else []
        old_files = old.files if old else {}
        new_files = new.files if new else {}
        files = tuple(
            self.diffs.file(f"hosts/{name}/{f}", old_files.get(f), new_files.get(f))
            for f in _changed(old_files, new_files)
        )
        if not servers and not actions and not files:
            return None
        source = new or old
        assert source is not None
        change: Change = "create" if old is None else "remove" if new is None else "update"
        return HostPlan(
            name=name,
            address=source.address,
            group=source.group,
            change=change,
            servers=tuple(servers),
            actions=tuple(actions),
            files=files,
        )

    def _model_actions(self, host: str, old: HostState | None, new: HostState) -> list[Action]:
        """sync and warmup actions: one per (model, version) on the host, shared by its servers."""
        present: dict[str, set[int]] = defaultdict(set)
        unknown: set[str] = set()
        policies: dict[str, set[configs.Policy]] = defaultdict(set)
        for server in old.servers.values() if old else ():
            for entry in self._entries(server, f"{host}/{server.name}").values():
                policies[entry.base_path].add(entry.policy)
                if entry.policy.kind == "specific":
                    present[entry.base_path].update(entry.policy.versions)
                else:
                    unknown.add(entry.base_path)
        old_warmup = _warmup_tasks(old.files.get(WARMUP) if old else None)
        new_warmup = _warmup_tasks(new.files.get(WARMUP))
        models: dict[str, r.Model] = {}
        for env_server in self._env_servers(host):
            for model in env_server.models:
                models.setdefault(model.base_path, model)
        actions: list[Action] = []
        for base_path, model in sorted(models.items()):
            policy = model.policy
            prefix = f"{host}/models/{model.name}"
            source = f"fetch from {model.source.kind} {model.source.location}"
            if model.source.auth is not None:  # the variable's name, never its value
                source += f" (credentials from ${model.source.auth.secret_env})"
            verify = f"verify {model.source.checksums}, publish by rename into {base_path}"
            warmup = new_warmup.get(base_path)
            synced: list[int] = []
            synced_by_policy = False
            if policy.kind == "specific":
                missing = [v for v in policy.versions if v not in present[base_path]]
                for version in missing:
                    reasons = [source, verify]
                    if base_path in unknown:
                        reasons.append(
                            "may already be on disk (served under a latest/all policy): "
                            "files whose checksum matches are skipped"
                        )
                    actions.append(
                        Action(
                            "sync", f"{prefix}/{version}", tuple(reasons), model.name, version, 1
                        )
                    )
                    synced.append(version)
            else:
                wanted = configs.Policy(policy.kind, policy.num_versions)
                if wanted not in policies.get(base_path, set()):
                    count = policy.num_versions if policy.kind == "latest" else 1
                    reason = (
                        f"the source's {wanted.describe()} version(s), resolved at apply time"
                        if policy.kind == "latest"
                        else "every version of the source, resolved at apply time"
                    )
                    actions.append(
                        Action("sync", prefix, (reason, source, verify), model.name, None, count)
                    )
                    synced_by_policy = True
            if warmup is not None:
                what = (
                    f"generate {warmup['records']} records from {warmup['samples']} "
                    f"into <version>/{warmup['output']}"
                )
                for version in synced:
                    actions.append(
                        Action("warmup", f"{prefix}/{version}", (what,), model.name, version, 1)
                    )
                latest_count = policy.num_versions if policy.kind == "latest" else 1
                if synced_by_policy:
                    actions.append(
                        Action(
                            "warmup",
                            prefix,
                            (what + " for each synced version",),
                            model.name,
                            None,
                            latest_count,
                        )
                    )
                before = old_warmup.get(base_path)
                enabled = before is None and base_path in policies  # served before, no warmup
                if enabled or (
                    before is not None and _warmup_settings(before) != _warmup_settings(warmup)
                ):
                    kept = [
                        v
                        for v in (policy.versions if policy.kind == "specific" else ())
                        if v not in synced
                    ]
                    if before is None:
                        reason = f"warmup enabled; {what}"
                    else:
                        changed_keys = [
                            key
                            for key, _, _ in configs.changes(
                                _warmup_settings(before), _warmup_settings(warmup)
                            )
                        ]
                        reason = f"warmup settings changed ({', '.join(changed_keys)}); {what}"
                    for version in kept:
                        actions.append(
                            Action(
                                "warmup", f"{prefix}/{version}", (reason,), model.name, version, 1
                            )
                        )
                    if policy.kind != "specific" and not synced_by_policy:
                        actions.append(
                            Action(
                                "warmup",
                                prefix,
                                (reason + " for every served version",),
                                model.name,
                                None,
                                latest_count,
                            )
                        )
                    self.risk(
                        "warmup-not-reloaded",
                        f"{model.name}: a regenerated warmup file is read only when a version "
                        "loads: versions already loaded keep their warmup until a restart",
                        host,
                    )
        order = {"sync": 0, "warmup": 1}
        actions.sort(key=lambda a: (a.model or "", a.version or -1, order[a.kind], a.address))
        return actions

    # environment -----------------------------------------------------------------------

    def images(self) -> list[ImageChange]:
        out: list[ImageChange] = []
        old, new = self.current.images, self.desired.images
        for name in sorted(old.keys() | new.keys()):
            before, after = old.get(name), new.get(name)
            if (
                before is not None
                and after is not None
                and before.dockerfile == after.dockerfile
                and before.ref == after.ref
            ):
                continue
            path = f"images/{name}/Dockerfile"
            file = self.diffs.file(
                path, before.dockerfile if before else None, after.dockerfile if after else None
            )
            change: Change = "create" if before is None else "remove" if after is None else "update"
            out.append(
                ImageChange(
                    name, change, before.ref if before else None, after.ref if after else None, file
                )
            )
        return out

    def group_risks(self, hosts: list[HostPlan]) -> None:
        restarting: dict[str, set[str]] = defaultdict(set)
        for host in hosts:
            if host.change != "update":
                continue
            if any(s.activation in ("restart", "rebuild") for s in host.servers):
                restarting[host.group].add(host.name)
        for group in self.env.groups:
            members = [h for h in group.hosts if h in self.current.hosts]
            hit = restarting.get(group.name, set())
            if not members or set(members) != hit:
                continue
            step = step_size(group.rollout.step, len(group.hosts))
            if step >= len(members):
                self.risk(
                    "group-restart",
                    f"every host of group {group.name} restarts in one rollout step (step "
                    f"{group.rollout.step} of {len(group.hosts)} host(s)): the group serves "
                    "nothing until the restart finishes",
                    group.name,
                )


def step_size(step: int | str, hosts: int) -> int:
    """Hosts per rollout step, exactly as Ansible's `serial` computes it: a percentage is
    int((pct / 100.0) * hosts) in floating point, at least one host."""
    if isinstance(step, int):
        return min(step, hosts)
    return min(hosts, int((int(step.rstrip("%")) / 100.0) * hosts) or 1)


def make_plan(
    current: State,
    desired: State,
    env: r.Environment,
    *,
    spec: str,
) -> Plan:
    """The plan that turns `current` into `desired` (the spec `env` compiled to)."""
    if current.environment is not None and current.environment != env.name:
        raise UserError(
            f"the current state is environment {current.environment!r} but {spec} is "
            f"environment {env.name!r}: compare a spec with its own state"
        )
    planner = _Planner(current, desired, env)
    hosts: list[HostPlan] = []
    for name in sorted(current.hosts.keys() | desired.hosts.keys()):
        planned = planner.host(name, current.hosts.get(name), desired.hosts.get(name))
        if planned is not None:
            hosts.append(planned)
    images = planner.images()
    planner.group_risks(hosts)
    risks = tuple(
        Risk(kind, message, tuple(sorted(set(addresses))))
        for (kind, message), addresses in sorted(planner.risks.items())
    )
    models = tuple(
        ModelChange(model, text, tuple(sorted(addresses)))
        for (model, text), addresses in sorted(planner.models.items())
    )
    used = (
        {f.diff for h in hosts for f in h.files}
        | {f.diff for h in hosts for s in h.servers for f in s.files}
        | {i.file.diff for i in images if i.file}
    )
    return Plan(
        environment=env.name,
        spec=spec,
        spec_sha256=env.spec_sha256,
        desired_fingerprint=desired.fingerprint,
        state=current.origin,
        state_fingerprint=current.fingerprint,
        hosts=tuple(hosts),
        images=tuple(images),
        models=models,
        risks=risks,
        diffs={k: v for k, v in planner.diffs.texts.items() if k in used},
    )
