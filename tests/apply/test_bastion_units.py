"""Jump hosts and gRPC over SSH without a test host: the spec field as resolved, the
inventory's SSH options and gRPC route, refused host variables, the forward's command line,
and real forwards (ssh to an sshd on a loopback port): one that cannot open, one that
carries a connection and ends with its block, one whose opener is killed."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tfsconf.apply.inventory import GRPC_SSH, build_inventory, load_host_vars
from tfsconf.apply.tunnel import TunnelError, forward_argv, grpc_endpoints, route_of
from tfsconf.errors import SpecError
from tfsconf.validate.load import load_environment

SPEC = """\
environment: test
tfserving_version: "2.18.0"
connection:
  user: deploy
  private_key_file: /etc/tfsconf/id_ed25519
  known_hosts_file: /etc/tfsconf/known_hosts
  jump_host: {address: bastion.example.com}
host_groups:
  behind:
    hosts:
      - {name: b1, address: 10.1.0.1}
      - name: b2
        address: 10.1.0.2
        connection: {jump_host: {address: "fe80::1%eth0", port: 2222}}
  open:
    connection: {grpc_via: direct}
    hosts:
      - {name: o1, address: 10.2.0.1}
  plain:
    hosts:
      - name: p1
        address: 10.3.0.1
        connection: {grpc_via: ssh, user: ops}
servers:
  - {name: b, group: behind, models: [m]}
  - {name: o, group: open, models: [m]}
  - {name: p, group: plain, models: [m]}
models:
  - name: m
    base_path: /srv/tfserving/models/m
    source: {kind: local, path: /mnt/models/m}
"""
NO_JUMP = SPEC.replace("  jump_host: {address: bastion.example.com}\n", "").replace(
    'connection: {jump_host: {address: "fe80::1%eth0", port: 2222}}', "connection: {port: 22}"
)


def _env(tmp_path: Path, text: str = SPEC) -> Any:
    path = tmp_path / "env.yaml"
    path.write_text(text)
    return load_environment(path).resolved


def test_jump_host_resolves_with_defaults_and_implies_grpc_over_ssh(tmp_path: Path) -> None:
    hosts = {h.name: h.connection for h in _env(tmp_path).hosts}
    b1 = hosts["b1"]
    assert b1.jump_host is not None
    assert (b1.jump_host.address, b1.jump_host.user, b1.jump_host.port) == (
        "bastion.example.com",
        "deploy",  # the connection's user
        22,
    )
    assert b1.grpc_via == "ssh"
    # a host's jump_host replaces the environment's whole (no address from one, port from
    # the other)
    b2 = hosts["b2"].jump_host
    assert b2 is not None and (b2.address, b2.user, b2.port) == ("fe80::1%eth0", "deploy", 2222)
    assert hosts["o1"].grpc_via == "direct" and hosts["o1"].jump_host is not None
    plain = {h.name: h.connection for h in _env(tmp_path, NO_JUMP).hosts}
    assert plain["o1"].grpc_via == "direct" and plain["o1"].jump_host is None
    assert plain["b1"].grpc_via == "direct"  # no bastion: gRPC goes direct unless asked
    assert plain["p1"].grpc_via == "ssh" and plain["p1"].jump_host is None


def _proxy_command(common_args: str) -> list[str]:
    """The ProxyCommand as Ansible passes it to ssh (shlex) and ssh's /bin/sh splits it."""
    words = shlex.split(common_args)
    found = [w.split("=", 1)[1] for w in words if w.startswith("ProxyCommand=")]
    assert len(found) == 1, words
    return shlex.split(found[0])


def test_both_hops_check_host_keys_against_the_spec_known_hosts(tmp_path: Path) -> None:
    hosts = build_inventory(_env(tmp_path))["all"]["hosts"]
    args = hosts["b1"]["ansible_ssh_common_args"]
    words = shlex.split(args)
    assert words[:4] == [
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=/etc/tfsconf/known_hosts",
    ]
    assert _proxy_command(args) == [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "UserKnownHostsFile=/etc/tfsconf/known_hosts",
        "-i",
        "/etc/tfsconf/id_ed25519",
        "-l",
        "deploy",
        "-p",
        "22",
        "-W",
        "[%h]:%p",
        "--",
        "bastion.example.com",
    ]
    # ssh expands % in a ProxyCommand: the zone id's % is written %%
    assert _proxy_command(hosts["b2"]["ansible_ssh_common_args"])[-6:] == [
        "-p",
        "2222",
        "-W",
        "[%h]:%p",
        "--",
        "fe80::1%%eth0",
    ]
    assert (
        "ProxyCommand"
        not in build_inventory(_env(tmp_path, NO_JUMP))["all"]["hosts"]["b1"][
            "ansible_ssh_common_args"
        ]
    )


def test_grpc_route_follows_the_inventory_entry(tmp_path: Path) -> None:
    env = _env(tmp_path)
    variables = tmp_path / "vars.yaml"
    variables.write_text("b1: {ansible_user: root, ansible_port: 2200}\n")
    inventory = build_inventory(env, load_host_vars(variables, env))
    route = route_of(inventory, "b1")
    assert route is not None and route["host"] == "10.1.0.1"
    options = list(route["options"])
    # the same options as Ansible's connection, then where and as whom
    common = shlex.split(inventory["all"]["hosts"]["b1"]["ansible_ssh_common_args"])
    assert options == ["ssh", *common, "-p", "2200", "-l", "root", "-i", "/etc/tfsconf/id_ed25519"]
    assert route_of(inventory, "o1") is None  # grpc_via: direct
    assert inventory["all"]["hosts"]["o1"][GRPC_SSH] is None
    plain = route_of(inventory, "p1")
    assert plain is not None and "-l" in plain["options"] and "ops" in plain["options"]
    local = tmp_path / "local.yaml"
    local.write_text("b1: {ansible_connection: local}\n")
    assert route_of(build_inventory(env, load_host_vars(local, env)), "b1") is None


@pytest.mark.parametrize(
    "name",
    [
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_host_key_checking",
        "ansible_ssh_private_key_file",
    ],
)
def test_host_vars_cannot_replace_the_ssh_options(tmp_path: Path, name: str) -> None:
    env = _env(tmp_path)
    variables = tmp_path / "vars.yaml"
    variables.write_text(
        f"all: {{ansible_python_interpreter: /usr/bin/python3}}\nb1:\n  {name}: x\n"
    )
    with pytest.raises(SpecError) as raised:
        load_host_vars(variables, env)
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.render().startswith(f"{variables}:3:3: error: b1.{name}: sets SSH options")


def test_forward_command_line() -> None:
    route = {"options": ["ssh", "-o", "StrictHostKeyChecking=yes", "-p", "22"], "host": "-oX"}
    argv = forward_argv(route, {8500: Path("/t/8500.sock"), 8400: Path("/t/8400.sock")})
    # the route's options first: ssh keeps the first value it reads of an option
    assert argv[:5] == route["options"]
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    for wanted in ("BatchMode=yes", "ExitOnForwardFailure=yes", "ControlPath=none"):
        assert wanted in options
    assert [argv[i + 1] for i, word in enumerate(argv) if word == "-L"] == [
        "/t/8400.sock:127.0.0.1:8400",
        "/t/8500.sock:127.0.0.1:8500",
    ]
    assert "-N" in argv
    assert argv[-2:] == ["--", "-oX"]  # a host name is never read as an option


def _forward_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"tfsconf-grpc-" in cmdline and cmdline.startswith(b"ssh\0"):
                found.append(int(entry.name))
    return found


def test_a_forward_that_cannot_open_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    with socket.socket() as unused:  # a loopback port where nothing listens
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    route = {
        "options": [
            "ssh",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
            "-p",
            str(port),
        ],
        "host": "127.0.0.1",
    }
    before = set(os.listdir(tempfile.gettempdir()))
    with (
        pytest.raises(TunnelError, match=r"127\.0\.0\.1: cannot forward gRPC over SSH: ssh exited"),
        grpc_endpoints("127.0.0.1", [8500], route),
    ):
        pytest.fail("the forward opened")
    assert _forward_processes() == []
    after = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("tfsconf-grpc-")}
    assert after <= before
    with grpc_endpoints("10.9.9.9", [8500, 8501], None) as direct:
        assert {p: (e.address, e.via) for p, e in direct.items()} == {
            8500: ("10.9.9.9", None),
            8501: ("10.9.9.9", None),
        }


SSHD = "/usr/sbin/sshd"


@pytest.fixture
def loopback_route(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real sshd on a loopback port, and the route to it (as build_inventory makes one)."""
    for name in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)],
            check=True,
            timeout=30,
        )
    port = _free_port()
    host_key = (tmp_path / "host.pub").read_text().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key)}\n")
    (tmp_path / "authorized_keys").write_text((tmp_path / "client.pub").read_text())
    config = tmp_path / "sshd_config"
    config.write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {tmp_path / 'host'}\n"
        f"PidFile {tmp_path / 'sshd.pid'}\nAuthorizedKeysFile {tmp_path / 'authorized_keys'}\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nUsePAM no\nUseDNS no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nAllowTcpForwarding yes\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    sshd = subprocess.Popen(
        [SSHD, "-D", "-f", str(config), "-E", str(tmp_path / "sshd.log")],
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    if conn.recv(4) == b"SSH-":
                        break
            except OSError:
                assert sshd.poll() is None and time.monotonic() < deadline, "sshd did not start"
                time.sleep(0.02)
        yield {
            "options": [
                "ssh",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                f"UserKnownHostsFile={tmp_path / 'known_hosts'}",
                "-p",
                str(port),
                "-l",
                pwd.getpwuid(os.geteuid()).pw_name,
                "-i",
                str(tmp_path / "client"),
            ],
            "host": "127.0.0.1",
        }
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_forward_reaches_the_far_port_and_ends_with_its_block(
    loopback_route: dict[str, Any],
) -> None:
    with socket.socket() as server:  # the far end: a port on the sshd's host
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        far = server.getsockname()[1]
        with grpc_endpoints("127.0.0.1", [far], loopback_route) as endpoints:
            via = endpoints[far].via
            assert via is not None and (os.stat(via).st_mode & 0o077) == 0
            assert (os.stat(Path(via).parent).st_mode & 0o777) == 0o700
            (pid,) = [p for p in _forward_processes() if via.encode() in _cmdline(p)]
            with socket.socket(socket.AF_UNIX) as near:
                near.connect(via)
                accepted, _ = server.accept()
                with accepted:
                    accepted.sendall(b"through ssh")
                    assert near.recv(64) == b"through ssh"
    assert not _alive(pid)
    assert not Path(via).parent.exists()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_a_forward_ends_when_the_process_that_opened_it_is_killed(
    loopback_route: dict[str, Any],
) -> None:
    opener = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import json, sys, time\n"
            "from tfsconf.apply.tunnel import grpc_endpoints\n"
            "opened = grpc_endpoints('127.0.0.1', [8500], json.loads(sys.argv[1]))\n"
            "print(opened.__enter__()[8500].via, flush=True)\n"
            "time.sleep(60)\n",
            json.dumps(loopback_route),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    via, pid = "", 0
    try:
        assert opener.stdout is not None
        via = opener.stdout.readline().strip()
        (pid,) = [p for p in _forward_processes() if via.encode() in _cmdline(p)]
        opener.kill()  # as an agent killed mid-reload: no finally block runs
        opener.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _alive(pid)
    finally:
        opener.kill()
        opener.wait(timeout=10)
        if pid and _alive(pid):  # the test failed: end the ssh it left
            os.kill(pid, signal.SIGKILL)
        if via:
            shutil.rmtree(Path(via).parent, ignore_errors=True)
