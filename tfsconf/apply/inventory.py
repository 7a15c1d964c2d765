"""The Ansible inventory of an environment: one host per spec host, grouped by host group.

SSH host key checking stays on: `StrictHostKeyChecking=yes` against the spec's
known_hosts file (or the user's default one). Turning it off takes
`host_key_checking: false` in the spec, written down where a reviewer sees it.

Site-specific variables (an interpreter path, a bastion, and in the test bed a per-host
root directory) come from an optional YAML file of `host -> {variable: value}`, loaded
safely and checked against the hosts of the spec.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tfsconf.errors import UserError
from tfsconf.resolve import model as r

CONTROLLER = "localhost"
"""The machine running tfsconf: gRPC calls to TF Serving are delegated to it."""

_VAR_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_RESERVED = {"tfsconf_host", "tfsconf_work", CONTROLLER}


def load_host_vars(path: Path | None, env: r.Environment) -> dict[str, dict[str, Any]]:
    """Per-host Ansible variables from a YAML file; "all" applies to every host."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise UserError(f"{path}: cannot read host variables: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML: {exc}") from exc
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
        out[str(host)] = dict(values)
    return out


def host_connection_vars(host: r.Host) -> dict[str, Any]:
    conn = host.connection
    values: dict[str, Any] = {"ansible_host": host.address, "ansible_port": conn.port}
    if conn.user:
        values["ansible_user"] = conn.user
    if conn.private_key_file:
        values["ansible_ssh_private_key_file"] = conn.private_key_file
    ssh_args = []
    if conn.host_key_checking:
        ssh_args.append("-o StrictHostKeyChecking=yes")
    else:
        ssh_args.append("-o StrictHostKeyChecking=no")
    if conn.known_hosts_file:
        ssh_args.append(f"-o UserKnownHostsFile={shlex.quote(conn.known_hosts_file)}")
    values["ansible_ssh_common_args"] = " ".join(ssh_args)
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
