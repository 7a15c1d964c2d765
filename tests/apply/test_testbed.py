"""The test hosts behave like separate machines: real Ansible runs reach them as root, check
their host keys, and see neither each other's files nor each other's network."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ansible_runner
import pytest

from . import testbed
from .conftest import BedFactory
from .testbed import NET_PREFIX, NETNS_DIR, TestBed, TestHost, destroy_netns, netns_pids


def inventory(bed: TestBed, known_hosts: Path | None = None) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    for name, variables in bed.host_vars().items():
        host_vars = {**variables, "ansible_host": bed.host(name).address}
        if bed.mode == "ssh":
            known = known_hosts or bed.known_hosts_file
            host_vars["ansible_ssh_private_key_file"] = str(bed.private_key_file)
            host_vars["ansible_ssh_common_args"] = (
                f"-o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes"
            )
        hosts[name] = host_vars
    return {"all": {"hosts": hosts}}


_runs = itertools.count()
# ansible-playbook comes from this venv even when the venv is not activated.
VENV_PATH = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"


def run_play(
    bed: TestBed,
    tmp_path: Path,
    tasks: list[dict[str, Any]],
    *,
    hosts: str = "all",
    known_hosts: Path | None = None,
) -> ansible_runner.Runner:
    """One play through ansible-runner in a fresh private_data_dir (and fresh ssh sockets)."""
    data_dir = tmp_path / f"run{next(_runs)}"
    data_dir.mkdir()
    play = {"hosts": hosts, "gather_facts": False, "tasks": tasks}
    return ansible_runner.run(
        private_data_dir=str(data_dir),
        playbook=[play],
        inventory=inventory(bed, known_hosts),
        envvars={
            "ANSIBLE_HOST_KEY_CHECKING": "True",
            # a short directory of its own: ssh's control socket path must fit a Unix socket
            # (108 bytes), which a pytest-xdist tmp_path (.../popen-gw0/...) can overrun
            "ANSIBLE_SSH_CONTROL_PATH_DIR": tempfile.mkdtemp(prefix="cp", dir="/tmp"),
            "ANSIBLE_TIMEOUT": "10",
            "PATH": VENV_PATH,
        },
        quiet=True,
        timeout=60,
    )


def ssh(bed: TestBed, host: TestHost, command: str) -> subprocess.CompletedProcess[str]:
    """Plain OpenSSH as Ansible uses it, for checks that need no playbook."""
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(bed.private_key_file),
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={bed.known_hosts_file}",
            "-o",
            "StrictHostKeyChecking=yes",
            f"root@{host.address}",
            command,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def stdout_by_host(runner: ansible_runner.Runner) -> dict[str, str]:
    return {
        event["event_data"]["host"]: event["event_data"]["res"]["stdout"]
        for event in runner.events
        if event["event"] == "runner_on_ok" and "stdout" in event["event_data"]["res"]
    }


def test_a_command_reaches_every_host_as_root(bed: TestBed, tmp_path: Path) -> None:
    runner = run_play(bed, tmp_path, [{"command": "id -u"}])
    assert runner.status == "successful", runner.stdout.read()
    assert stdout_by_host(runner) == {"h1": "0", "h2": "0", "h3": "0"}


def test_a_wrong_host_key_makes_that_host_unreachable(ssh_bed: TestBed, tmp_path: Path) -> None:
    lines = ssh_bed.known_hosts_file.read_text().splitlines()
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "impostor")],
        check=True,
    )
    impostor_key = " ".join((tmp_path / "impostor.pub").read_text().split()[:2])
    h2 = ssh_bed.host("h2")
    wrong = [
        f"{h2.address} {impostor_key}" if line.startswith(h2.address + " ") else line
        for line in lines
    ]
    assert wrong != lines
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("\n".join(wrong) + "\n")

    runner = run_play(ssh_bed, tmp_path, [{"command": "id -u"}], known_hosts=known_hosts)

    assert set(runner.stats["dark"]) == {"h2"}
    assert set(runner.stats["ok"]) == {"h1", "h3"}
    unreachable = [e for e in runner.events if e["event"] == "runner_on_unreachable"]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in unreachable[0]["event_data"]["res"]["msg"]


def test_a_file_written_under_one_root_is_not_under_another(bed: TestBed, tmp_path: Path) -> None:
    tasks = [{"copy": {"content": "h1 only\n", "dest": "{{ tfsconf_root }}/marker"}}]
    runner = run_play(bed, tmp_path, tasks, hosts="h1")
    assert runner.status == "successful", runner.stdout.read()
    h1, h2, h3 = bed.hosts
    assert (h1.root / "marker").read_text() == "h1 only\n"
    assert not (h2.root / "marker").exists()
    assert not (h3.root / "marker").exists()
    assert len({h.root for h in bed.hosts}) == 3
    assert all(h.root.is_dir() for h in bed.hosts)


def test_a_process_on_a_host_sees_only_its_own_address(ssh_bed: TestBed, tmp_path: Path) -> None:
    runner = run_play(
        ssh_bed,
        tmp_path,
        [{"shell": "ip -4 -o addr show; readlink /proc/self/ns/net"}],
        hosts="h2",
    )
    assert runner.status == "successful", runner.stdout.read()
    addr_lines, netns_id = stdout_by_host(runner)["h2"].rsplit("\n", 1)
    addresses = re.findall(r"^\d+: (\S+)\s+inet (\S+)", addr_lines, re.MULTILINE)
    h2 = ssh_bed.host("h2")
    assert addresses == [("lo", "127.0.0.1/8"), ("eth0", f"{h2.address}/30")]
    assert h2.address.startswith(NET_PREFIX + ".")
    assert netns_id == ssh_bed.run_in(h2, ["readlink", "/proc/self/ns/net"]).stdout.strip()
    assert netns_id != os.readlink("/proc/self/ns/net")


def test_host_vars_and_connection_spec(bed: TestBed) -> None:
    variables = bed.host_vars()
    assert sorted(variables) == ["h1", "h2", "h3"]
    for host in bed.hosts:
        env = variables[host.name]["tfsconf_process_env"]
        assert variables[host.name]["tfsconf_root"] == str(host.root)
        assert env["TFS_STANDIN_ROOT"] == str(host.root)
        assert env["TFS_STANDIN_BIND"] == host.address
        wrapper = Path(env["PATH"].split(":")[0]) / "tensorflow_model_server"
        assert os.access(wrapper, os.X_OK)
        assert "tests/standin/tfserving_standin.py" in wrapper.read_text()
    assert bed.spec_hosts() == [{"name": h.name, "address": h.address} for h in bed.hosts]
    spec = bed.connection_spec()
    assert spec["user"] == "root"
    if bed.mode == "ssh":
        assert Path(spec["known_hosts_file"]).read_text().count("ssh-ed25519") == 3
        assert Path(spec["private_key_file"]).is_file()
    else:
        assert set(spec) == {"user"}
        addresses = [h.address for h in bed.hosts]
        assert len(set(addresses)) == 3
        assert all(a.startswith("127.") and not a.startswith("127.0.0.") for a in addresses)


def test_close_kills_host_processes_and_removes_namespaces(make_bed: BedFactory) -> None:
    bed = make_bed("ssh", n_hosts=2)
    h1 = bed.hosts[0]
    sleeper = sleep_in_netns(h1.netns or "")
    bed.close()
    bed.close()
    assert sleeper.wait(timeout=5) == -9
    for host in bed.hosts:
        assert not (NETNS_DIR / (host.netns or "")).exists()
        assert testbed._link_exists(host.netns or "") is False
    assert h1.root.is_dir()


def make_leftover(netns: str, octet: int) -> subprocess.Popen[bytes]:
    """What a crashed session leaves: a namespace, its veth and address, a process inside."""
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(
        ["ip", "link", "add", netns, "type", "veth", "peer", "name", "eth0", "netns", netns],
        check=True,
    )
    subprocess.run(["ip", "addr", "add", f"{NET_PREFIX}.{octet}.1/30", "dev", netns], check=True)
    return sleep_in_netns(netns)


def sleep_in_netns(netns: str) -> subprocess.Popen[bytes]:
    """A process inside the namespace, returned once it is there.

    nsenter joins the namespace after it starts, on a loaded machine a moment later: a
    cleanup that lists the namespace's processes before then would not see it.
    """
    sleeper = subprocess.Popen(["nsenter", f"--net={NETNS_DIR / netns}", "sleep", "300"])
    deadline = time.monotonic() + 10
    while sleeper.pid not in netns_pids(netns):
        if time.monotonic() > deadline:
            sleeper.kill()
            sleeper.wait()
            raise AssertionError(f"the process never entered namespace {netns}")
        time.sleep(0.05)
    return sleeper


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_crashed_session_are_cleaned(
    make_bed: BedFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same name as the next bed's h1 (a crashed earlier session with this pid) and the
    # namespace of a session whose process is gone.
    monkeypatch.setattr(testbed, "_bed_serials", itertools.count(700))
    same_name = f"{testbed.NAME_PREFIX}{os.getpid()}bay1"
    dead_session = f"{testbed.NAME_PREFIX}{dead_pid()}a1"
    octets = testbed._free_octets(2)
    leftovers = [
        (same_name, make_leftover(same_name, octets[0])),
        (dead_session, make_leftover(dead_session, octets[1])),
    ]
    try:
        bed = make_bed("ssh", n_hosts=1)
        assert bed.hosts[0].netns == same_name
        assert ssh(bed, bed.hosts[0], "id -u").stdout == "0\n"
        for name, sleeper in leftovers:
            assert sleeper.wait(timeout=5) == -9
            if name != same_name:
                assert not (NETNS_DIR / name).exists()
    finally:
        for name, sleeper in leftovers:
            sleeper.kill()
            sleeper.wait()
            if name != same_name:
                destroy_netns(name)


def test_close_kills_local_stand_ins_found_by_their_root(make_bed: BedFactory) -> None:
    bed = make_bed("local")
    env = bed.host_vars()["h2"]["tfsconf_process_env"]
    standin = subprocess.Popen(["sleep", "300"], env=env)
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        bed.close()
        assert standin.wait(timeout=5) == -9
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
