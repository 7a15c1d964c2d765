"""What tfsconf hands to Ansible is data: Ansible's own loader reads every string of the
inventory and of the extra-vars file as unsafe, and its templar leaves them verbatim.

The payloads run a real `lookup('pipe', ...)`: if a value were templated, a marker file
would appear. Each test also loads the same values written without the marking and shows
that Ansible would then run the payload, so the test can fail.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfsconf.apply import unsafe
from tfsconf.apply.inventory import build_inventory, load_host_vars
from tfsconf.validate.load import load_environment

SPEC = """\
environment: unsafe
tfserving_version: "2.18.0"
host_groups:
  main:
    hosts:
      - {name: h1, address: 10.0.0.1}
      - {name: h2, address: fe80::1%eth0}
servers:
  - {name: srv, group: main, models: [ctr]}
models:
  - name: ctr
    base_path: /srv/tfserving/models/ctr
    source: {kind: local, path: /mnt/models/ctr}
"""


def payload(marker: Path) -> str:
    return f"{{{{ lookup('pipe', 'touch {marker}') }}}}"


@functools.cache
def _init_plugins() -> None:
    from ansible.plugins.loader import init_plugin_loader

    init_plugin_loader()


def _ansible() -> Any:
    """A fresh DataLoader (Ansible caches what a loader has read)."""
    from ansible.parsing.dataloader import DataLoader

    _init_plugins()
    return DataLoader()


def playbook_text(text: str) -> str:
    """A template as a playbook holds it (trusted: from 2.19 on, only trusted text is
    templated at all)."""
    try:
        from ansible.template import trust_as_template  # type: ignore[attr-defined]
    except ImportError:
        return text
    trusted: str = trust_as_template(text)
    return trusted


def is_unsafe(value: str) -> bool:
    """Whether Ansible treats the string as unsafe (never templated), in the terms of the
    installed ansible-core: data tags from 2.19 on, AnsibleUnsafe classes before."""
    try:
        from ansible.template import is_trusted_as_template  # type: ignore[attr-defined]
    except ImportError:
        from ansible.utils.unsafe_proxy import AnsibleUnsafe

        return isinstance(value, AnsibleUnsafe)
    return not is_trusted_as_template(value)


def strings(value: Any) -> Iterator[str]:
    """Every string of a loaded value, mapping keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def load_extra_vars(loader: Any, path: Path) -> Any:
    """Extra vars as `ansible-playbook -e @path` loads them (Ansible's own function)."""
    from ansible import context
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.utils.vars import load_extra_vars

    saved = context.CLIARGS
    context.CLIARGS = ImmutableDict(extra_vars=(f"@{path}",))
    load_extra_vars.extra_vars = None  # type: ignore[attr-defined]  # its cache of one run
    try:
        return load_extra_vars(loader)
    finally:
        context.CLIARGS = saved
        load_extra_vars.extra_vars = None  # type: ignore[attr-defined]


def template(loader: Any, value: Any, variables: dict[str, Any]) -> Any:
    from ansible.template import Templar

    return Templar(loader=loader, variables=variables).template(value)


def host_vars_file(tmp_path: Path, marker: Path) -> Path:
    evil = payload(marker)
    path = tmp_path / "host_vars.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "all": {"site_note": evil, "nested": {evil: [evil, {"deep": evil}], "n": 3}},
                "h1": {"tfsconf_process_env": {"PATH": "/usr/bin", "X": evil}},
            }
        )
    )
    return path


def test_inventory_values_are_unsafe_to_ansible(tmp_path: Path) -> None:
    from ansible.inventory.manager import InventoryManager

    marker = tmp_path / "marker-inventory"
    spec = tmp_path / "unsafe.yaml"
    spec.write_text(SPEC)
    env = load_environment(spec).resolved
    data = build_inventory(env, load_host_vars(host_vars_file(tmp_path, marker), env))
    path = tmp_path / "hosts.json"
    path.write_text(unsafe.inventory(data))

    loader = _ansible()
    hosts = {h.name: h for h in InventoryManager(loader=loader, sources=[str(path)]).get_hosts()}
    assert sorted(hosts) == ["h1", "h2", "localhost"]
    h1 = hosts["h1"].get_vars()
    assert h1["ansible_host"] == "10.0.0.1"
    assert h1["tfsconf_process_env"]["X"] == payload(marker)
    assert h1["nested"] == {payload(marker): [payload(marker), {"deep": payload(marker)}], "n": 3}
    assert hosts["h2"].get_vars()["ansible_host"] == "fe80::1%eth0"
    checked = 0
    for name, host in hosts.items():
        values = {k: v for k, v in host.get_vars().items() if k in data["all"]["hosts"][name]}
        for text in strings(list(values.values())):  # names are validated, values anything
            assert is_unsafe(text), (name, text)
            checked += 1
        assert template(loader, values, values) == data["all"]["hosts"][name]
    assert checked > 20
    assert not marker.exists()


def test_extra_vars_are_unsafe_to_ansible(tmp_path: Path) -> None:
    marker = tmp_path / "marker-vars"
    evil = payload(marker)
    extravars = {
        "tfsconf_work": {
            "h1": {"record": {"operator": f"{evil}@controller", "files": {evil: evil}}},
            "h2": {"syncs": [{"source": {"location": evil}, "version": 3, "warmup": None}]},
        },
        "tfsconf_owner": evil,
        "tfsconf_break_lock": False,
        "tfsconf_serial": "25%",
    }
    path = tmp_path / "vars.json"
    path.write_text(unsafe.variables(extravars))

    loader = _ansible()
    loaded = load_extra_vars(loader, path)
    assert loaded == extravars
    assert all(is_unsafe(text) for text in strings(list(loaded.values())))
    rendered = template(loader, playbook_text("{{ tfsconf_work.h1.record.operator }}"), loaded)
    assert rendered == f"{evil}@controller"
    assert template(loader, loaded, loaded) == extravars
    assert not marker.exists()


def test_the_same_values_unmarked_would_run_the_payload(tmp_path: Path) -> None:
    """The control: without the marking Ansible templates the value and runs the pipe."""
    marker = tmp_path / "marker-control"
    path = tmp_path / "plain.yml"
    path.write_text(yaml.safe_dump({"tfsconf_owner": payload(marker)}))
    loader = _ansible()
    loaded = load_extra_vars(loader, path)
    assert not is_unsafe(loaded["tfsconf_owner"])
    assert template(loader, playbook_text("{{ tfsconf_owner }}"), loaded) == ""
    assert marker.exists()


STRINGS = ["plain", "", "0.2", "yes", "123", "null", "~", "a\nb", "nul\x00", "ünï", "'\"", "- x"]


def test_strings_arrive_as_the_same_strings(tmp_path: Path) -> None:
    """Every string arrives as that string (the `!unsafe` YAML tag would not do: 2.19 turns
    `!unsafe "0.2"` into a float and `!unsafe "yes"` into True)."""
    path = tmp_path / "vars.json"
    values = {"v": {text: [text, {"k": text}] for text in STRINGS}, "n": [1, 2.5, True, None]}
    path.write_text(unsafe.variables(values))
    loaded = load_extra_vars(_ansible(), path)
    assert loaded == values
    assert all(is_unsafe(text) for text in strings(list(loaded["v"].values())))


def test_only_data_can_be_marked() -> None:
    with pytest.raises(TypeError, match="cannot hand a"):
        unsafe.variables({"v": object()})


def test_an_unmarked_inventory_would_run_the_payload(tmp_path: Path) -> None:
    """The control for the inventory: the JSON inventory tfsconf used to write."""
    import json

    from ansible.inventory.manager import InventoryManager

    marker = tmp_path / "marker-inventory-control"
    path = tmp_path / "hosts.json"
    path.write_text(json.dumps({"all": {"hosts": {"h1": {"note": payload(marker)}}}}))
    loader = _ansible()
    (host,) = InventoryManager(loader=loader, sources=[str(path)]).get_hosts()
    values = host.get_vars()
    assert not is_unsafe(values["note"])
    template(loader, playbook_text("{{ note }}"), values)
    assert marker.exists()
