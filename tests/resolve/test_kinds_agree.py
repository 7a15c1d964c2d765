"""The kinds of runtime and of model source are spelled in several places (ARCHITECTURE.md,
"Where to add things"); these tests fail when one copy gains or loses a kind."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

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


def test_runtimes_agree() -> None:
    resolved = set(typing.get_args(r.Runtime))
    assert resolved == {"docker", "native", "process"}
    assert _literal(s.Environment.model_fields["runtime"].annotation) == resolved
    assert _literal(s.HostGroup.model_fields["runtime"].annotation) == resolved


def _sync_module_source_kinds() -> set[str]:
    """SOURCE_KINDS of the sync host module, read without importing it (it needs Ansible):
    the module imports it from its module_utils, where it is assigned once."""
    module = (ROOT / "playbooks/library/tfsconf_model_sync.py").read_text()
    assert "SOURCE_KINDS" in module  # the module's argument choices come from it
    found = []
    for path in sorted((ROOT / "playbooks/module_utils").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and getattr(node.targets[0], "id", "") == "SOURCE_KINDS"
            ):
                found.append(set(ast.literal_eval(node.value)))
    assert len(found) == 1, f"SOURCE_KINDS assigned {len(found)} times in playbooks/module_utils"
    return found[0]


def test_source_kinds_agree() -> None:
    spec = {
        kind
        for member in typing.get_args(typing.get_args(s.ModelSource)[0])
        for kind in _literal(member.model_fields["kind"].annotation)
    }
    resolved = set(typing.get_args(typing.get_type_hints(r.Source)["kind"]))
    assert spec == resolved == _sync_module_source_kinds()
    assert spec == {"local", "http", "webhdfs"}
