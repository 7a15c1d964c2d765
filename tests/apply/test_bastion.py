"""A fleet only SSH reaches, through a bastion: the controller has no route to the host (its
link to the root namespace is down; its one live link leads to the bastion's namespace), so
Ansible goes through the jump host and every gRPC call of the controller (health gate, smoke
predict, hot reload, status, plan --live) through an SSH forward.

One deploy serves every check (the suite's time is tight): plan --live, apply with a hot
reload, status and rollback."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tfsconf.apply.inventory import build_inventory, load_host_vars
from tfsconf.apply.tunnel import TunnelError, grpc_endpoints, route_of
from tfsconf.validate.load import load_environment

from .conftest import BedFactory
from .scenario import Scenario
from .test_bastion_units import _forward_processes
from .testbed import TestBed, TestHost, _run

pytestmark = pytest.mark.slow


class BehindBastion(TestBed):
    """Hosts whose only working link leads to `bastion`'s namespace: the host keeps its
    address, on a veth pair to the bastion, and its link to the root namespace is down."""

    __test__ = False
    bastion: ClassVar[TestHost]

    def _start_sshds(self) -> None:
        # sshd is listening (on the host's address) when its link is moved
        super()._start_sshds()
        bastion = self.bastion.netns
        for host in self.hosts:
            assert host.netns is not None and bastion is not None
            near = host.address.rsplit(".", 1)[0] + ".1"  # as the root namespace's end
            link = f"b{host.name}"
            veth = ["type", "veth", "peer", "name", "eth1", "netns", host.netns]
            _run(["ip", "-n", bastion, "link", "add", link, *veth])
            _run(["ip", "-n", host.netns, "link", "set", "eth0", "down"])
            _run(["ip", "-n", host.netns, "addr", "del", f"{host.address}/30", "dev", "eth0"])
            _run(["ip", "-n", host.netns, "addr", "add", f"{host.address}/30", "dev", "eth1"])
            _run(["ip", "-n", host.netns, "link", "set", "eth1", "up"])
            _run(["ip", "-n", bastion, "addr", "add", f"{near}/30", "dev", link])
            _run(["ip", "-n", bastion, "link", "set", link, "up"])

    def connection_spec(self) -> dict[str, Any]:
        return {
            **super().connection_spec(),
            "jump_host": {"address": self.bastion.address, "user": "root"},
        }

    def host_vars(self) -> dict[str, dict[str, Any]]:
        values = super().host_vars()
        for host in values.values():
            # as TF Serving binds its ports (server.cc: "0.0.0.0:<port>"); the forward's
            # far end is the host's loopback
            host["tfsconf_process_env"]["TFS_STANDIN_BIND"] = "0.0.0.0"
        return values


def _states(scenario: Scenario, host: str) -> dict[str, str]:
    proc = scenario.tfsconf(
        "status",
        str(scenario.spec_path),
        "--host-vars",
        str(scenario.host_vars_path),
        "--format",
        "json",
    )
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    (entry,) = [h for h in json.loads(proc.stdout)["hosts"] if h["host"] == host]
    (server,) = entry["servers"]
    (model,) = server["models"]
    assert model["error"] == "", model
    return dict(model["states"])


def _apply(scenario: Scenario) -> dict[str, Any]:
    proc, report = scenario.apply()
    assert proc.returncode == 0, proc.stderr[-4000:]
    return report


def test_plan_apply_status_rollback_through_a_bastion(
    make_bed: BedFactory, tmp_path: Path, model_template: Path
) -> None:
    bastion_bed = make_bed("ssh", n_hosts=1)
    behind_class = type("Behind", (BehindBastion,), {"bastion": bastion_bed.hosts[0]})
    (tmp_path / "bed").mkdir()
    with behind_class.create(tmp_path / "bed", "ssh", n_hosts=1) as bed:
        host = bed.hosts[0]
        with pytest.raises(OSError):  # the controller cannot reach the host itself
            socket.create_connection((host.address, 22), timeout=1).close()
        scenario = Scenario(bed, tmp_path / "work", model_template)
        scenario.write_spec([1], step="100%")

        # the bastion's key is checked too, against the spec's known_hosts file
        env = load_environment(scenario.spec_path).resolved
        inventory = build_inventory(env, load_host_vars(scenario.host_vars_path, env))
        route = route_of(inventory, host.name)
        with (
            pytest.raises(TunnelError, match="Host key verification failed"),
            grpc_endpoints(host.address, [8500], route),
        ):
            pytest.fail("the forward opened with the bastion's key unknown")
        with bed.known_hosts_file.open("a") as known:
            known.write(bastion_bed.known_hosts_file.read_text())
        client_key = bed.private_key_file.with_name(bed.private_key_file.name + ".pub")
        with (bastion_bed.private_key_file.parent / "authorized_keys").open("a") as keys:
            keys.write(client_key.read_text())

        _apply(scenario)
        first = scenario.current_release(host.name)
        pid = scenario.server_pid(host.name)

        scenario.write_spec([2], step="100%")
        plan = scenario.tfsconf(
            "plan", str(scenario.spec_path), "--live", "--host-vars", str(scenario.host_vars_path)
        )
        assert plan.returncode == 2, plan.stdout + plan.stderr[-3000:]
        assert "hot-reload" in plan.stdout or "hot reload" in plan.stdout, plan.stdout
        assert "does not answer" not in plan.stdout + plan.stderr  # the live check got through

        report = _apply(scenario)
        assert [h["status"] for h in report["hosts"]] == ["applied"]
        assert scenario.server_pid(host.name) == pid  # a hot reload, over the forward
        assert _states(scenario, host.name).get("2") == "AVAILABLE"

        proc = scenario.tfsconf(
            "rollback",
            str(scenario.spec_path),
            "--yes",
            "--host-vars",
            str(scenario.host_vars_path),
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert scenario.current_release(host.name) == first
        assert scenario.server_pid(host.name) == pid  # its health gate ran over a forward
        # every forward was torn down, and so was every connection through the bastion
        assert _forward_processes() == []
        deadline = time.monotonic() + 5  # Ansible's masters end after tfsconf's "-O exit"
        while _processes_naming(bed.known_hosts_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _processes_naming(bed.known_hosts_file) == []


def _processes_naming(path: Path) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found
