"""Each runtime and each source kind is declared once, in tfsconf/kinds.py. The spec, the
resolved model and the stages take them from there; the host side (playbooks/, which cannot
import tfsconf) keeps copies, and these tests fail when a copy gains or loses a kind."""

from __future__ import annotations

import ast
import re
import typing
from pathlib import Path

from tfsconf import kinds
from tfsconf.resolve import model as r
from tfsconf.spec import model as s

ROOT = Path(__file__).resolve().parents[2]


def _literal(annotation: object) -> set[str]:
    """The strings of a Literal, also inside `Literal[...] | None`."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    found: set[str] = set()
    for arg in typing.get_args(annotation):
        found |= _literal(arg)
    return found


def test_every_runtime_has_its_traits() -> None:
    assert list(kinds.RUNTIMES) == list(typing.get_args(kinds.Runtime))


def test_the_spec_and_the_resolved_model_take_the_runtimes_from_kinds() -> None:
    names = set(kinds.RUNTIMES)
    assert _literal(s.Environment.model_fields["runtime"].annotation) == names
    assert _literal(s.HostGroup.model_fields["runtime"].annotation) == names
    for cls in (r.Server, r.Host, r.Group):
        assert typing.get_type_hints(cls)["runtime"] == kinds.Runtime, cls.__name__


def _compared(source: str, variable: str) -> set[str]:
    """The strings `variable` is compared with (==) in Python source."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Name)
            and node.left.id == variable
            and isinstance(node.ops[0], ast.Eq)
            and isinstance(node.comparators[0], ast.Constant)
        ):
            found.add(node.comparators[0].value)
    return found


def test_the_hosts_preflight_knows_every_runtime() -> None:
    """probe_runtime names each runtime but the container one, which is its last branch."""
    source = (ROOT / "playbooks/module_utils/tfsconf_host_preflight.py").read_text()
    named = _compared(source, "runtime")
    assert named <= set(kinds.RUNTIMES), f"the host probes an unknown runtime: {named}"
    rest = [name for name in kinds.RUNTIMES if name not in named]
    assert len(rest) == 1 and kinds.RUNTIMES[rest[0]].container, rest  # type: ignore[index]


def test_the_rollout_starts_each_runtime_the_way_compile_wrote_it() -> None:
    """The rollout picks service_process.yml (the supervisor and launch.json) for the
    runtimes that compile gives no systemd unit, service_systemd.yml for the others."""
    rollout = (ROOT / "playbooks/rollout.yml").read_text()
    (line,) = [x for x in rollout.splitlines() if x.strip().startswith("service_kind:")]
    named = set(re.findall(r"w\.runtime == '(\w+)'", line))
    assert named == {name for name, t in kinds.RUNTIMES.items() if not t.systemd_unit}
    for task in ("service_process.yml", "service_systemd.yml"):
        assert task.removesuffix(".yml").removeprefix("service_") in line
        assert (ROOT / "playbooks/tasks" / task).is_file()


def _sync_module_source_kinds() -> list[str]:
    """SOURCE_KINDS of the sync host module, read without importing it (it needs Ansible):
    the module imports it from its module_utils, where it is assigned once."""
    module = (ROOT / "playbooks/library/tfsconf_model_sync.py").read_text()
    assert '"choices": SOURCE_KINDS' in module  # the module's argument choices come from it
    found = []
    for path in sorted((ROOT / "playbooks/module_utils").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "SOURCE_KINDS"
            ):
                found.append(list(ast.literal_eval(node.value)))
    assert len(found) == 1, f"SOURCE_KINDS assigned {len(found)} times in playbooks/module_utils"
    return found[0]


def test_source_kinds_agree() -> None:
    spec = [
        kind
        for member in typing.get_args(typing.get_args(s.ModelSource)[0])
        for kind in _literal(member.model_fields["kind"].annotation)
    ]
    assert spec == list(kinds.SOURCE_KINDS), "one spec class per kind, in the same order"
    assert typing.get_type_hints(r.Source)["kind"] == kinds.SourceKind
    assert _sync_module_source_kinds() == list(kinds.SOURCE_KINDS)
