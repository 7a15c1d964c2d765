"""What a plan warns about, and each model's change in words, gathered while planning.

A risk names what clients notice (a model no longer served, a version unloaded, ports
that move, a group that restarts at once) or what the hosts must bear (memory peaks while
TF Serving loads a new version beside the old: AvailabilityPreservingPolicy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from tfsconf.compile.artifacts import FLAGS
from tfsconf.compile.explain import flag_values
from tfsconf.plan import configs
from tfsconf.plan.model import ActionKind, HostPlan, ModelChange, Risk, ServerPlan
from tfsconf.plan.state import HostState, State
from tfsconf.resolve import model as r


def step_size(step: int | str, hosts: int) -> int:
    """Hosts per rollout step, exactly as Ansible's `serial` computes it: a percentage is
    int((pct / 100.0) * hosts) in floating point, at least one host."""
    if isinstance(step, int):
        return min(step, hosts)
    return min(hosts, int((int(step.rstrip("%")) / 100.0) * hosts) or 1)


def ports(flags: bytes | None) -> dict[str, str]:
    found = flag_values(flags)
    return {name: found[name] for name in ("port", "rest_api_port") if found.get(name, "0") != "0"}


def _versions(values: list[int] | set[int]) -> str:
    return ", ".join(map(str, sorted(values)))


class Findings:
    """Risks (kind, message -> addresses) and model changes (model, text -> addresses)."""

    def __init__(self, env: r.Environment) -> None:
        self.env = env
        self.risks: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.models: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.served_by: dict[str, list[str]] = defaultdict(list)
        for host in env.hosts:
            for server in host.servers:
                for model in server.models:
                    self.served_by[model.name].append(f"{host.name}/{server.name}")

    def risk(self, kind: str, message: str, address: str) -> None:
        self.risks[(kind, message)].append(address)

    def risk_tuple(self) -> tuple[Risk, ...]:
        return tuple(
            Risk(kind, message, tuple(sorted(set(addresses))))
            for (kind, message), addresses in sorted(self.risks.items())
        )

    def model_tuple(self) -> tuple[ModelChange, ...]:
        return tuple(
            ModelChange(model, text, tuple(sorted(addresses)))
            for (model, text), addresses in sorted(self.models.items())
        )

    # models ---------------------------------------------------------------------------

    def model_changes(
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
                self._removed(model, address)
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
                        f"{model} version(s) {_versions(dropped)} will be unloaded: "
                        "requests that name them by number fail (labels move first)",
                        address,
                    )
            if activation == "hot-reload":
                self._reload_risks(model, before, after, address)

    def _removed(self, model: str, address: str) -> None:
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

    def _reload_risks(
        self, model: str, before: configs.Entry, after: configs.Entry, address: str
    ) -> None:
        """What a live reload costs beside a restart's: the old path and memory."""
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
                    f"{model}: version(s) {_versions(added)} are added beside "
                    f"{_versions(old_v)}: the server holds all of them from now on",
                    address,
                )
            if added and dropped:
                self.risk(
                    "memory-peak",
                    f"{model}: version(s) {_versions(added)} load while "
                    f"{_versions(old_v)} are still loaded (TF Serving "
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

    def port_risks(
        self, servers: list[ServerPlan], old: HostState | None, desired: HostState | None
    ) -> None:
        """Ports that change under clients, and ports a new server takes over from a
        removed one (which must stop first: a gap in serving)."""
        if old is None:
            return
        freed: dict[str, str] = {}
        for server in servers:
            if server.change == "remove":
                for port in ports(old.servers[server.name].files.get(FLAGS.path())).values():
                    freed[port] = server.name
        for server in servers:
            if desired is None or server.name not in desired.servers:
                continue
            now = ports(desired.servers[server.name].files.get(FLAGS.path()))
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
                was = ports(old.servers[server.name].files.get(FLAGS.path()))
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

    def group_risks(self, hosts: list[HostPlan], current: State) -> None:
        restarting: dict[str, set[str]] = defaultdict(set)
        for host in hosts:
            if host.change != "update":
                continue
            if any(s.activation in ("restart", "rebuild") for s in host.servers):
                restarting[host.group].add(host.name)
        for group in self.env.groups:
            members = [h for h in group.hosts if h in current.hosts]
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
