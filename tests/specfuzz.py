"""Mutation fuzzing of the bundled example specs (issue 12, section 7).

Each case takes an example from environments/, applies one to three random mutations
(delete a key or item, change a value's type, swap sibling values, duplicate a list item,
put a hostile text, number or YAML tag in a value) and runs it through the front door as
a user would. The outcome must be either a clean refusal (UserError: diagnostics, exit 1)
or an accepted spec whose compiled bundle is sound:

- no value spilled over a line: a payload is PREFIX + separator + MARK, so a MARK on a line
  without its PREFIX before it means a line break (or NUL) got into a one-line value;
- no NUL byte anywhere; Dockerfiles and units are well-formed line by line;
- every models.config parses with the real ModelServerConfig message, every JSON parses.

Anything else (another exception, a failed check) is counted and reported with its seed.
Shared by tests/spec/test_fuzz.py (in the suite) and benchmarks/fuzz_specs.py (on demand).
"""

from __future__ import annotations

import copy
import json
import random
import re
import shutil
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "environments"
PREFIX = "tfsq"
MARK = "PWNED"

# Separators that end a word, a line or a quoted string in a shell, a systemd unit, a
# Dockerfile, protobuf text, JSON or Jinja; each payload is PREFIX + separator + MARK.
SEPARATORS = [
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\x0b",
    "\x0c",
    "\x85",
    "\u2028",
    "\u2029",
    "\x1e",
    " ",
    "\t",
    ";",
    "&&",
    "|",
    "`",
    "$(",
    "${",
    "'",
    '"',
    "\\",
    "\\\n",
    "#",
    "%",
    "%n",
    "{{ ",
    "{% ",
    "{#",
    "=",
    ",",
    ":",
    "/../",
    "/",
    "*",
    "?",
    "[",
    "]",
    ">",
    "<",
    "\\n",
    " --",
    "\n--",
    "\nRUN ",
    "\nExecStart=",
    "\n[Service]\n",
    "\x1b[31m",
    "é",
]
PAYLOADS = [PREFIX + sep + MARK for sep in SEPARATORS]
NUMBERS: list[object] = [
    0,
    -1,
    1,
    2,
    7,
    65535,
    65536,
    2**31,
    2**63,
    -(2**63),
    10**40,
    2**64 + 1,
    0.5,
    -0.0,
    1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
]
# Written into the YAML text as they are (not through the dumper): tags, aliases, anchors.
RAW_YAML = [
    "!!python/object/apply:os.system [touch " + MARK + "]",
    "!!python/name:os.system",
    '!!int "abc"',
    "!!int 0x_",
    "!!float xyz",
    "!!bool maybe",
    "!!binary aGVsbG8=",
    "!!timestamp 2001-12-14",
    "!!set {a, b}",
    "!!str 42",
    "!!null x",
    "!custom x",
    "*undefined",
    "0x" + "f" * 120,
    "1" + ":59" * 60,
    "9" * 5000,
    "2001-12-14",
    "~",
    "[" * 40 + "]" * 40,
    "<<: {a: 1}",
    "&a [*a]",
]
try:  # libyaml's emitter: the pure-Python one would take most of a case's time
    from yaml import CSafeDumper as _Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]

KINDS = ("delete", "retype", "swap", "duplicate", "payload", "number", "raw")


def examples() -> dict[str, Any]:
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(EXAMPLES.glob("*.yaml"))}


def _paths(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(data, dict):
        for key, value in data.items():
            found += _paths(value, (*path, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _paths(value, (*path, index))
    return found


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _random_value(rng: random.Random) -> object:
    choice = rng.randrange(7)
    if choice == 0:
        return rng.choice(PAYLOADS)
    if choice == 1:
        return rng.choice(NUMBERS)
    if choice == 2:
        return rng.choice([[], {}, [rng.choice(PAYLOADS)], {"k": 1}, [1, 2]])
    if choice == 3:
        return rng.choice(["", "x" * 10_000, "a" * 64, "-x", "--flag=1", "..", "/"])
    if choice == 4:
        return None
    if choice == 5:
        return rng.choice(["true", "1", "0x10", "1e3", "null", "2.18.0", "25%", "0%"])
    return rng.choice(["ctr", "cvr", "digits", "ranking", "vision", "rank-gpu0"])


@dataclass
class Mutant:
    """A mutated spec: data plus raw YAML text that replaces placeholders when dumped."""

    data: Any
    raw: dict[str, str] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)

    def text(self) -> str:
        text = yaml.dump(
            self.data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10**6
        )
        for placeholder, raw in self.raw.items():
            text = text.replace(placeholder, raw)
        return text


def mutate(base: Any, rng: random.Random) -> Mutant:
    mutant = Mutant(copy.deepcopy(base))
    # mostly one mutation, so that enough mutants are accepted and compiled
    for _ in range(rng.choice((1, 1, 1, 1, 2, 2, 3))):
        kind = rng.choice(KINDS)
        _MUTATIONS[kind](mutant, rng)
        mutant.applied.append(kind)
    return mutant


def _containers(data: Any) -> list[tuple[Any, ...]]:
    return [p for p in _paths(data) if isinstance(_get(data, p), dict | list) and _get(data, p)]


def _delete(m: Mutant, rng: random.Random) -> None:
    parent = _get(m.data, rng.choice(_containers(m.data)))
    if isinstance(parent, dict):
        del parent[rng.choice(list(parent))]
    else:
        del parent[rng.randrange(len(parent))]


def _set_somewhere(m: Mutant, rng: random.Random, value: object, leaves_only: bool) -> None:
    paths = [p for p in _paths(m.data) if p]
    if leaves_only:
        paths = [p for p in paths if not isinstance(_get(m.data, p), dict | list)] or paths
    path = rng.choice(paths)
    _get(m.data, path[:-1])[path[-1]] = value


def _retype(m: Mutant, rng: random.Random) -> None:
    _set_somewhere(m, rng, _random_value(rng), leaves_only=False)


def _swap(m: Mutant, rng: random.Random) -> None:
    parents = [p for p in _containers(m.data) if len(_get(m.data, p)) >= 2]
    if not parents:
        return
    parent = _get(m.data, rng.choice(parents))
    keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
    a, b = rng.sample(keys, 2)
    parent[a], parent[b] = parent[b], parent[a]


def _duplicate(m: Mutant, rng: random.Random) -> None:
    lists = [p for p in _containers(m.data) if isinstance(_get(m.data, p), list)]
    if lists:
        items = _get(m.data, rng.choice(lists))
        items.append(copy.deepcopy(rng.choice(items)))


def _payload(m: Mutant, rng: random.Random) -> None:
    strings = [p for p in _paths(m.data) if p and isinstance(_get(m.data, p), str)]
    payload = rng.choice(PAYLOADS)
    if strings and rng.random() < 0.8:
        path = rng.choice(strings)
        old = _get(m.data, path)
        # the payload alone, or after the value it replaces (which keeps its pattern's
        # leading part valid, so the separator is what gets tested)
        _get(m.data, path[:-1])[path[-1]] = rng.choice(
            [payload, old + payload, old + "-" + payload]
        )
    else:
        _set_somewhere(m, rng, payload, leaves_only=True)


def _number(m: Mutant, rng: random.Random) -> None:
    _set_somewhere(m, rng, rng.choice(NUMBERS), leaves_only=True)


def _raw(m: Mutant, rng: random.Random) -> None:
    placeholder = f"tfsconf-raw-{len(m.raw)}-placeholder"
    m.raw[placeholder] = rng.choice(RAW_YAML)
    _set_somewhere(m, rng, placeholder, leaves_only=rng.random() < 0.8)


_MUTATIONS: dict[str, Callable[[Mutant, random.Random], None]] = {
    "delete": _delete,
    "retype": _retype,
    "swap": _swap,
    "duplicate": _duplicate,
    "payload": _payload,
    "number": _number,
    "raw": _raw,
}


def sweep(base: Any, separators: list[str]) -> list[Mutant]:
    """Directed cases: every string value of a spec, in turn, given each payload (as itself
    and appended to the value it had), so no field is left to chance."""
    mutants = []
    strings = [p for p in _paths(base) if p and isinstance(_get(base, p), str)]
    for path in strings:
        for separator in separators:
            payload = PREFIX + separator + MARK
            for value in (payload, _get(base, path) + "-" + payload):
                mutant = Mutant(copy.deepcopy(base), applied=["sweep"])
                _get(mutant.data, path[:-1])[path[-1]] = value
                mutants.append(mutant)
    return mutants


# --- checking a compiled bundle -----------------------------------------------------------

_DOCKER_INSTRUCTION = re.compile(r"(FROM|RUN|ENV|SHELL|ENTRYPOINT|COPY|ARG|LABEL|USER|CMD) ")
_UNIT_LINE = re.compile(r"\[[A-Za-z]+\]|[A-Za-z]+=.*")


def _line_problems(name: str, text: str) -> list[str]:
    problems = []
    lines = text.splitlines()
    if len(lines) != text.count("\n") + (0 if text.endswith("\n") or not text else 1):
        problems.append(f"{name}: a line break other than \\n")
    for number, line in enumerate(lines, start=1):
        if MARK in line and PREFIX not in line.split(MARK, 1)[0]:
            problems.append(f"{name}:{number}: a value spilled onto its own line: {line!r}")
    base = name.rsplit("/", 1)[-1]
    continued = False
    for number, line in enumerate(lines, start=1):
        ok = continued or not line.strip() or line.startswith("#")
        if base == "Dockerfile":
            ok = ok or bool(_DOCKER_INSTRUCTION.match(line))
        elif base.endswith(".service"):
            ok = ok or bool(_UNIT_LINE.fullmatch(line))
        else:
            ok = True
        if not ok:
            problems.append(f"{name}:{number}: not a {base} line: {line!r}")
        continued = line.endswith("\\")
    return problems


def check_bundle(out: Path) -> list[str]:
    """Every problem found in a compiled output directory (empty: sound)."""
    from google.protobuf import text_format
    from tensorflow_serving.config.model_server_config_pb2 import ModelServerConfig

    problems: list[str] = []
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        name = str(path.relative_to(out))
        content = path.read_bytes()
        if b"\x00" in content:
            problems.append(f"{name}: NUL byte")
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{name}: not UTF-8")
            continue
        problems += _line_problems(name, text)
        if path.name == "models.config":
            try:
                text_format.Parse(text, ModelServerConfig())
            except text_format.ParseError as exc:
                problems.append(f"{name}: does not parse as ModelServerConfig: {exc}")
        elif path.suffix == ".json":
            try:
                json.loads(text)
            except ValueError as exc:
                problems.append(f"{name}: not JSON: {exc}")
    return problems


# --- running cases ------------------------------------------------------------------------


@dataclass
class Tally:
    cases: int = 0
    accepted: int = 0
    rejected: int = 0
    crashes: int = 0
    injections: int = 0
    unlocated: int = 0
    by_mutation: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"cases={self.cases} accepted={self.accepted} rejected={self.rejected} "
            f"crashes={self.crashes} injections={self.injections} unlocated={self.unlocated}"
        )


class Workdir:
    """A directory holding the examples' samples, so their warmup paths resolve."""

    def __init__(self, root: Path) -> None:
        self.root = root
        shutil.copytree(EXAMPLES / "samples", root / "samples", dirs_exist_ok=True)
        self.spec = root / "mutant.yaml"


def run_case(base: Any, rng: random.Random, work: Workdir, tally: Tally, label: str) -> None:
    """One random mutant through load + compile; the outcome is added to the tally."""
    check_mutant(mutate(base, rng), work, tally, label)


def check_mutant(mutant: Mutant, work: Workdir, tally: Tally, label: str) -> None:
    from tfsconf import api
    from tfsconf.errors import UserError

    text = mutant.text()
    work.spec.write_text(text, encoding="utf-8")
    tally.cases += 1
    tally.by_mutation.update(mutant.applied)
    what = f"{label} {'+'.join(mutant.applied)}"
    with tempfile.TemporaryDirectory(dir=work.root) as scratch:
        out = Path(scratch) / "out"
        try:
            api.compile_environment(work.spec, out)
        except UserError as exc:
            tally.rejected += 1
            for diagnostic in getattr(exc, "diagnostics", ()):
                if diagnostic.line < 1:
                    tally.unlocated += 1
                    tally.failures.append(f"{what}: unlocated: {diagnostic.render()}")
            return text
        except Exception:
            tally.crashes += 1
            tally.failures.append(f"{what}: crash:\n{traceback.format_exc()}\n{text}")
            return text
        tally.accepted += 1
        problems = check_bundle(out)
    if problems:
        tally.injections += 1
        tally.failures.append(f"{what}: " + "; ".join(problems[:5]))
    return text


def run_sweep(separators: list[str], work: Workdir) -> Tally:
    tally = Tally()
    for name, base in sorted(examples().items()):
        for index, mutant in enumerate(sweep(base, separators)):
            check_mutant(mutant, work, tally, f"sweep {name} #{index}")
    return tally


def run(cases: int, seed: int, work: Workdir, *, first: int = 0) -> Tally:
    """Cases first .. first+cases-1 of a seed; case i always makes the same mutant."""
    bases = examples()
    names = sorted(bases)
    tally = Tally()
    for index in range(first, first + cases):
        rng = random.Random(f"{seed}:{index}")
        name = names[index % len(names)]
        run_case(bases[name], rng, work, tally, f"seed={seed} case={index} ({name})")
    return tally
