"""gRPC to TF Serving over SSH, for hosts only SSH reaches (`connection.grpc_via: ssh`).

The controller's calls (hot reload, health gate, smoke predict, status, plan --live) then
go through one ssh process per host and use: `ssh -N -L <socket>:127.0.0.1:<grpc_port>`,
one forward per server, with the options of the host's inventory entry (host key checking,
the spec's known_hosts file, the key, the jump host), so the forward reaches the host
exactly as Ansible does. TF Serving listens on every address of its host (server.cc binds
"0.0.0.0:<grpc_port>"), so the far end is the host's loopback.

The near end is a Unix socket in a private (0700) temporary directory: no other user of
the controller can use the forward, and no TCP port can be taken between choosing it and
ssh binding it. The ssh process ends with the `with` block (SIGTERM, then SIGKILL after
STOP_SECONDS), and the kernel sends it SIGTERM if the thread that started it dies first
(PR_SET_PDEATHSIG), so an agent killed mid-reload leaves no ssh behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfsconf.apply.inventory import GRPC_SSH
from tfsconf.apply.serving import Endpoint
from tfsconf.errors import UserError

if TYPE_CHECKING:  # annotations only: the agent imports this module in every Ansible worker
    from tfsconf.resolve import model as r

READY_SECONDS = 30.0
"""How long ssh may take to log in (through the jump host) and open the forwards."""
STOP_SECONDS = 5.0
_PR_SET_PDEATHSIG = 1
# sun_path holds 108 bytes: the directory, "/tfsconf-grpc-" and 8 random characters,
# "/<port>.sock"
_MAX_TEMP_DIR = 70
_FORWARD_OPTIONS = (
    # never prompt (no terminal under Ansible), fail instead of running without a forward,
    # notice a dead link, and keep out of any ControlMaster the user's ssh_config sets up
    "BatchMode=yes",
    "ExitOnForwardFailure=yes",
    "ConnectTimeout=10",
    "ServerAliveInterval=10",
    "ServerAliveCountMax=3",
    "ControlMaster=no",
    "ControlPath=none",
    "StreamLocalBindMask=0177",
    "StreamLocalBindUnlink=yes",
)


class TunnelError(UserError):
    """ssh could not open the forward (the host or the bastion refused, or timed out)."""


def route_of(inventory: Mapping[str, Any], host: str) -> Mapping[str, Any] | None:
    """The host's SSH route for gRPC from an inventory (build_inventory), or None: direct."""
    entry = inventory.get("all", {}).get("hosts", {}).get(host) or {}
    route = entry.get(GRPC_SSH)
    return route if isinstance(route, Mapping) else None


def forward_argv(route: Mapping[str, Any], sockets: Mapping[int, Path]) -> list[str]:
    """The ssh command line: the route's options first (ssh keeps the first value of an
    option), then the forward's own, one -L per gRPC port, `--`, the host."""
    argv = [str(word) for word in route["options"]]
    for option in _FORWARD_OPTIONS:
        argv += ["-o", option]
    argv += ["-N", "-T"]
    for port, socket in sorted(sockets.items()):
        argv += ["-L", f"{socket}:127.0.0.1:{int(port)}"]
    return [*argv, "--", str(route["host"])]


@contextlib.contextmanager
def grpc_endpoints(
    address: str, ports: Iterable[int], route: Mapping[str, Any] | None
) -> Iterator[dict[int, Endpoint]]:
    """port -> the Endpoint to call TF Serving's gRPC port at: the host itself, or (with a
    route) the near end of a forward that lives as long as the block."""
    wanted = sorted({int(port) for port in ports})
    if route is None or not wanted:
        yield {port: Endpoint(address, port) for port in wanted}
        return
    # mkdtemp: mode 0700; sun_path is short, so a long TMPDIR gives way to /tmp
    short = len(tempfile.gettempdir()) <= _MAX_TEMP_DIR
    directory = Path(tempfile.mkdtemp(prefix="tfsconf-grpc-", dir=None if short else "/tmp"))  # noqa: S108 - mkdtemp: 0700, random name
    try:
        sockets = {port: directory / f"{port}.sock" for port in wanted}
        with _forward(address, route, sockets, directory / "ssh.log"):
            yield {
                port: Endpoint(address, port, via=str(socket)) for port, socket in sockets.items()
            }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def open_endpoints(
    stack: contextlib.ExitStack[Any],
    host: r.Host,
    ports: Iterable[int],
    inventory: Mapping[str, Any],
) -> tuple[dict[int, Endpoint], str]:
    """grpc_endpoints for a host of `inventory`, kept open by `stack`, for the reports that
    go on when one host cannot be reached (status, plan --live): ({}, why) when the
    forward cannot be opened."""
    try:
        opened = grpc_endpoints(host.address, ports, route_of(inventory, host.name))
        return stack.enter_context(opened), ""
    except TunnelError as exc:
        return {}, f"no SSH forward: {exc}"


@contextlib.contextmanager
def _forward(
    address: str, route: Mapping[str, Any], sockets: Mapping[int, Path], log: Path
) -> Iterator[None]:
    # resolved before the fork: the child only makes the one system call
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    with log.open("wb") as errors:
        proc = subprocess.Popen(
            forward_argv(route, sockets),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            preexec_fn=lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGTERM),  # noqa: PLW1509
        )
    try:
        _wait_ready(address, proc, list(sockets.values()), log)
        yield
    finally:
        stop(proc)


def _wait_ready(
    address: str, proc: subprocess.Popen[bytes], sockets: Sequence[Path], log: Path
) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not all(socket.exists() for socket in sockets):
        if proc.poll() is not None:
            raise TunnelError(
                f"{address}: cannot forward gRPC over SSH: ssh exited {proc.returncode}: "
                f"{_last_lines(log)}"
            )
        if time.monotonic() > deadline:
            raise TunnelError(
                f"{address}: cannot forward gRPC over SSH: no forward after "
                f"{READY_SECONDS:.0f} s: {_last_lines(log)}"
            )
        time.sleep(0.02)


def _last_lines(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
    return "; ".join([line for line in lines if line][-3:]) or "(nothing on stderr)"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """End an ssh process: SIGTERM, SIGKILL after STOP_SECONDS; always reaped."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_SECONDS)
