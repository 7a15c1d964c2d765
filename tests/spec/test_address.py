"""A host address is an IP address or an RFC 1123 host name, and nothing else.

The address lands in the Ansible inventory (`ansible_host`), on ssh command lines and in
gRPC targets. An IPv6 zone id used to accept any text, so a Jinja expression there reached
the inventory and Ansible evaluated it on the machine running apply.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cliprobe import tfsconf
from pydantic import TypeAdapter, ValidationError

from tfsconf.errors import SpecError
from tfsconf.spec.safe import Address
from tfsconf.validate.load import load_environment

PAYLOAD = "{{ lookup('pipe', 'touch /tmp/tfsconf-marker') }}"

ACCEPTED = [
    "10.0.0.1",
    "127.0.0.1",
    "::1",
    "2001:db8::17",
    "::ffff:10.0.0.1",
    "fe80::1%eth0",
    "fe80::1%2",
    "fe80::1%veth-a.b_12345",  # 15 characters, the longest interface name
    "h1",
    "rank-a1.dc1.example.com",
    "1host.example",
    "a" * 63,
    ".".join(["a" * 63] * 3) + "." + "b" * 61,  # 253 characters
]

REFUSED = [
    f"fe80::1%{PAYLOAD}",
    f"fe80::1%eth0{PAYLOAD}",
    "fe80::1%",
    "fe80::1%eth0 -oProxyCommand=x",
    "fe80::1%eth0\n",
    "fe80::1%" + "a" * 16,
    "fe80::1%eth0%1",
    "10.0.0.1%eth0",
    "rank-a1%eth0",
    PAYLOAD,
    "{{ x }}",
    "h1 ",
    "h1\nh2",
    "",
    "-h1",
    "h1-",
    "a..b",
    "host.example.com.",
    "under_score.example",
    "a" * 64,
    ".".join(["a" * 63] * 3) + "." + "b" * 62,  # 254 characters
    "1.2.3",  # inet_aton would read 1.2.0.3
    "010.1.1.1",  # inet_aton would read 8.1.1.1
    "0x7f.1",
    "0x7f000001",
    "2130706433",
    "256.1.1.1",
    "h1:22",
    "[::1]",
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_address_accepts_ip_addresses_and_host_names(value: str) -> None:
    assert TypeAdapter(Address).validate_python(value) == value


@pytest.mark.parametrize("value", REFUSED, ids=range(len(REFUSED)))
def test_address_refuses_everything_else(value: str) -> None:
    with pytest.raises(ValidationError, match="must be an IP address or a DNS host name"):
        TypeAdapter(Address).validate_python(value)


def _spec(address: str, environment: str = "addr") -> str:
    return f"""\
environment: {environment}
tfserving_version: "2.18.0"
host_groups:
  main:
    hosts:
      - name: h1
        address: {address}
servers:
  - name: srv
    group: main
    models: [ctr]
models:
  - name: ctr
    base_path: /srv/tfserving/models/ctr
    source: {{kind: local, path: /mnt/models/ctr}}
"""


BAD_ADDRESS = f'"fe80::1%{PAYLOAD}"'
WHERE = ":7:18: error: host_groups.main.hosts[0].address: must be an IP address or a DNS"


def test_a_jinja_zone_id_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "addr.yaml"
    spec.write_text(_spec(BAD_ADDRESS))
    with pytest.raises(SpecError) as raised:
        load_environment(spec)
    (diagnostic,) = [d for d in raised.value.diagnostics if d.severity == "error"]
    assert (diagnostic.line, diagnostic.column) == (7, 18)
    assert diagnostic.path == ("host_groups", "main", "hosts", 0, "address")
    assert "zone id" in diagnostic.message


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_refuses_the_address_and_keeps_the_previous_build(tmp_path: Path) -> None:
    spec = tmp_path / "addr.yaml"
    out = tmp_path / "build"
    spec.write_text(_spec("fe80::1%eth0"))
    first = tfsconf("compile", str(spec), "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = _tree(out)
    assert "manifest.json" in before
    siblings = sorted(p.name for p in tmp_path.iterdir())

    spec.write_text(_spec(BAD_ADDRESS))
    for args in (("validate", str(spec)), ("compile", str(spec), "--out", str(out))):
        run = tfsconf(*args)
        assert run.returncode == 1, run
        assert f"{spec}{WHERE}" in run.stdout + run.stderr
        assert "Traceback" not in run.stderr
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings
