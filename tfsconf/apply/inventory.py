"""The Ansible inventory of an environment: one host per spec host, grouped by host group.

SSH host key checking stays on: `StrictHostKeyChecking=yes` against the spec's
known_hosts file (or the user's default one). Turning it off takes
`host_key_checking: false` in the spec, written down where a reviewer sees it.

A jump host (`connection.jump_host`) is reached through a ProxyCommand that runs ssh
with the same checks (StrictHostKeyChecking, the spec's known_hosts file, the key): with
ProxyJump, ssh starts the bastion hop with none of the command line's -o options, so the
bastion's key would be checked against the user's own known_hosts, if at all.

Site-specific variables (an interpreter path, and in the test bed a per-host root
directory) come from an optional YAML file of `host -> {variable: value}`, loaded safely and
checked against the hosts of the spec. Variables that would change the SSH options behind
the spec's back (another known_hosts file, host key checking off, another proxy) are
refused there, at the line that sets them.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tfsconf.errors import SpecError, UserError

if TYPE_CHECKING:  # annotations only: the agent imports this module in every Ansible worker
    from tfsconf.resolve import model as r

CONTROLLER = "localhost"
"""The machine running tfsconf: gRPC calls to TF Serving are delegated to it (and go over
SSH from there for hosts with grpc_via: ssh)."""

GRPC_SSH = "tfsconf_grpc_ssh"
"""The inventory variable holding a host's SSH route for gRPC (grpc_via: ssh), or null."""

_VAR_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_RESERVED = {"tfsconf_host", "tfsconf_work", GRPC_SSH, CONTROLLER}
# Ansible variables that carry SSH options or replace the ssh program: set by tfsconf from
# the spec's connection block, never by a host variables file. ansible_host, ansible_port
# and ansible_user stay allowed; the gRPC forward reads them from the inventory too.
_SSH_OPTION_VARS = frozenset(
    {
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_ssh_args",
        "ansible_sftp_extra_args",
        "ansible_scp_extra_args",
        "ansible_ssh_executable",
        "ansible_host_key_checking",
        "ansible_ssh_host_key_checking",
        "ansible_ssh_private_key_file",
        "ansible_private_key_file",
        "ansible_ssh_host",
        "ansible_ssh_port",
        "ansible_ssh_user",
    }
)


def load_host_vars(path: Path | None, env: r.Environment) -> dict[str, dict[str, Any]]:
    """Per-host Ansible variables from a YAML file; "all" applies to every host."""
    if path is None:
        return {}
    from tfsconf.spec.yamlload import load_yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"{path}: cannot read host variables: {exc.strerror}") from exc
    loaded = load_yaml(text, file=str(path))
    if loaded.problems:
        raise UserError(f"{path}: not valid YAML: {loaded.problems[0].render()}")
    data = loaded.data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of host name -> variables")
    known = {h.name for h in env.hosts}
    out: dict[str, dict[str, Any]] = {}
    for host, values in data.items():
        if host != "all" and host not in known:
            raise UserError(f"{path}: {host!r} is not a host of environment {env.name}")
        if not isinstance(values, dict):
            raise UserError(f"{path}: {host}: expected a mapping of variable -> value")
        for name in values:
            if not isinstance(name, str) or not _VAR_NAME.match(name) or name in _RESERVED:
                raise UserError(f"{path}: {host}: {name!r} is not a variable name tfsconf passes")
        refused = [
            loaded.positions.diagnostic(
                (str(host), name),
                "sets SSH options that the spec's connection block owns (host key checking, "
                "known_hosts_file, private_key_file, jump_host): set them there",
                at_key=True,
            )
            for name in sorted(set(values) & _SSH_OPTION_VARS)
        ]
        if refused:
            raise SpecError(diagnostics=refused, what=f"the host variables {path}")
        out[str(host)] = dict(values)
    return out


def _proxy_command(conn: r.Connection, jump: r.JumpHost) -> str:
    """The bastion hop as a ProxyCommand (run by /bin/sh, after ssh expands %h and %p):
    every word is a validated spec value, quoted anyway."""
    words = ["ssh", "-o", "BatchMode=yes", *_check_options(conn)]
    if conn.private_key_file:
        words += ["-i", conn.private_key_file]
    if jump.user:
        words += ["-l", jump.user]
    words += ["-p", str(jump.port), "-W", "[%h]:%p", "--"]
    # '%' is ssh's escape in ProxyCommand: an IPv6 zone id's '%' is written '%%'
    return " ".join([*map(shlex.quote, words), shlex.quote(jump.address).replace("%", "%%")])


def _check_options(conn: r.Connection) -> list[str]:
    checking = "yes" if conn.host_key_checking else "no"
    options = ["-o", f"StrictHostKeyChecking={checking}"]
    if conn.known_hosts_file:
        options += ["-o", f"UserKnownHostsFile={conn.known_hosts_file}"]
    return options


def ssh_options(conn: r.Connection) -> list[str]:
    """The -o options of every SSH connection to a host with this connection: Ansible's
    (ansible_ssh_common_args) and the gRPC forward's."""
    options = _check_options(conn)
    if conn.jump_host is not None:
        options += ["-o", f"ProxyCommand={_proxy_command(conn, conn.jump_host)}"]
    return options


def grpc_ssh_route(values: Mapping[str, Any], conn: r.Connection) -> dict[str, Any] | None:
    """How the controller's gRPC calls reach a host with grpc_via: ssh: the ssh options and
    destination of the host's inventory entry (after the host variables), for
    tfsconf.apply.tunnel; None when gRPC goes direct (or the host is this machine)."""
    if conn.grpc_via != "ssh" or values.get("ansible_connection", "ssh") == "local":
        return None
    argv = ["ssh", *ssh_options(conn), "-p", str(int(values["ansible_port"]))]
    if values.get("ansible_user"):
        argv += ["-l", str(values["ansible_user"])]
    if conn.private_key_file:
        argv += ["-i", conn.private_key_file]
    return {"options": argv, "host": str(values["ansible_host"])}


def host_connection_vars(host: r.Host) -> dict[str, Any]:
    conn = host.connection
    values: dict[str, Any] = {"ansible_host": host.address, "ansible_port": conn.port}
    if conn.user:
        values["ansible_user"] = conn.user
    if conn.private_key_file:
        values["ansible_ssh_private_key_file"] = conn.private_key_file
    # Ansible splits this with shlex
    values["ansible_ssh_common_args"] = " ".join(map(shlex.quote, ssh_options(conn)))
    values["ansible_host_key_checking"] = conn.host_key_checking
    if conn.become:
        values["ansible_become"] = True
    return values


class Inventory(dict[str, Any]):
    """An inventory, and the environment variables that hold the environment's secrets:
    every Ansible run with this inventory gets them blanked (ansible-runner writes its whole
    environment into its artifacts, and the playbook's processes would inherit them)."""

    hidden_env: frozenset[str] = frozenset()


def secret_env_names(env: r.Environment) -> frozenset[str]:
    """The environment variables the spec names as holding credentials."""
    return frozenset(
        model.source.auth.secret_env
        for host in env.hosts
        for server in host.servers
        for model in server.models
        if model.source.auth is not None
    )


def build_inventory(
    env: r.Environment, host_vars: Mapping[str, Mapping[str, Any]] | None = None
) -> Inventory:
    """The inventory as ansible-runner takes it (YAML-shaped dict)."""
    host_vars = host_vars or {}
    common = dict(host_vars.get("all", {}))
    hosts: dict[str, Any] = {}
    for host in env.hosts:
        values = host_connection_vars(host)
        values.update(common)
        values.update(host_vars.get(host.name, {}))
        values[GRPC_SSH] = grpc_ssh_route(values, host.connection)
        hosts[host.name] = values
    inventory = Inventory(
        {
            "all": {
                "hosts": {
                    **hosts,
                    CONTROLLER: {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                    },
                },
                "children": {"tfsconf_hosts": {"hosts": {h: {} for h in hosts}}},
            }
        }
    )
    inventory.hidden_env = secret_env_names(env)
    return inventory
