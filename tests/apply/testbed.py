"""Test hosts for the apply tests: each host shares nothing with the others.

In "ssh" mode a host is a network namespace with its own veth link, address and sshd, so
Ansible reaches it exactly as it reaches a real machine: root over SSH, a generated key, a
real known_hosts file and strict host key checking. The namespaces share the filesystem,
so every host also gets its own root directory R (the `tfsconf_root` host variable) and
writes nothing outside it. "local" mode keeps the roots but uses ansible_connection=local,
for machines where network namespaces are not allowed.

Addresses: host i of a bed gets its own /30 in NET_PREFIX.<octet>.0/24, the host end being
NET_PREFIX.<octet>.2 and the root-namespace end NET_PREFIX.<octet>.1. Octets are allocated
under a machine-wide lock by looking at which ones the root namespace already holds, so
parallel test sessions on one machine never share an address.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Mode = Literal["ssh", "local"]

REPO_ROOT = Path(__file__).resolve().parents[2]
STANDIN = REPO_ROOT / "tests" / "standin" / "tfserving_standin.py"
HOST_PYTHON = "/usr/bin/python3"
# the hosts' ansible_python_interpreter: HOST_PYTHON with a bytecode cache for the sources of
# Ansible's module payloads (tests/apply/host_python.py says why), shared by every bed
HOST_PYTHON_SHIM = REPO_ROOT / "tests" / "apply" / "host_python.py"
HOST_BYTECODE = Path(os.environ.get("TFSCONF_TEST_CACHE", "/var/cache/tfsconf-test")) / (
    "host-bytecode"
)
SSHD = "/usr/sbin/sshd"
# Every test-bed network uses this /16; nothing else on a test machine should.
NET_PREFIX = "10.233"
# Namespace and root-end veth names: tfsc<pid><bed letters><host number>, e.g. tfsc4821b3
# for h3 of the second bed of pid 4821; a veth name has at most 15 characters.
NAME_PREFIX = "tfsc"
NAME_RE = re.compile(rf"^{NAME_PREFIX}(\d+)[a-z]+\d+$")
IFNAMSIZ = 15
NETNS_DIR = Path("/var/run/netns")
ALLOCATION_LOCK = Path("/run/lock/tfsconf-testbed.lock")
LOCAL_ADDRESS_BASE = 10
DEFAULT_PRELOAD = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
STANDIN_LOAD_SECONDS = "0.2"
SSHD_READY_SECONDS = 10.0
KILL_SECONDS = 5.0

_bed_serials = itertools.count()


def _letters(serial: int) -> str:
    """0 -> a, 25 -> z, 26 -> ba: bed serials that cannot run into the digits around them."""
    text = ""
    while True:
        serial, digit = divmod(serial, 26)
        text = chr(ord("a") + digit) + text
        if serial == 0:
            return text


def _local_address(serial: int, host: int) -> str:
    """A loopback address of its own for host `host` of local bed `serial` of this process:
    every 127.0.0.0/8 address is loopback, so parallel sessions (and servers a dead session
    left) never share one."""
    pid = os.getpid()
    last = LOCAL_ADDRESS_BASE + (serial % 20) * 10 + host
    return f"127.{1 + pid % 250}.{1 + (pid // 250) % 250}.{last}"


@dataclass(frozen=True)
class TestHost:
    """One test host: Ansible's inventory name, the address it is reached at, its root."""

    __test__ = False

    name: str
    address: str
    root: Path
    netns: str | None


class TestBedError(RuntimeError):
    """The bed could not be built (a missing tool, sshd not starting)."""

    __test__ = False


def _run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise TestBedError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def _ssh_keygen(path: Path, comment: str) -> str:
    """Make an ed25519 key pair without passphrase; return the public key line."""
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path.with_name(path.name + ".pub").read_text().strip()


def netns_pids(netns: str) -> list[int]:
    proc = _run(["ip", "netns", "pids", netns], check=False)
    return [int(word) for word in proc.stdout.split()] if proc.returncode == 0 else []


def _kill_all(list_pids: Callable[[], list[int]], what: str) -> None:
    """SIGKILL whatever list_pids() returns until it returns nothing (bounded)."""
    deadline = time.monotonic() + KILL_SECONDS
    while pids := list_pids():
        if time.monotonic() > deadline:
            raise TestBedError(f"processes {pids} of {what} survive SIGKILL")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def _link_exists(name: str) -> bool:
    return _run(["ip", "link", "show", "dev", name], check=False).returncode == 0


def destroy_netns(netns: str) -> None:
    """Kill every process in the namespace, then delete it and its veth pair."""
    if (NETNS_DIR / netns).exists():
        _kill_all(lambda: netns_pids(netns), f"netns {netns}")
    # Deleting the root end first takes the pair away at once; a namespace's own devices
    # go away asynchronously after `ip netns del`.
    if _link_exists(netns):
        _run(["ip", "link", "del", "dev", netns])
    if (NETNS_DIR / netns).exists():
        _run(["ip", "netns", "del", netns])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_beds() -> list[str]:
    """Remove namespaces left by test sessions that died without closing their bed."""
    swept = []
    names = [p.name for p in NETNS_DIR.iterdir()] if NETNS_DIR.is_dir() else []
    for name in names:
        match = NAME_RE.match(name)
        if match and not _pid_alive(int(match.group(1))):
            destroy_netns(name)
            swept.append(name)
    return swept


def _pids_with_env(key: str, value: str) -> list[int]:
    """Processes whose environment holds key=value (how local-mode stand-ins are found)."""
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


@contextlib.contextmanager
def _allocation_lock() -> Iterator[None]:
    ALLOCATION_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with ALLOCATION_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _octets_in_use() -> set[int]:
    out = _run(["ip", "-4", "-o", "addr", "show"]).stdout
    pattern = re.compile(rf"inet {re.escape(NET_PREFIX)}\.(\d+)\.")
    return {int(m.group(1)) for m in pattern.finditer(out)}


def _free_octets(count: int) -> list[int]:
    """Octets free on this machine, starting from one derived from the pid to spread beds."""
    used = _octets_in_use()
    start = os.getpid() % 254
    candidates = [1 + (start + k) % 254 for k in range(254)]
    free = [octet for octet in candidates if octet not in used][:count]
    if len(free) < count:
        raise TestBedError(f"no free {NET_PREFIX}.x.0/30 networks left for {count} hosts")
    return free


def _sshd_config(host: TestHost, sshd_dir: Path, authorized_keys: Path) -> str:
    lines = [
        f"ListenAddress {host.address}",
        "Port 22",
        f"HostKey {sshd_dir / 'host_ed25519'}",
        f"PidFile {sshd_dir / 'sshd.pid'}",
        f"AuthorizedKeysFile {authorized_keys}",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "AuthenticationMethods publickey",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        # Ansible multiplexes its sessions and runs forks in parallel.
        "MaxSessions 64",
        "MaxStartups 64:30:128",
        "Subsystem sftp internal-sftp",
        "LogLevel VERBOSE",
    ]
    return "\n".join(lines) + "\n"


_MASK_SCRIPT = 'mount --bind /dev/null "$1" && shift && exec "$@"'


def _without_controller_rc() -> list[str]:
    """The command prefix that hides this machine's ~root/.bashrc from a host's sshd.

    sshd runs every command of a session through root's login shell, and bash then reads
    ~/.bashrc: on a developer's machine that file belongs to the controller, not to a
    fleet host (here it runs `pyenv init`, about a second and a lock per command, which
    was most of an apply's time on the bed). In a mount namespace of its own, sshd and
    its sessions see an empty file there instead; nothing else changes.
    """
    rc = Path(pwd.getpwuid(0).pw_dir) / ".bashrc"
    if not rc.is_file():
        return []
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        _MASK_SCRIPT,
        "mask",
        str(rc),
    ]


def _wait_for_ssh_banner(address: str, sshd: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SSHD_READY_SECONDS
    while True:
        if sshd.poll() is not None:
            raise TestBedError(f"sshd for {address} exited {sshd.returncode}: {log.read_text()}")
        try:
            with socket.create_connection((address, 22), timeout=0.5) as conn:
                if conn.recv(8).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TestBedError(f"sshd for {address} not accepting after {SSHD_READY_SECONDS}s")
        time.sleep(0.01)


class TestBed:
    """A set of test hosts h1..hN; build it with TestBed.create(), always close() it."""

    __test__ = False

    def __init__(self, base_dir: Path, mode: Mode, hosts: list[TestHost]) -> None:
        self.base_dir = base_dir
        self.mode: Mode = mode
        self.hosts = hosts
        self.bin_dir = base_dir / "bin"
        self.private_key_file = base_dir / "client" / "id_ed25519"
        self.known_hosts_file = base_dir / "client" / "known_hosts"
        self._sshds: list[subprocess.Popen[bytes]] = []
        self._closed = False

    @classmethod
    def create(cls, base_dir: Path, mode: Mode = "ssh", n_hosts: int = 3) -> TestBed:
        """Build the bed under base_dir (an empty directory the caller owns)."""
        serial = next(_bed_serials)
        letters = _letters(serial)
        hosts_dir = base_dir / "hosts"
        roots = [hosts_dir / f"h{i}" / "root" for i in range(1, n_hosts + 1)]
        for root in roots:
            root.mkdir(parents=True)
            # the allocator a spec preloads by default, as an installed package would put it
            # there (preflight checks the file exists; the stand-in never loads it)
            library = root / DEFAULT_PRELOAD.lstrip("/")
            library.parent.mkdir(parents=True)
            library.write_bytes(b"")
        if mode == "local":
            hosts = [
                TestHost(f"h{i}", _local_address(serial, i), root, None)
                for i, root in enumerate(roots, start=1)
            ]
            bed = cls(base_dir, mode, hosts)
            bed._write_standin_wrapper()
            return bed
        netns_names = [f"{NAME_PREFIX}{os.getpid()}{letters}{i}" for i in range(1, n_hosts + 1)]
        if len(netns_names[-1]) > IFNAMSIZ:
            raise TestBedError(f"interface name {netns_names[-1]} is too long")
        bed = cls(base_dir, mode, [])
        try:
            bed._write_standin_wrapper()
            with _allocation_lock():
                sweep_dead_beds()
                octets = _free_octets(n_hosts)
                for i, (netns, octet, root) in enumerate(
                    zip(netns_names, octets, roots, strict=True), start=1
                ):
                    destroy_netns(netns)  # a crashed earlier session of this pid
                    host = TestHost(f"h{i}", f"{NET_PREFIX}.{octet}.2", root, netns)
                    bed.hosts.append(host)
                    _make_netns(host, octet)
            bed._prepare_hosts()
            bed._start_sshds()
        except BaseException:
            bed.close()
            raise
        return bed

    def _write_standin_wrapper(self) -> None:
        self.bin_dir.mkdir(parents=True)
        wrapper = self.bin_dir / "tensorflow_model_server"
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {STANDIN} "$@"\n')
        wrapper.chmod(0o755)
        HOST_BYTECODE.mkdir(parents=True, exist_ok=True)
        python = self.bin_dir / "python3-bytecode-cache"
        cache = f"TFSCONF_HOST_BYTECODE={HOST_BYTECODE}"
        python.write_text(f'#!/bin/sh\n{cache} exec {HOST_PYTHON} {HOST_PYTHON_SHIM} "$@"\n')
        python.chmod(0o755)

    def _prepare_hosts(self) -> None:
        """Runs after the namespaces exist and before sshd starts (a hook for subclasses)."""

    def enter(self, host: TestHost) -> list[str]:
        """The command prefix that runs a program in the host's namespaces."""
        assert host.netns is not None
        return ["nsenter", f"--net={NETNS_DIR / host.netns}"]

    def _start_sshds(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        client_dir = self.private_key_file.parent
        client_dir.mkdir(mode=0o700)
        client_pub = _ssh_keygen(self.private_key_file, "tfsconf-testbed-client")
        authorized_keys = client_dir / "authorized_keys"
        authorized_keys.write_text(client_pub + "\n")
        known_hosts = []
        for host in self.hosts:
            assert host.netns is not None
            sshd_dir = host.root.parent / "sshd"
            sshd_dir.mkdir()
            host_pub = _ssh_keygen(sshd_dir / "host_ed25519", f"tfsconf-testbed-{host.name}")
            key_type, key = host_pub.split()[:2]
            known_hosts.append(f"{host.address} {key_type} {key}\n")
            config = sshd_dir / "sshd_config"
            config.write_text(_sshd_config(host, sshd_dir, authorized_keys))
            log = sshd_dir / "sshd.log"
            argv = [
                *self.enter(host),
                *_without_controller_rc(),
                SSHD,
                "-D",
                "-f",
                str(config),
                "-E",
                str(log),
            ]
            self._sshds.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        self.known_hosts_file.write_text("".join(known_hosts))
        for host, sshd in zip(self.hosts, self._sshds, strict=True):
            _wait_for_ssh_banner(host.address, sshd, host.root.parent / "sshd" / "sshd.log")

    def host(self, name: str) -> TestHost:
        return next(h for h in self.hosts if h.name == name)

    def host_vars(self) -> dict[str, dict[str, Any]]:
        """Ansible variables per host (connection details for ssh come from connection_spec)."""
        result: dict[str, dict[str, Any]] = {}
        for host in self.hosts:
            connection = (
                {"ansible_user": "root"} if self.mode == "ssh" else {"ansible_connection": "local"}
            )
            result[host.name] = {
                **connection,
                "ansible_python_interpreter": str(self.bin_dir / "python3-bytecode-cache"),
                "tfsconf_root": str(host.root),
                "tfsconf_process_env": {
                    "PATH": f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
                    "TFS_STANDIN_ROOT": str(host.root),
                    "TFS_STANDIN_BIND": host.address,
                    "TFS_STANDIN_LOAD_SECONDS": STANDIN_LOAD_SECONDS,
                },
            }
        return result

    def connection_spec(self) -> dict[str, str]:
        """The spec's top-level `connection:` block for this bed."""
        if self.mode == "local":
            return {"user": "root"}
        return {
            "user": "root",
            "private_key_file": str(self.private_key_file),
            "known_hosts_file": str(self.known_hosts_file),
        }

    def spec_hosts(self) -> list[dict[str, str]]:
        return [{"name": h.name, "address": h.address} for h in self.hosts]

    def run_in(
        self, host: TestHost | str, argv: Sequence[str], *, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        """Run argv on the host: inside its network namespace, or plainly in local mode."""
        target = self.host(host) if isinstance(host, str) else host
        prefix = self.enter(target) if target.netns else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=False, timeout=timeout
        )

    def close(self) -> None:
        """Kill every process the hosts run and remove namespaces and links; keep files."""
        if self._closed:
            return
        self._closed = True
        errors = self._close_hosts()
        for host in self.hosts:
            try:
                if host.netns:
                    destroy_netns(host.netns)
                # Local-mode stand-ins live in no namespace: find them by their root.
                standins = functools.partial(_pids_with_env, "TFS_STANDIN_ROOT", str(host.root))
                _kill_all(standins, f"stand-ins of {host.name}")
            except TestBedError as exc:
                errors.append(str(exc))
        for sshd in self._sshds:
            with contextlib.suppress(subprocess.TimeoutExpired):
                sshd.wait(timeout=KILL_SECONDS)
        if errors:
            raise TestBedError("; ".join(errors))

    def _close_hosts(self) -> list[str]:
        """Runs first on close (a hook for subclasses); returns error messages."""
        return []

    def __enter__(self) -> TestBed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _make_netns(host: TestHost, octet: int) -> None:
    assert host.netns is not None
    netns = host.netns
    peer = f"{NET_PREFIX}.{octet}.1"
    _run(["ip", "netns", "add", netns])
    _run(["ip", "link", "add", netns, "type", "veth", "peer", "name", "eth0", "netns", netns])
    _run(["ip", "addr", "add", f"{peer}/30", "dev", netns])
    _run(["ip", "link", "set", netns, "up"])
    _run(["ip", "-n", netns, "link", "set", "lo", "up"])
    _run(["ip", "-n", netns, "addr", "add", f"{host.address}/30", "dev", "eth0"])
    _run(["ip", "-n", netns, "link", "set", "eth0", "up"])
    # Lets a host reach services the tests run in the root namespace (at its .1 peer).
    _run(["ip", "-n", netns, "route", "add", "default", "via", peer])
