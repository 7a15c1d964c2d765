"""No mutable state at module level inside the library (issue 13, item 5; STYLE.md): a
cache lives in an object its caller owns (the compile's Templates, the plan's
ModelsConfigs), so that nothing one call computes leaks into the next in one process.

Read with ast: a cache decorator on a function, a `global` statement, or a module-level
dict, list or set that some code of the module mutates."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    ("tfsconf/apply/sshmux.py", "_DIRS"): "the SSH control directories of this process, "
    "shared by its playbook runs by design, under a lock, removed at exit",
}

_MUTATORS = {"append", "extend", "update", "add", "pop", "clear", "setdefault", "remove"}
_MUTATORS |= {"insert", "discard", "popitem", "__setitem__"}
_CONTAINERS = (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)
_FACTORIES = {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"}


def _containers(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        factory = isinstance(value, ast.Call) and (
            getattr(value.func, "id", None) in _FACTORIES
            or getattr(value.func, "attr", None) in _FACTORIES
        )
        if isinstance(value, _CONTAINERS) or factory:
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def module_state(source: str) -> list[str]:
    """What in `source` keeps state at module level."""
    tree = ast.parse(source)
    found = []
    containers = _containers(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            found.append(f"global {', '.join(node.names)}")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for decorator in node.decorator_list:
                name = ast.unparse(decorator)
                if "cache" in name:
                    found.append(f"@{name} on {node.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in _MUTATORS and getattr(owner, "id", None) in containers:
                found.append(f"{owner.id}.{node.func.attr}()")  # type: ignore[attr-defined]
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) in (
                    containers
                ):
                    found.append(f"{target.value.id}[...] =")  # type: ignore[attr-defined]
    return found


def test_the_library_keeps_no_state_at_module_level() -> None:
    problems = []
    for path in sorted((ROOT / "tfsconf").rglob("*.py")):
        if path.name.endswith("_pb2.py"):
            continue
        rel = path.relative_to(ROOT).as_posix()
        for item in module_state(path.read_text()):
            name = item.split(".")[0].split("[")[0]
            if (rel, name) not in ALLOWED:
                problems.append(f"{rel}: {item}")
    assert not problems, "module-level state (give it an owner):\n" + "\n".join(problems)


def test_the_check_sees_each_kind_of_state() -> None:
    source = (
        "import functools\n_SEEN = {}\n_LIST: list[int] = []\n"
        "@functools.cache\ndef a(): pass\n"
        "def b(k):\n    global X\n    _SEEN[k] = 1\n    _LIST.append(k)\n"
    )
    assert module_state(source) == [
        "@functools.cache on a",
        "global X",
        "_SEEN[...] =",
        "_LIST.append()",
    ]
