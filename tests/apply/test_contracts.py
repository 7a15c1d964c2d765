"""The host work has one type (tfsconf.contracts.HostWork): every key the playbooks and
their modules read from it is declared there, every artifact placement reaches the work,
and apply, rollback and repair build activations of one shape."""

from __future__ import annotations

import ast
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfsconf import contracts
from tfsconf.compile import artifacts
from tfsconf.compile.artifacts import ARTIFACTS, Placement
from tfsconf.contracts import Activation, HostWork

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
_REF = re.compile(r"\b([a-z_]+)((?:\.[a-z_]+)+)")
_ATTR = re.compile(r"(?:selectattr|rejectattr)\('([a-z_]+)'")


def _is_typeddict(kind: object) -> bool:
    return isinstance(kind, type) and typing.is_typeddict(kind)


def _hints(kind: Any) -> dict[str, Any]:
    return typing.get_type_hints(kind, vars(contracts))


def _element(kind: Any) -> Any:
    """list[T] -> T; T | None -> T; anything else as it is."""
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if typing.get_origin(kind) is list or (args and typing.get_origin(kind) is not dict):
        return _element(args[0]) if args else kind
    return kind


def _walk(kind: Any, path: list[str], where: str) -> Any:
    """The type at `path` below `kind`; a key it lacks fails the test."""
    for key in path:
        kind = _element(kind)
        if typing.get_origin(kind) is dict:  # keyed by names (servers, models): any key
            return None
        assert _is_typeddict(kind), f"{where}: .{key} on {kind}"
        hints = _hints(kind)
        assert key in hints, f"{where}: {key!r} is not a key of {kind.__name__}"
        kind = hints[key]
    return kind


def _tasks(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _tasks(item)
    elif isinstance(node, dict):
        if "name" in node or "hosts" in node:
            yield node
        for key in ("tasks", "block", "rescue", "always"):
            if key in node:
                yield from _tasks(node[key])


_CONDITIONS = ("when", "failed_when", "changed_when", "until")
_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.DOTALL)


def _expressions(node: object, key: str = "") -> Iterator[str]:
    """The Jinja expressions of a task: conditions whole, other strings inside {{ }}."""
    if isinstance(node, str):
        if key in _CONDITIONS:
            yield node
        else:
            yield from ("".join(m) for m in _JINJA.findall(node))
    elif isinstance(node, dict):
        for name, value in node.items():
            if name not in ("block", "rescue", "always"):
                yield from _expressions(value, str(name))
    elif isinstance(node, list):
        for value in node:
            yield from _expressions(value, key)


def _playbook_files() -> list[Path]:
    return sorted([*PLAYBOOKS.glob("*.yml"), *(PLAYBOOKS / "tasks").glob("*.yml")])


def _roots() -> dict[str, Any]:
    """Variable -> type: `w` is the host work; loop variables and aliases of included task
    files take the element type of what they loop over."""
    roots: dict[str, Any] = {"w": HostWork}
    for _round in range(3):
        for path in _playbook_files():
            for task in _tasks(yaml.safe_load(path.read_text())):
                loop = task.get("loop")
                var = (task.get("loop_control") or {}).get("loop_var")
                if isinstance(loop, str) and var:
                    found = _REF.search(loop)
                    if found and found.group(1) in roots:
                        parts = found.group(2).strip(".").split(".")
                        roots[var] = _element(_walk(roots[found.group(1)], parts, str(path)))
                for name, value in (task.get("vars") or {}).items():
                    alias = re.fullmatch(r"\{\{ ([a-z_]+) \}\}", str(value))
                    if alias and alias.group(1) in roots:
                        roots[name] = roots[alias.group(1)]
                    # an element by index: "{{ w.list[i] }}", "{{ (w.list | filters)[i] }}"
                    indexed = re.fullmatch(
                        r"\{\{ \(?([a-z_]+)((?:\.[a-z_]+)+)(?: \|[^\[]*\))?\[[a-z_]+\] \}\}",
                        str(value),
                    )
                    if indexed and indexed.group(1) in roots:
                        parts = indexed.group(2).strip(".").split(".")
                        roots[name] = _element(_walk(roots[indexed.group(1)], parts, str(path)))
    return roots


def _module_args() -> dict[str, dict[str, Any]]:
    """module -> argument -> the work type the playbooks pass it."""
    roots = _roots()
    out: dict[str, dict[str, Any]] = {}
    for path in _playbook_files():
        for task in _tasks(yaml.safe_load(path.read_text())):
            items = _loop_item(task, roots)
            for module in ("tfsconf_host", "tfsconf_model_sync", "tfsconf_process"):
                args = task.get(module)
                if not isinstance(args, dict):
                    continue
                for arg, value in args.items():
                    found = _REF.search(str(value))
                    if found is None:
                        continue
                    scope = {**roots, **({"item": items} if items is not None else {})}
                    if found.group(1) not in scope:
                        continue
                    parts = found.group(2).strip(".").split(".")
                    kind = _walk(scope[found.group(1)], parts, f"{path.name}: {module}.{arg}")
                    if kind is not None:
                        out.setdefault(module, {})[arg] = kind
    return out


def _loop_item(task: dict[str, Any], roots: dict[str, Any]) -> Any:
    loop = task.get("loop")
    if not isinstance(loop, str) or (task.get("loop_control") or {}).get("loop_var"):
        return None
    found = _REF.search(loop)
    if found is None or found.group(1) not in roots:
        return None
    return _element(_walk(roots[found.group(1)], found.group(2).strip(".").split("."), "loop"))


def test_every_key_the_playbooks_read_is_in_the_host_work() -> None:
    roots = _roots()
    assert roots["a"] is Activation and roots["svc"] is Activation
    assert roots["image"] is contracts.ImageWork
    checked = 0
    for path in _playbook_files():
        for task in _tasks(yaml.safe_load(path.read_text())):
            item = _loop_item(task, roots)
            scope = {**roots, **({"item": item} if item is not None else {})}
            for text in _expressions(task):
                for found in _REF.finditer(text):
                    root = found.group(1)
                    if root not in scope or (root == "item" and item is None):
                        continue
                    parts = found.group(2).strip(".").split(".")
                    _walk(scope[root], parts, f"{path.name}: {found.group(0)}")
                    checked += 1
                for key in _ATTR.findall(text):
                    if item is not None:
                        _walk(item, [key], f"{path.name}: attr {key}")
    assert checked > 50


class _Reads(ast.NodeVisitor):
    """Keys a playbook module reads from its work-typed arguments, following them through
    names, loops, dict() copies, calls of the module's own functions and classes, and
    attributes of self."""

    def __init__(self, tree: ast.Module, args: dict[str, Any]) -> None:
        self.args = args
        self.functions = {
            n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)
        }
        self.bound: dict[tuple[int, str], Any] = {}
        self.reads: list[tuple[Any, str, int]] = []
        self.scopes: list[int] = []
        self.tree = tree

    def kind(self, node: ast.AST | None) -> Any:
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            base = node.value
            if (isinstance(base, ast.Name) and base.id in ("p", "params")) or (
                isinstance(base, ast.Attribute) and base.attr == "params"
            ):
                return self.args.get(str(node.slice.value))
            inner = self.kind(base)
            if _is_typeddict(_element(inner)):
                return _hints(_element(inner)).get(str(node.slice.value))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            fake = ast.Subscript(value=node.func.value, slice=node.args[0], ctx=ast.Load())
            return self.kind(fake)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("dict", "list")
            and node.args
        ):
            return self.kind(node.args[0])
        if isinstance(node, ast.BoolOp):
            return next((k for k in map(self.kind, node.values) if k is not None), None)
        if isinstance(node, ast.Name):
            return self._lookup(node.id)
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            return self.bound.get((0, "self." + node.attr))
        return None

    def _lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes or [0]):
            if (scope, name) in self.bound:
                return self.bound[(scope, name)]
        return None

    def bind(self, target: ast.AST, kind: Any) -> None:
        if kind is None:
            return
        if isinstance(target, ast.Name):
            self.bound[(self.scopes[-1] if self.scopes else 0, target.id)] = kind
        elif (
            isinstance(target, ast.Attribute)
            and isinstance(target.value, ast.Name)
            and target.value.id == "self"
        ):
            self.bound[(0, "self." + target.attr)] = kind

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.scopes.append(id(node))
        self.generic_visit(node)
        self.scopes.pop()

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self.bind(target, self.kind(node.value))
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self.bind(node.target, _element(self.kind(node.iter)))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        callee = self.functions.get(node.func.id) if isinstance(node.func, ast.Name) else None
        if isinstance(callee, ast.ClassDef):
            callee = self._init(callee)
        if isinstance(callee, ast.FunctionDef):
            params = [a.arg for a in callee.args.args if a.arg != "self"]
            for param, value in zip(params, node.args, strict=False):
                kind = self.kind(value)
                if kind is not None:
                    self.bound[(id(callee), param)] = kind
        if isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
            self._read(node.func.value, node.args[0], node.lineno)
        self.generic_visit(node)

    def _init(self, cls: ast.ClassDef) -> ast.FunctionDef | None:
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                return item
        for base in cls.bases:
            parent = self.functions.get(base.id) if isinstance(base, ast.Name) else None
            if isinstance(parent, ast.ClassDef):
                return self._init(parent)
        return None

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load):
            self._read(node.value, node.slice, node.lineno)
        self.generic_visit(node)

    def _read(self, base: ast.AST, key: ast.AST, line: int) -> None:
        kind = _element(self.kind(base))
        if _is_typeddict(kind) and isinstance(key, ast.Constant) and isinstance(key.value, str):
            self.reads.append((kind, key.value, line))

    def run(self) -> list[tuple[Any, str, int]]:
        for _round in range(3):  # bindings flow into functions defined before their callers
            self.reads = []
            self.visit(self.tree)
        return self.reads


def _with_module_utils(path: Path) -> ast.Module:
    """The module's source with the tfsconf module_utils it imports (transitively) appended,
    so that a read is followed into the helper modules the host module was split into."""
    body: list[ast.stmt] = []
    todo, seen = [path], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        tree = ast.parse(current.read_text())
        body.extend(tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "ansible.module_utils.tfsconf_"
            ):
                name = node.module.rsplit(".", 1)[1]  # type: ignore[union-attr]
                todo.append(PLAYBOOKS / "module_utils" / f"{name}.py")
    return ast.Module(body=body, type_ignores=[])


def test_every_key_the_playbook_modules_read_is_in_the_host_work() -> None:
    modules = _module_args()
    # the preflight's values arrive in one dict, `probe` (contracts.Probe, from
    # tfsconf_probes), laid over the parameters by the host side's probe_params: its keys
    # are read as parameters
    modules["tfsconf_host"].update(_hints(contracts.Probe))
    assert modules["tfsconf_host"]["record"] is contracts.Record
    assert modules["tfsconf_model_sync"]["source"] is contracts.SyncSource
    seen: dict[str, set[str]] = {}
    for module, args in sorted(modules.items()):
        path = PLAYBOOKS / "library" / f"{module}.py"
        for kind, key, line in _Reads(_with_module_utils(path), args).run():
            assert key in _hints(kind), f"{path.name}:{line}: {key!r} not in {kind.__name__}"
            seen.setdefault(kind.__name__, set()).add(key)
    # the reads were followed where they happen (a broken tracer would find nothing)
    assert {"release", "spec_sha256"} <= seen["Record"]
    assert {"kind", "location", "checksums"} <= seen["SyncSource"]
    assert {"scheme", "secret"} <= seen["SyncAuth"]
    assert {"base_path", "version"} <= seen["Sync"]


def _host_constant(module: str, name: str) -> Any:
    """A module-level constant of a host-side module_utils file (the host cannot import
    tfsconf, and tfsconf does not import the host side: read from its source)."""
    path = PLAYBOOKS / "module_utils" / module
    (value,) = [
        ast.literal_eval(node.value)
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == name for t in node.targets)
    ]
    return value


def test_the_host_side_takes_every_probe_key_and_no_other() -> None:
    """PROBE_KEYS (the keys probe_params accepts; the host cannot import tfsconf) is
    contracts.Probe's keys, and the playbooks pass `probe` from tfsconf_probes only."""
    keys = _host_constant("tfsconf_host_preflight.py", "PROBE_KEYS")
    assert sorted(keys) == sorted(_hints(contracts.Probe))
    passed = [
        str(task["tfsconf_host"]["probe"])
        for book in _playbook_files()
        for task in _tasks(yaml.safe_load(book.read_text()))
        if isinstance(task.get("tfsconf_host"), dict) and "probe" in task["tfsconf_host"]
    ]
    assert len(passed) == 2 and all("tfsconf_probes[inventory_hostname]" in v for v in passed)


def test_the_host_side_stages_with_every_staging_key_and_no_other() -> None:
    """STAGING_KEYS (what the lock action's `staging` may hold) is contracts.Staging's
    keys, each a parameter stage itself takes; lock.yml passes it from tfsconf_stagings."""
    keys = _host_constant("tfsconf_host_release.py", "STAGING_KEYS")
    assert sorted(keys) == sorted(_hints(contracts.Staging))
    (stage_task,) = [
        task["tfsconf_host"]
        for task in _tasks(yaml.safe_load((PLAYBOOKS / "rollout.yml").read_text()))
        if isinstance(task.get("tfsconf_host"), dict)
        and task["tfsconf_host"].get("action") == "stage"
    ]
    assert set(keys) <= set(stage_task)
    passed = [
        str(task["tfsconf_host"]["staging"])
        for book in _playbook_files()
        for task in _tasks(yaml.safe_load(book.read_text()))
        if isinstance(task.get("tfsconf_host"), dict) and "staging" in task["tfsconf_host"]
    ]
    assert len(passed) == 1 and "tfsconf_stagings[inventory_hostname]" in passed[0]


def test_a_misspelled_key_is_caught() -> None:
    source = (
        "def record(module, p):\n"
        "    doc = dict(p['record'])\n"
        "    return doc['relase']\n"
        "def preflight(module, p):\n"
        "    for item in p['syncs']:\n"
        "        make(item['source'])\n"
        "def make(spec):\n"
        "    return spec['kind'], spec.get('locaton')\n"
    )
    args = {"record": contracts.Record, "syncs": list[contracts.Sync]}
    reads = _Reads(ast.parse(source), args).run()
    wrong = sorted(key for kind, key, _ in reads if key not in _hints(kind))
    assert wrong == ["locaton", "relase"]
    with pytest.raises(AssertionError, match="'relase' is not a key of Record"):
        _walk(HostWork, ["record", "relase"], "test")


def test_every_placement_has_a_consumer() -> None:
    """Each place an artifact goes on a host is carried by host-work keys the playbooks
    read; a placement nobody consumes is a file that never reaches the server."""
    from tfsconf.apply.work import PLACEMENT_CONSUMERS

    used = {p for a in ARTIFACTS for p in a.placements}
    assert used <= set(PLACEMENT_CONSUMERS), used - set(PLACEMENT_CONSUMERS)
    text = "\n".join(p.read_text() for p in _playbook_files())
    for placement, keys in PLACEMENT_CONSUMERS.items():
        assert keys, placement
        for key in keys:
            assert key in _hints(HostWork), (placement, key)
            assert re.search(rf"\bw\.{key}\b", text), f"no playbook reads w.{key} ({placement})"


# --- the work itself ------------------------------------------------------------------


def _spec(tmp_path: Path) -> Path:
    """staging.yaml with local sources under tmp_path and no warmup (no TensorFlow)."""
    text = (REPO / "environments" / "staging.yaml").read_text()
    for model, versions in (("ctr", (1043, 1044)), ("cvr", (318, 319)), ("mnist", (1, 2, 3))):
        for version in versions:
            (tmp_path / "src" / model / str(version)).mkdir(parents=True)
            (tmp_path / "src" / model / str(version) / "saved_model.pb").write_bytes(b"x")
        text = re.sub(
            rf"(- name: {model}\n(?:    .*\n)*?)    source: .*\n",
            rf"\g<1>    source: {{kind: local, path: {tmp_path}/src/{model}}}\n",
            text,
        )
    text = re.sub(r"    warmup: .*\n", "", text)
    spec = tmp_path / "staging.yaml"
    spec.write_text(text)
    return spec


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, dict[str, HostWork]]:
    from tfsconf.apply.work import Options, WorkBuilder
    from tfsconf.compile import build_bundle
    from tfsconf.plan.planner import make_plan
    from tfsconf.plan.state import NoState, StateOrigin, state_from_bundle
    from tfsconf.validate.load import load_environment

    tmp_path = tmp_path_factory.mktemp("work")
    env = load_environment(_spec(tmp_path)).resolved
    bundle = build_bundle(env)
    desired = state_from_bundle(bundle.files, StateOrigin("none"), "spec")
    plan = make_plan(NoState().load(), desired, env, spec="staging.yaml")
    records = {h.name: None for h in env.hosts}
    builder = WorkBuilder(
        plan, env, bundle.files, bundle.image_refs, records, Options(), tmp_path / "scratch"
    )
    return env, bundle, {hp.name: builder.build(hp) for hp in plan.hosts}


def test_every_artifact_reaches_the_work_where_the_registry_places_it(built: Any) -> None:
    _env, bundle, works = built
    seen: set[Placement] = set()
    for host, work in works.items():
        assert set(work) == set(_hints(HostWork))
        own = artifacts.host_files(bundle.files, host)
        for rel, data in own.items():
            text = data.decode()
            split = artifacts.server_of(rel)
            if split is None:
                found = artifacts.classify(artifacts.HOST_ARTIFACTS, rel)
            else:
                found = artifacts.classify(artifacts.SERVER_ARTIFACTS, split[1])
            assert found is not None, rel
            for placement in found[0].placements:
                seen.add(placement)
                if placement is Placement.RELEASE_DIR:
                    assert split is not None and work["stage"][split[0]][split[1]] == text
                elif placement is Placement.SYSTEMD_UNIT:
                    assert split is not None
                    units = {a["server"]: a["unit"] for a in work["activations"]}
                    assert units[split[0]] == split[1]
                elif placement is Placement.VERSION_DIR:
                    placed = [s["batching"] for s in work["syncs"]]
                    placed += [b["content"] for b in work["batching"]]
                    assert text in placed, rel
                elif placement is Placement.RECORD:
                    assert work["record"]["files"][rel] == text
        for image in work["images"]:
            seen.add(Placement.IMAGE_BUILD_DIR)
            path = artifacts.DOCKERFILE.path(image=image["name"])
            assert image["dockerfile"] == bundle.files[path].decode()
    assert seen == {p for a in ARTIFACTS for p in a.placements}


def test_apply_rollback_and_repair_activations_have_one_shape(built: Any) -> None:
    """Repair built its activations by hand and left out reload_deadline and
    config_poll_seconds, which the activation tasks read; a removed server's revert
    waited on port 0 once (issue 13). All three go through one builder now."""
    from tfsconf.apply.drift import Drift, repair_work
    from tfsconf.apply.record import HostRecord
    from tfsconf.apply.rollback import rollback_work

    env, _bundle, works = built
    keys = set(_hints(Activation))
    host = sorted(works)[0]
    work = works[host]
    assert work["activations"] and all(set(a) == keys for a in work["activations"])
    record = HostRecord(host, {**work["record"], "history": []})
    servers = sorted(work["stage"])
    drifts = [Drift(servers[0], "models.config edited", True), Drift(servers[1], "gone")]
    repaired = repair_work(env, record, drifts)
    assert [(a["server"], a["kind"]) for a in repaired["activations"]] == [
        (servers[0], "hot-reload"),
        (servers[1], "restart"),
    ]
    for activation in repaired["activations"]:
        assert set(activation) == keys
        ports = {a["server"]: a["grpc_port"] for a in work["activations"]}
        assert activation["grpc_port"] == ports[activation["server"]] != 0
    # a rollback that removes a server: it waits on the server's own port, never 0
    smaller = dict(work["record"])
    smaller["files"] = {k: v for k, v in record.files.items() if not k.startswith(servers[0])}
    smaller["manifest"] = {**record.data["manifest"], "servers": servers[1:]}
    rolled = rollback_work(env, record, HostRecord(host, smaller))  # type: ignore[arg-type]
    (removed,) = rolled["activations"]
    assert set(removed) == keys
    assert (removed["server"], removed["kind"], removed["expect"]) == (servers[0], "remove", {})
    assert removed["grpc_port"] == ports[servers[0]]


def test_every_modules_documentation_is_yaml() -> None:
    """ansible-doc reads DOCUMENTATION, EXAMPLES and RETURN as YAML: a plain ": " in a
    description breaks it (tfsconf_model_sync's did)."""
    checked = []
    for path in sorted((PLAYBOOKS / "library").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                if names and names[0] in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
                    assert yaml.safe_load(node.value.value), f"{path.name}: {names[0]} is empty"
                    checked.append(f"{path.stem}.{names[0]}")
    assert "tfsconf_model_sync.DOCUMENTATION" in checked
