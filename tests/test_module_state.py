"""No mutable state at module level inside the library (issue 13, item 5; STYLE.md): a
cache lives in an object its caller owns (the compile's Templates, the plan's
ModelsConfigs), so that nothing one call computes leaks into the next in one process.

Read from the text (a full ast walk of the package took over a second): a cache decorator
on a function, a `global` statement, or a module-level dict, list or set that some code of
the module mutates."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ALLOWED = {
    ("tfsconf/apply/sshmux.py", "_DIRS"): "the SSH control directories of this process, "
    "shared by its playbook runs by design, under a lock, removed at exit",
}

_CONTAINER = re.compile(
    r"^([A-Za-z_]\w*)(?:\s*:[^=\n]+)?\s*=\s*"
    r"(?:[\[{]|(?:dict|list|set|defaultdict|OrderedDict|Counter|deque)\()",
    re.MULTILINE,
)
_CACHE = re.compile(r"^\s*@([\w.]*cache\w*)", re.MULTILINE)
_GLOBAL = re.compile(r"^\s+global\s+([\w, ]+)", re.MULTILINE)
_MUTATORS = "append|extend|update|add|pop|clear|setdefault|remove|insert|discard|popitem"


def module_state(source: str) -> list[str]:
    """What in `source` keeps state at module level."""
    found = [f"@{m.group(1)}" for m in _CACHE.finditer(source)]
    found += [f"global {m.group(1).strip()}" for m in _GLOBAL.finditer(source)]
    for name in dict.fromkeys(m.group(1) for m in _CONTAINER.finditer(source)):
        mutated = re.compile(rf"\b{name}(?:\[[^\]\n]*\]\s*(?:=(?!=)|[-+|&]=)|\.(?:{_MUTATORS})\()")
        found += [f"{name}: {m.group(0).strip()}" for m in mutated.finditer(source)]
    return found


def test_the_library_keeps_no_state_at_module_level() -> None:
    problems = []
    for path in sorted((ROOT / "tfsconf").rglob("*.py")):
        if path.name.endswith("_pb2.py"):
            continue
        rel = path.relative_to(ROOT).as_posix()
        for item in module_state(path.read_text()):
            name = item.split(":")[0]
            if (rel, name) not in ALLOWED:
                problems.append(f"{rel}: {item}")
    assert not problems, "module-level state (give it an owner):\n" + "\n".join(problems)


def test_the_check_sees_each_kind_of_state() -> None:
    source = (
        "import functools\n_SEEN = {}\n_LIST: list[int] = []\n_TABLE = {'a': 1}\n"
        "@functools.cache\ndef a(): pass\n"
        "def b(k):\n    global X\n    _SEEN[k] = 1\n    _LIST.append(k)\n"
        "    return _TABLE[k] == 1\n"
    )
    assert module_state(source) == [
        "@functools.cache",
        "global X",
        "_SEEN: _SEEN[k] =",
        "_LIST: _LIST.append(",
    ]
