"""Each TF Serving setting is declared once, and what is derived from it agrees.

A plain server flag is one spec field marked FLAG in tfsconf/spec/settings.py plus its
release window in tfsconf/tfserving/flag_table.py: the command line
(tfsconf/resolve/flags.py) and the resolved settings (`layered`) are derived from it. A
BatchingParameters field is its field in tfsconf/protos/batching.proto and in the spec's
BatchingParameters, which is also the resolved class; compile writes it from the
descriptor. These tests fail when one of those is missing or misspelled, or when a second
copy of a setting appears in the resolved classes.
"""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest
from google.protobuf import text_format
from pydantic import BaseModel

from tfsconf.compile.protos import SESSION_CONFIG_FIELDS, batching_parameters, session_config
from tfsconf.protos import batching_pb2, session_config_pb2
from tfsconf.resolve import model as r
from tfsconf.resolve.flags import COMMAND_LINE, PLAIN_FLAGS, Plain, server_flags
from tfsconf.resolve.resolve import batching_of
from tfsconf.spec import model as s
from tfsconf.tfserving.flag_table import BATCHING_FIELD_SINCE, FLAG_SINCE
from tfsconf.validate.load import load_environment

ROOT = Path(__file__).resolve().parents[2]

COMPUTED = {
    "model_config_file_poll_wait_seconds": "--model_config_file_poll_wait_seconds, always written",
    "model_config_reload": "how apply reloads models.config; no flag",
    "grpc_channel_arguments": "--grpc_channel_arguments, joined with ','",
    "allow_version_labels_for_unavailable_models": "--allow_version_labels..., true by default",
    "batching": "--enable_batching, --batching_parameters_file, per-model flag",
    "session_config": "--tensorflow_session_config_file",
    "monitoring": "--monitoring_config_file",
}
"""Spec server settings that are not plain flags: each has its own function in
tfsconf/resolve/flags.py (or, for model_config_reload, none)."""

RESOLVED_FORMS = {
    "model_config_reload": "rpc unless set",
    "model_config_file_poll_wait_seconds": "0 unless set",
    "prometheus": "monitoring.prometheus, false unless set",
    "prometheus_path": "monitoring.path, TF Serving's path unless set",
    "batching_enabled": "batching.enabled, or whether the block sets anything",
    "batching_per_model": "batching.per_model when batching is on",
    "batching": "the parameters of the server's file, when it batches for all models",
    "batching_thread_pool": "the thread pool, when it batches per model",
    "session_config": "the block, also when written empty",
}
"""The resolved fields beside `layered` and `origins`: settings whose resolved form differs
from what was written. A plain flag is never among them: it is read from `layered`."""


def test_plain_flags_are_the_marked_spec_fields_with_a_release_window() -> None:
    assert PLAIN_FLAGS, "no spec server setting is marked FLAG"
    for name in PLAIN_FLAGS:
        assert name in FLAG_SINCE, f"{name}: no release window in tfserving/flag_table.py"


def test_the_command_line_writes_every_plain_flag_once() -> None:
    placed = [name for part in COMMAND_LINE if isinstance(part, Plain) for name in part.names]
    assert sorted(placed) == sorted(PLAIN_FLAGS)


def test_every_server_setting_has_a_flag_or_a_reason() -> None:
    spec = set(s.ServerSettings.model_fields)
    assert spec - set(PLAIN_FLAGS) == set(COMPUTED)
    assert not set(PLAIN_FLAGS) & set(COMPUTED)


def test_the_resolved_settings_repeat_no_setting() -> None:
    resolved = set(r.ServerSettings._fields) - {"layered", "origins"}
    assert resolved == set(RESOLVED_FORMS)
    assert not resolved & set(PLAIN_FLAGS), "a plain flag is read from `layered` only"
    assert typing.get_type_hints(r.ServerSettings)["layered"] is s.ServerSettings


@pytest.fixture(scope="module")
def server() -> r.Server:
    env = load_environment(ROOT / "environments" / "staging.yaml").resolved
    return env.hosts[0].servers[0]


def _value(name: str) -> object:
    if name == "mixed_precision":
        return "bfloat16"
    if name == "grpc_socket_path":
        return "/run/tfs.sock"
    annotation = str(s.ServerSettings.model_fields[name].annotation)
    if "bool" in annotation:
        return False
    if "float" in annotation:
        return 0.5
    return 7


@pytest.mark.parametrize("name", PLAIN_FLAGS)
def test_a_plain_setting_becomes_its_flag_at_its_line(server: r.Server, name: str) -> None:
    value = _value(name)
    written = s.ServerSettings.model_validate({name: value})  # a value the field accepts
    origin = ("servers", 0, name)
    settings = server.settings._replace(
        layered=server.settings.layered.model_copy(update={name: getattr(written, name)}),
        origins={**server.settings.origins, name: origin},
    )
    flags = {f.name: f for f in server_flags(server._replace(settings=settings))}
    text = str(value).lower() if isinstance(value, bool) else str(value)
    assert flags[name].render() == f"--{name}={text}"
    assert flags[name].origin == origin


def test_batching_fields_match_the_proto_descriptor() -> None:
    descriptor = {f.name for f in batching_pb2.BatchingParameters.DESCRIPTOR.fields}
    assert set(s.BatchingParameters.model_fields) == descriptor
    assert r.Batching is s.BatchingParameters, "the resolved batching is the spec's class"
    assert set(BATCHING_FIELD_SINCE) <= descriptor


EVERY_BATCHING_FIELD = r.Batching(
    max_batch_size=64,
    batch_timeout_micros=1000,
    max_enqueued_batches=8,
    num_batch_threads=4,
    thread_pool_name="pool_a",
    allowed_batch_sizes=[16, 64],
    pad_variable_length_inputs=True,
    enable_large_batch_splitting=True,
    max_execution_batch_size=32,
)


def test_every_batching_field_is_resolved() -> None:
    """A server's block (which also says whether and how to batch) gives its parameters."""
    assert all(value is not None for _, value in EVERY_BATCHING_FIELD)
    written = {**EVERY_BATCHING_FIELD.model_dump(), "enabled": True, "per_model": False}
    resolved = batching_of(s.ServerBatching.model_validate(written))
    assert type(resolved) is r.Batching
    assert resolved == EVERY_BATCHING_FIELD


def test_every_batching_field_is_written() -> None:
    batching = EVERY_BATCHING_FIELD
    text = text_format.MessageToString(batching_parameters(batching))
    parsed = text_format.Parse(text, batching_pb2.BatchingParameters())
    for field in parsed.DESCRIPTOR.fields:
        written = getattr(parsed, field.name)
        if field.message_type is not None:
            assert parsed.HasField(field.name), field.name
            written = written.value
        elif field.is_repeated:
            written = list(written)
        assert written == getattr(batching, field.name), field.name
    assert "max_batch_size {\n  value: 64\n}" in text


def test_unset_batching_fields_are_left_out() -> None:
    assert text_format.MessageToString(batching_parameters(r.Batching(max_batch_size=8))) == (
        "max_batch_size {\n  value: 8\n}\n"
    )


def _dotted(cls: type[BaseModel], prefix: str = "") -> set[str]:
    """Every setting name a layer can write, dotted as in the origins ("batching.enabled")."""
    names: set[str] = set()
    for name, field in cls.model_fields.items():
        names.add(prefix + name)
        for arg in (field.annotation, *typing.get_args(field.annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _dotted(arg, f"{prefix}{name}.")
    return names


def _names_a_setting(key: str, known: set[str]) -> bool:
    if key.endswith("*"):  # the constant head of an f-string
        return any(name.startswith(key[:-1]) for name in known)
    return key in known


@pytest.mark.parametrize("module", ["tfsconf/resolve/flags.py", "tfsconf/validate/resolved.py"])
def test_every_origin_names_a_setting(module: str) -> None:
    """Origins are looked up by dotted name: a misspelled one would silently point a
    diagnostic at the server instead of the line that set the value."""
    known = _dotted(s.ServerSettings) | _dotted(s.ModelSettings)
    looked_up = []
    for node in ast.walk(ast.parse((ROOT / module).read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "origin":
            first = node.args[0]
            if isinstance(first, ast.Constant):
                looked_up.append(first.value)
            elif isinstance(first, ast.JoinedStr) and isinstance(first.values[0], ast.Constant):
                prefix = str(first.values[0].value)  # f"batching.{name}": the block
                looked_up.append(prefix.rstrip(".") if prefix.endswith(".") else prefix + "*")
    assert looked_up
    unknown = [key for key in looked_up if not _names_a_setting(key, known)]
    assert not unknown, f"{module}: origins of unknown settings: {unknown}"


def test_session_config_fields_match_the_config_proto() -> None:
    assert r.SessionConfig is s.SessionConfig, "the resolved block is the spec's class"
    assert set(SESSION_CONFIG_FIELDS) == set(s.SessionConfig.model_fields)
    for name, path in SESSION_CONFIG_FIELDS.items():
        descriptor = session_config_pb2.ConfigProto.DESCRIPTOR
        for part in path[:-1]:
            descriptor = descriptor.fields_by_name[part].message_type
        assert path[-1] in descriptor.fields_by_name, name
    message = session_config(r.SessionConfig(gpu_allow_growth=True, allow_soft_placement=True))
    assert text_format.MessageToString(message) == (
        "gpu_options {\n  allow_growth: true\n}\nallow_soft_placement: true\n"
    )
