"""The session config file is a TensorFlow ConfigProto: tfsconf writes it from its own
subset message, and TensorFlow's own class must read it as the same fields."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

from google.protobuf import text_format

from tfsconf.compile.bundle import build_bundle
from tfsconf.protos import session_config_pb2
from tfsconf.validate.load import load_environment

SPEC = """\
environment: sess
tfserving_version: "2.18.0"
image: {allocator: {kind: system}}
host_groups:
  g: {hosts: [{name: h1, address: 10.0.0.1, gpus: 1}]}
servers:
  - name: s1
    group: g
    gpu: 0
    enable_profiler: false
    session_config: {gpu_allow_growth: true, allow_soft_placement: true}
    models: [a]
models:
  - {name: a, base_path: /srv/tfserving/models/a, source: {kind: local, path: /d/a}}
"""


def _tensorflow_config_pb2() -> Any:
    """TensorFlow's own generated module, read without starting the TensorFlow runtime: a
    bare package stands in for ``tensorflow`` while its pb2 module is imported (the dev
    install has TensorFlow; the base install has no use for this)."""
    name = "tensorflow.core.protobuf.config_pb2"
    if "tensorflow" in sys.modules:
        return importlib.import_module(name)
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations, "the dev install has TF"
    stand_in = types.ModuleType("tensorflow", "stand-in: only the pb2 modules are imported")
    stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None, is_package=True)
    stand_in.__spec__.submodule_search_locations = stand_in.__path__
    sys.modules["tensorflow"] = stand_in
    try:
        return importlib.import_module(name)
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]


def test_session_config_is_a_tensorflow_config_proto(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart, which parses
    --tensorflow_session_config_file with ParseProtoTextFile into the ConfigProto of
    SessionBundleConfig.session_config (tensorflow/core/protobuf/config.proto)."""
    config_pb2 = _tensorflow_config_pb2()
    spec = tmp_path / "sess.yaml"
    spec.write_text(SPEC)
    bundle = build_bundle(load_environment(spec).resolved)
    text = bundle.files["hosts/h1/s1/session_config.pbtxt"].decode()
    flags = bundle.files["hosts/h1/s1/server.flags"].decode().splitlines()
    assert (
        "--tensorflow_session_config_file=/srv/tfserving/config/s1/current/session_config.pbtxt"
        in flags
    )

    real = text_format.Parse(text, config_pb2.ConfigProto())
    assert real.gpu_options.allow_growth is True
    assert real.allow_soft_placement is True
    assert real.gpu_options.per_process_gpu_memory_fraction == 0  # left to the flag
    assert real.intra_op_parallelism_threads == 0  # left to the flags


def test_session_config_fields_have_tensorflows_numbers_and_types() -> None:
    """Mirrors tensorflow/core/protobuf/config.proto (ConfigProto, GPUOptions): every field
    of tfsconf's subset has TensorFlow's name, number and type, so the wire and text forms
    agree."""
    config_pb2 = _tensorflow_config_pb2()
    assert config_pb2.ConfigProto.DESCRIPTOR.full_name == "tensorflow.ConfigProto"
    pairs = [
        (session_config_pb2.ConfigProto.DESCRIPTOR, config_pb2.ConfigProto.DESCRIPTOR),
        (session_config_pb2.GPUOptions.DESCRIPTOR, config_pb2.GPUOptions.DESCRIPTOR),
    ]
    for ours, theirs in pairs:
        assert ours.fields, ours.full_name
        for field in ours.fields:
            real = theirs.fields_by_name[field.name]
            assert (field.number, field.type) == (real.number, real.type), field.full_name
    mine = session_config_pb2.ConfigProto()
    mine.gpu_options.allow_growth = True
    mine.allow_soft_placement = True
    real = config_pb2.ConfigProto.FromString(mine.SerializeToString())
    assert real.gpu_options.allow_growth and real.allow_soft_placement
