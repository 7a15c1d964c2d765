"""How apply reaches the hosts: the connection settings of the spec (SSH, a jump host, the
route of the controller's gRPC calls)."""

from __future__ import annotations

from typing import Literal

from tfsconf.spec.safe import AbsolutePath, Address, Name
from tfsconf.spec.settings import Port, SpecModel

__all__ = ["Connection", "GrpcVia", "JumpHost"]


class JumpHost(SpecModel):
    """A bastion every SSH connection to the hosts goes through (ssh -W, like ProxyJump),
    checked against the same known_hosts file as the hosts."""

    address: Address
    """IP address or DNS name of the bastion, as the machine running apply reaches it."""
    user: Name | None = None
    """SSH user on the bastion (default: the connection's user)."""
    port: Port | None = None
    """SSH port of the bastion (default 22)."""


GrpcVia = Literal["direct", "ssh"]


class Connection(SpecModel):
    """How apply reaches a host over SSH (Ansible connection settings)."""

    user: Name | None = None
    """SSH user (default: the user running apply)."""
    port: Port | None = None
    """SSH port (default 22)."""
    private_key_file: AbsolutePath | None = None
    """SSH private key on the machine that runs apply."""
    known_hosts_file: AbsolutePath | None = None
    """known_hosts file holding the hosts' keys (default: the user's)."""
    host_key_checking: bool | None = None
    """Check the hosts' SSH keys (default true). false is insecure and is written where a reviewer
    sees it."""
    become: bool | None = None
    """Run the host tasks with sudo (default false)."""
    jump_host: JumpHost | None = None
    """Bastion the SSH connections go through (its key is checked like the hosts')."""
    grpc_via: GrpcVia | None = None
    """How apply, status and plan --live reach TF Serving's gRPC port: direct, or ssh (a port
    forward over the host's SSH connection, for networks where only SSH reaches the hosts).
    Default: ssh with a jump_host, else direct."""
