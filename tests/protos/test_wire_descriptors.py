"""tfsconf's own .proto descriptions (tfsconf/protos) against the official descriptors of
TensorFlow and tensorflow-serving-api, field by field, so a drift cannot go unnoticed; and
the artifacts tfsconf writes parse the same with both.

Own messages live in ``tfsconf.wire.<official package>``; a message is compared with the
official one of the same name without that prefix. The only official fields tfsconf leaves
out are listed in OMITTED (subtrees it never reads); everything else must match exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor, descriptor_pool, text_format
from official import official_modules

from tfsconf.protos import (
    batching_pb2,
    monitoring_pb2,
    serving_apis_pb2,
    serving_config_pb2,
    tf_error_codes_pb2,
    tf_example_pb2,
    tf_saved_model_pb2,
    tf_tensor_bundle_pb2,
    tf_tensor_pb2,
)

OWN_PREFIX = "tfsconf.wire."
OWN_FILES = (
    tf_tensor_pb2,
    tf_example_pb2,
    tf_saved_model_pb2,
    tf_tensor_bundle_pb2,
    tf_error_codes_pb2,
    serving_config_pb2,
    serving_apis_pb2,
)
# official message -> fields tfsconf's description leaves out (see the .proto comments)
OMITTED = {
    "tensorflow.MetaGraphDef": {"graph_def", "object_graph_def"},
    "tensorflow.MetaGraphDef.MetaInfoDef": {"stripped_op_list"},
    "tensorflow.TensorInfo.CompositeTensor": {"type_spec"},
    "tensorflow.serving.SessionRunRequest": {"options"},
    "tensorflow.serving.SessionRunResponse": {"metadata"},
}


def _official(own_name: str) -> str:
    return own_name.removeprefix(OWN_PREFIX)


def _messages(d: descriptor.Descriptor) -> Iterator[descriptor.Descriptor]:
    yield d
    for nested in d.nested_types:
        yield from _messages(nested)


def _own_messages() -> list[descriptor.Descriptor]:
    found = []
    for module in OWN_FILES:
        for message in module.DESCRIPTOR.message_types_by_name.values():
            found.extend(_messages(message))
    return found


def _own_enums() -> list[descriptor.EnumDescriptor]:
    found = []
    for module in OWN_FILES:
        found.extend(module.DESCRIPTOR.enum_types_by_name.values())
    for message in _own_messages():
        found.extend(message.enum_types)
    return found


@pytest.fixture(scope="module")
def pool() -> descriptor_pool.DescriptorPool:
    official_modules()
    return descriptor_pool.Default()


def _field_facts(field: descriptor.FieldDescriptor, strip: bool) -> dict[str, object]:
    def name(d: descriptor.Descriptor | descriptor.EnumDescriptor | None) -> str | None:
        if d is None:
            return None
        return _official(d.full_name) if strip else d.full_name

    return {
        "number": field.number,
        "type": field.type,
        "repeated": field.is_repeated,
        "required": field.is_required,
        "presence": field.has_presence,
        "message_type": name(field.message_type),
        "enum_type": name(field.enum_type),
        "oneof": field.containing_oneof.name if field.containing_oneof else None,
        "json_name": field.json_name,
    }


def test_own_messages_are_in_their_own_package() -> None:
    for module in OWN_FILES:
        assert module.DESCRIPTOR.package.startswith(OWN_PREFIX), module.DESCRIPTOR.name


@pytest.mark.parametrize("own", _own_messages(), ids=lambda d: _official(d.full_name))
def test_message_matches_official(
    own: descriptor.Descriptor, pool: descriptor_pool.DescriptorPool
) -> None:
    official = pool.FindMessageTypeByName(_official(own.full_name))
    assert own.full_name != official.full_name
    own_fields = {f.name: _field_facts(f, strip=True) for f in own.fields}
    official_fields = {f.name: _field_facts(f, strip=False) for f in official.fields}
    left_out = OMITTED.get(official.full_name, set())
    assert set(official_fields) - set(own_fields) == left_out
    assert set(own_fields) <= set(official_fields), set(own_fields) - set(official_fields)
    for name, facts in own_fields.items():
        assert facts == official_fields[name], f"{official.full_name}.{name}"
    assert {n.name for n in own.nested_types} == {n.name for n in official.nested_types}
    assert {e.name for e in own.enum_types} == {e.name for e in official.enum_types}
    assert {o.name for o in own.oneofs} == {o.name for o in official.oneofs}
    assert own.GetOptions().map_entry == official.GetOptions().map_entry


@pytest.mark.parametrize("own", _own_enums(), ids=lambda d: _official(d.full_name))
def test_enum_matches_official(
    own: descriptor.EnumDescriptor, pool: descriptor_pool.DescriptorPool
) -> None:
    official = pool.FindEnumTypeByName(_official(own.full_name))
    assert {v.name: v.number for v in own.values} == {v.name: v.number for v in official.values}


def test_every_official_message_tfsconf_needs_is_described(
    pool: descriptor_pool.DescriptorPool,
) -> None:
    """The messages an omitted field does not lead to are all described: every message or
    enum type an own field refers to is itself an own type (closed over the tree)."""
    described = {d.full_name for d in _own_messages()} | {e.full_name for e in _own_enums()}
    for own in _own_messages():
        for field in own.fields:
            target = field.message_type or field.enum_type
            if target is not None and not target.full_name.startswith("google.protobuf."):
                assert target.full_name in described, f"{own.full_name}.{field.name}"


def test_own_batching_and_monitoring_match_tf_serving_text_names() -> None:
    """BatchingParameters and MonitoringConfig are not in the tensorflow-serving-api wheel;
    tests/compile/test_protos.py checks their wire numbers byte by byte."""
    assert batching_pb2.DESCRIPTOR.package == "tfsconf.tfserving"
    assert monitoring_pb2.DESCRIPTOR.package == "tfsconf.tfserving"


def _golden_models_configs(repo_root: Path) -> list[Path]:
    found = sorted((repo_root / "tests").glob("*/testdata/**/models.config"))
    assert found
    return found


def test_golden_models_configs_parse_the_same_with_official_classes(repo_root: Path) -> None:
    official = official_modules()["tensorflow_serving.config.model_server_config_pb2"]
    for path in _golden_models_configs(repo_root):
        text = path.read_text()
        ours = text_format.Parse(text, serving_config_pb2.ModelServerConfig())
        theirs = text_format.Parse(text, official.ModelServerConfig())
        assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(
            deterministic=True
        ), path
        assert text_format.MessageToString(ours) == text_format.MessageToString(theirs), path
