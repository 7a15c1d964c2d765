"""The stages import in one direction only (ARCHITECTURE.md).

Every module of tfsconf/ is parsed with ast and every import counts: at module level, inside
functions (the lazy imports that keep start-up fast), under `if TYPE_CHECKING:`, relative
ones. A package may import only the packages below it in BELOW, followed transitively; a
new package has to be placed there before it can import anything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tfsconf"

FOUNDATION = frozenset({"errors", "diagnostics", "secrets", "atomic", "contracts", "kinds"})
"""Top-level modules every stage may use: the error hierarchy, located diagnostics, secret
masking, atomic writes, the typed layouts of the files stages hand each other (contracts),
the runtimes and source kinds (kinds).
They form one unit (they may import each other)."""

BELOW: dict[str, tuple[str, ...]] = {
    "foundation": (),
    "protos": (),
    "tfserving": ("foundation", "protos"),
    "spec": ("tfserving",),
    "resolve": ("spec",),
    "validate": ("resolve",),
    "compile": ("resolve",),
    "plan": ("validate", "compile"),
    "warmup": ("tfserving",),
    "modelcheck": ("warmup",),
    "apply": ("plan", "warmup"),
    "api": ("apply",),
    "cli": ("api", "modelcheck"),
    "__main__": ("cli",),
    "ci_comment": ("foundation",),
}
"""unit -> the units directly below it. The chain of stages is
tfserving -> spec -> resolve -> (validate | compile) -> plan -> apply -> api -> cli;
warmup and modelcheck are tools on the side that know TF Serving's facts only."""


def allowed(unit: str) -> frozenset[str]:
    seen: set[str] = set()
    todo = list(BELOW[unit])
    while todo:
        below = todo.pop()
        if below not in seen:
            seen.add(below)
            todo.extend(BELOW[below])
    return frozenset(seen)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the source."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                if not is_package:
                    base.pop()
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                # `from tfsconf import api` imports the module tfsconf.api
                yield f"{target}.{alias.name}", node.lineno
            yield target, node.lineno


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "tfsconf":
        return None
    if len(parts) == 1 or parts[1] in FOUNDATION:
        return "foundation"
    return parts[1]


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def known_modules() -> frozenset[str]:
    return frozenset(module_name(path) for path in sources())


def test_every_unit_is_placed() -> None:
    units = {unit_of(module_name(path)) for path in sources()}
    assert units <= set(BELOW), f"place these packages in BELOW: {units - set(BELOW)}"
    for unit in BELOW:
        assert unit not in allowed(unit), f"BELOW has a cycle through {unit}"


def test_imports_follow_the_stage_order() -> None:
    modules = known_modules()
    violations = []
    for path in sources():
        module = module_name(path)
        unit = unit_of(module)
        assert unit is not None
        found = imports_of(path.read_text(), module, is_package=path.name == "__init__.py")
        for target, line in found:
            target_unit = unit_of(target)
            if target_unit is None or target_unit == unit:
                continue
            if target not in modules and target.rsplit(".", 1)[0] in modules:
                continue  # a name imported from a module, counted as that module
            if target_unit not in allowed(unit):
                rel = path.relative_to(ROOT)
                violations.append(f"{rel}:{line}: {unit} imports {target} ({target_unit})")
    assert not violations, "imports against the stage order:\n" + "\n".join(violations)


def test_host_modules_import_nothing_of_tfsconf() -> None:
    """The Ansible modules run on the hosts, where tfsconf is not installed. The actions
    run on the controller, in Ansible's worker: they may reach tfsconf's agent, nothing
    else of it."""
    checked = set()
    for path in sorted((ROOT / "playbooks").rglob("*.py")):
        targets = {t for t, _ in imports_of(path.read_text(), path.stem) if unit_of(t)}
        if path.parent.name == "action_plugins":
            assert targets <= {"tfsconf.apply.agent", "tfsconf.apply"}, path
        else:
            assert not targets, path
        checked.add(path.parent.name)
    assert {"library", "module_utils", "files", "action_plugins"} <= checked


def _printed_by(probe: str) -> str:
    """What a fresh interpreter prints running `probe` (its imports are its own)."""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stdout.strip()


def test_the_validate_path_stays_light() -> None:
    """Loading and validating a spec needs neither protobuf nor Jinja2 nor TensorFlow."""
    probe = (
        "import sys, tfsconf.validate.load; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'google', 'jinja2', 'tensorflow', 'typer'}))"
    )
    assert _printed_by(probe) == "[]"


def test_the_agent_in_an_ansible_worker_stays_light() -> None:
    """The tfsconf_agent action imports the agent in every Ansible worker it runs in (a
    fresh fork per host and activation): what it needs to reach a server (its SSH route
    included) must not pull pydantic and the spec's models (about 90 ms of CPU per
    activation on the controller, most of the agent's import)."""
    probe = (
        "import sys; from tfsconf.apply import agent, serving, tunnel; "
        "print(sorted({m for m in sys.modules if m.split('.')[0] == 'pydantic' "
        "or m.startswith(('tfsconf.resolve', 'tfsconf.spec'))}))"
    )
    assert _printed_by(probe) == "[]"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from tfsconf.resolve import model\n", "resolve"),
        ("if TYPE_CHECKING:\n    import tfsconf.plan.model\n", "plan"),
        ("from ..compile import bundle\n", "compile"),
        ("from tfsconf import api\n", "api"),
    ],
)
def test_the_scan_sees_every_kind_of_import(source: str, expected: str) -> None:
    """A lazy, type-only, relative or package-level import of a higher stage is caught."""
    found = {unit_of(t) for t, _ in imports_of(source, "tfsconf.spec.load")}
    assert expected in found
    assert expected not in allowed("spec")
