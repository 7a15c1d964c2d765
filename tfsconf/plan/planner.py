"""Desired state against current state: per host and server, what happens and what it costs.

The planner compares two states of the same shape (see state.py) artifact by artifact, so
it treats a git base, an old bundle and the hosts' last-applied records alike. What each
artifact costs follows from when TF Serving reads it, as the artifact registry declares
(compile/artifacts.py): only models.config reloads live; flags, batching, monitoring and
the unit need a restart; a new image needs a rebuild first. The model actions (sync,
warmup) are planned in model_actions.py, the risks in risks.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tfsconf.compile import artifacts
from tfsconf.compile.artifacts import DOCKERFILE, FLAGS, MODELS_CONFIG, Read
from tfsconf.compile.explain import flag_values
from tfsconf.errors import UserError
from tfsconf.kinds import RUNTIMES
from tfsconf.plan import configs
from tfsconf.plan.diffs import Diffs
from tfsconf.plan.model import (
    Action,
    ActionKind,
    Change,
    HostPlan,
    ImageChange,
    Phase,
    Plan,
    ServerPlan,
)
from tfsconf.plan.model_actions import model_actions
from tfsconf.plan.risks import Findings
from tfsconf.plan.state import HostState, ServerState, State
from tfsconf.resolve import model as r

_CONFIG = MODELS_CONFIG.path()
_FLAGS = FLAGS.path()


def _changed(old: Mapping[str, bytes], new: Mapping[str, bytes]) -> list[str]:
    return sorted(name for name in old.keys() | new.keys() if old.get(name) != new.get(name))


def _restart_reasons(rel: str, old: bytes | None, new: bytes | None) -> list[str]:
    found = artifacts.classify(artifacts.SERVER_ARTIFACTS, rel)
    if found is None:  # a state written by another tfsconf may hold files this one lacks
        return [f"{rel} changed"]
    artifact, fields = found
    return artifact.explain(fields, old, new)


def _version_load_model(rel: str) -> str | None:
    """The model of a file read when a version loads (per-model batching), else None."""
    found = artifacts.classify(artifacts.SERVER_ARTIFACTS, rel)
    if found is None or found[0].read is not Read.VERSION_LOAD:
        return None
    return found[1].get("model")


def _only_image_changed(
    before: bytes | None, after: bytes | None, old: ServerState, new: ServerState
) -> bool:
    if before is None or after is None or not old.image_ref or not new.image_ref:
        return False
    return before.replace(old.image_ref.encode(), new.image_ref.encode()) == after


@dataclass
class _Activation:
    kind: ActionKind
    reasons: list[str]
    phases: tuple[Phase, ...] = ()
    phase_counts: Mapping[str, int] | None = None


class _Planner:
    def __init__(self, current: State, desired: State, env: r.Environment) -> None:
        self.current = current
        self.desired = desired
        self.env = env
        self.diffs = Diffs()
        self.findings = Findings(env)
        self.env_hosts = {host.name: host for host in env.hosts}
        self.configs = configs.ModelsConfigs()

    # servers ------------------------------------------------------------------------

    def _entries(self, server: ServerState | None, where: str) -> dict[str, configs.Entry]:
        if server is None or _CONFIG not in server.files:
            return {}
        return self.configs.parse(server.files[_CONFIG], where)[1]

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
            self.diffs.file(
                artifacts.server_path(host, name, f), old_files.get(f), new_files.get(f)
            )
            for f in changed
        )
        old_entries = self._entries(old, address)
        new_entries = self._entries(new, address)
        if old is None:
            activation = _Activation("create", [self._describe_new_server(host, name, new)])
        elif new is None:
            activation = _Activation(
                "remove", ["server no longer in the spec: stopped and disabled"]
            )
        else:
            activation = self._update(host, name, old, new, changed, old_entries, new_entries)
        self.findings.model_changes(
            address, old_entries, new_entries, activation.phase_counts or {}, activation.kind
        )
        return ServerPlan(
            host,
            name,
            "create" if old is None else "remove" if new is None else "update",
            activation.kind,
            tuple(activation.reasons),
            activation.phases,
            files,
        )

    def _update(
        self,
        host: str,
        name: str,
        old: ServerState,
        new: ServerState,
        changed: list[str],
        old_entries: Mapping[str, configs.Entry],
        new_entries: Mapping[str, configs.Entry],
    ) -> _Activation:
        """A server in both states: rebuild, restart or hot reload, and why."""
        address = f"{host}/{name}"
        config_changed = _CONFIG in changed
        # a file read when a version loads comes and goes with its model (it is placed into
        # the version directories): no restart for that
        moving = (old_entries.keys() ^ new_entries.keys()) if config_changed else set()
        restart = [f for f in changed if f != _CONFIG and _version_load_model(f) not in moving]
        reasons: list[str] = []
        runtime_reason = self._runtime_change(host)
        if runtime_reason:
            reasons.append(runtime_reason)
        kind: ActionKind
        if old.image_ref != new.image_ref and new.image_ref is not None:
            kind = "rebuild"
            reasons.append(f"image {old.image_ref or '(none)'} -> {new.image_ref}")
        else:
            kind = "restart" if restart else "hot-reload"
        for f in restart:
            before, after = old.files.get(f), new.files.get(f)
            if kind == "rebuild" and _only_image_changed(before, after, old, new):
                continue  # the unit names the new image: already said
            reasons.extend(_restart_reasons(f, before, after))
        result = _Activation(kind, reasons)
        if config_changed and kind == "hot-reload":
            reasons.append(self._reload_reason(host, name))
            result.phases, result.phase_counts = self.configs.phases(
                old.files[_CONFIG], new.files[_CONFIG], address
            )
            self._refuse_phases_under_poll(address, new.files.get(_FLAGS), result.phases)
        elif config_changed:
            reasons.extend(MODELS_CONFIG.explain({}, old.files[_CONFIG], new.files[_CONFIG]))
        return result

    def _runtime_change(self, host: str) -> str | None:
        before = self.current.hosts[host].runtime if host in self.current.hosts else ""
        after = self.desired.hosts[host].runtime if host in self.desired.hosts else ""
        if before == after or not before or not after:
            return None
        needs = next((t.host_needs for name, t in RUNTIMES.items() if name == after), "")
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
        seconds = flag_values(flags).get("model_config_file_poll_wait_seconds", "0")
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

    # hosts ----------------------------------------------------------------------------

    def host(self, name: str, old: HostState | None, new: HostState | None) -> HostPlan | None:
        if old is not None and new is not None and old.address != new.address:
            self.findings.risk(
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
        self.findings.port_risks(servers, old, self.desired.hosts.get(name))
        actions: list[Action] = []
        if new is not None:
            old_entries = {
                server.name: self._entries(server, f"{name}/{server.name}")
                for server in (old.servers.values() if old else ())
            }
            actions = model_actions(
                name, old, new, self._env_servers(name), old_entries, self.findings.risk
            )
        old_files = old.files if old else {}
        new_files = new.files if new else {}
        files = tuple(
            self.diffs.file(artifacts.host_path(name, f), old_files.get(f), new_files.get(f))
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
            file = self.diffs.file(
                DOCKERFILE.path(image=name),
                before.dockerfile if before else None,
                after.dockerfile if after else None,
            )
            change: Change = "create" if before is None else "remove" if after is None else "update"
            out.append(
                ImageChange(
                    name, change, before.ref if before else None, after.ref if after else None, file
                )
            )
        return out


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
    planner.findings.group_risks(hosts, current)
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
        models=planner.findings.model_tuple(),
        risks=planner.findings.risk_tuple(),
        diffs={k: v for k, v in planner.diffs.texts.items() if k in used},
    )
