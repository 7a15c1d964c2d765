"""Every protobuf artifact parses back with the protobuf classes and means what the spec says.

models.config is parsed with tensorflow-serving-api's ModelServerConfig (the class TF Serving
uses); batching and monitoring with tfsconf's own messages, whose field numbers are checked
against TF Serving's wire format below. Expectations are read from the raw YAML, not from
tfsconf's resolved model, so a resolver bug cannot hide behind itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

from tfsconf import api
from tfsconf.protos import batching_pb2, monitoring_pb2

EXAMPLES = ["production", "staging"]


def _compile(repo_root: Path, tmp_path: Path, env: str) -> tuple[dict[str, Any], Path]:
    spec_path = repo_root / "environments" / f"{env}.yaml"
    out = tmp_path / env
    api.compile_environment(spec_path, out)
    return yaml.safe_load(spec_path.read_text()), out


def _servers_on_hosts(spec: dict[str, Any], out: Path) -> list[tuple[str, dict[str, Any], Path]]:
    placed = []
    for server in spec["servers"]:
        for host in spec["host_groups"][server["group"]]["hosts"]:
            placed.append((host["name"], server, out / "hosts" / host["name"] / server["name"]))
    assert placed
    return placed


@pytest.mark.parametrize("env", EXAMPLES)
def test_models_config_parses_and_matches_spec(env: str, repo_root: Path, tmp_path: Path) -> None:
    spec, out = _compile(repo_root, tmp_path, env)
    models = {m["name"]: m for m in spec["models"]}
    for _host, server, directory in _servers_on_hosts(spec, out):
        config = text_format.Parse(
            (directory / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
        )
        assert config.WhichOneof("config") == "model_config_list"
        entries = list(config.model_config_list.config)
        assert [e.name for e in entries] == server["models"]
        for entry in entries:
            model = models[entry.name]
            assert entry.base_path == model["base_path"]
            assert entry.model_platform == "tensorflow"
            assert not entry.HasField("logging_config")
            policy = model.get("versions")
            which = entry.model_version_policy.WhichOneof("policy_choice")
            if policy is None:
                assert which is None  # TF Serving's default: latest 1
            elif policy["policy"] == "specific":
                assert which == "specific"
                assert list(entry.model_version_policy.specific.versions) == policy["versions"]
            elif policy["policy"] == "latest":
                assert which == "latest"
                assert entry.model_version_policy.latest.num_versions == policy["count"]
            else:
                assert which == "all"
            assert dict(entry.version_labels) == model.get("labels", {})


def _yaml_batching(spec: dict[str, Any], server: dict[str, Any]) -> dict[str, Any]:
    group = spec["host_groups"][server["group"]]
    layered: dict[str, Any] = {}
    for layer in (
        spec.get("defaults", {}).get("server", {}),
        group.get("defaults", {}).get("server", {}),
        server,
    ):
        layered.update(layer.get("batching", {}))
    return layered


@pytest.mark.parametrize("env", EXAMPLES)
def test_batching_files_parse_and_match_spec(env: str, repo_root: Path, tmp_path: Path) -> None:
    spec, out = _compile(repo_root, tmp_path, env)
    models = {m["name"]: m for m in spec["models"]}
    seen = 0
    for _host, server, directory in _servers_on_hosts(spec, out):
        batching = _yaml_batching(spec, server)
        path = directory / "batching_parameters.txt"
        flags = (directory / "server.flags").read_text().splitlines()
        pool = {k: batching[k] for k in ("num_batch_threads", "thread_pool_name") if k in batching}
        if not batching.get("enabled") or (batching.get("per_model") and not pool):
            assert not path.exists()
            assert not any(f.startswith("--batching_parameters_file=") for f in flags)
        elif batching.get("per_model"):
            # server.cc: the batch thread pool comes only from --batching_parameters_file,
            # so a per-model server keeps a global file holding just that
            seen += 1
            message = text_format.Parse(path.read_text(), batching_pb2.BatchingParameters())
            assert {f.name for f, _ in message.ListFields()} == set(pool)
            config_root = spec["paths"]["config_root"]
            on_host = f"{config_root}/{server['name']}/current/batching_parameters.txt"
            assert f"--batching_parameters_file={on_host}" in flags
        else:
            seen += 1
            message = text_format.Parse(path.read_text(), batching_pb2.BatchingParameters())
            for name in (
                "max_batch_size",
                "batch_timeout_micros",
                "max_enqueued_batches",
                "num_batch_threads",
            ):
                if name in batching:
                    assert getattr(message, name).value == batching[name], name
                else:
                    assert not message.HasField(name)
            assert list(message.allowed_batch_sizes) == batching.get("allowed_batch_sizes", [])
            assert "--enable_batching=true" in flags
        if batching.get("per_model"):
            assert "--enable_per_model_batching_parameters=true" in flags
            for name in server["models"]:
                model_batching = models[name].get("batching")
                per_model = directory / "models" / name / "batching_params.pbtxt"
                assert per_model.exists() == (model_batching is not None)
                if model_batching is None:
                    continue
                seen += 1
                expected = {k: v for k, v in batching.items() if k not in ("enabled", "per_model")}
                expected.update(model_batching)
                message = text_format.Parse(
                    per_model.read_text(), batching_pb2.BatchingParameters()
                )
                assert message.max_batch_size.value == expected["max_batch_size"]
                assert message.num_batch_threads.value == expected["num_batch_threads"]
                assert list(message.allowed_batch_sizes) == expected["allowed_batch_sizes"]
                if "max_execution_batch_size" in expected:
                    assert message.enable_large_batch_splitting.value is True
                    assert (
                        message.max_execution_batch_size.value
                        == expected["max_execution_batch_size"]
                    )
    assert seen, "the example should exercise batching"


@pytest.mark.parametrize("env", EXAMPLES)
def test_monitoring_config_parses(env: str, repo_root: Path, tmp_path: Path) -> None:
    spec, out = _compile(repo_root, tmp_path, env)
    for _host, server, directory in _servers_on_hosts(spec, out):
        message = text_format.Parse(
            (directory / "monitoring.config").read_text(), monitoring_pb2.MonitoringConfig()
        )
        assert message.prometheus_config.enable is True
        assert message.prometheus_config.path.startswith("/")
        flags = (directory / "server.flags").read_text().splitlines()
        assert any(f.startswith("--monitoring_config_file=") for f in flags)
        assert f"--rest_api_port={server['rest_port']}" in flags


def _field(number: int, wire_type: int) -> int:
    return (number << 3) | wire_type


def test_batching_wire_format_matches_tf_serving_field_numbers() -> None:
    """TF Serving reads these numbers (session_bundle_config.proto); a renumbered field would
    still round-trip through tfsconf's own class, so check the encoded bytes directly."""
    message = batching_pb2.BatchingParameters()
    message.max_batch_size.value = 7
    message.allowed_batch_sizes.append(7)
    message.pad_variable_length_inputs = True
    message.enable_large_batch_splitting.value = True
    message.max_execution_batch_size.value = 3
    message.thread_pool_name.value = "p"
    data = message.SerializeToString(deterministic=True)
    expected = b"".join(
        [
            bytes([_field(1, 2)])
            + bytes([2])
            + wrappers_pb2.Int64Value(value=7).SerializeToString(),
            bytes([_field(5, 2)])
            + bytes([3])
            + wrappers_pb2.StringValue(value="p").SerializeToString(),
            bytes([_field(6, 2), 1, 7]),  # packed repeated int64
            bytes([_field(7, 0), 1]),
            bytes([_field(8, 2), 2]) + wrappers_pb2.BoolValue(value=True).SerializeToString(),
            bytes([_field(9, 2), 2]) + wrappers_pb2.Int64Value(value=3).SerializeToString(),
        ]
    )
    assert data == expected


def test_monitoring_wire_format_matches_tf_serving_field_numbers() -> None:
    message = monitoring_pb2.MonitoringConfig()
    message.prometheus_config.enable = True
    message.prometheus_config.path = "/m"
    inner = bytes([_field(1, 0), 1, _field(2, 2), 2]) + b"/m"
    assert message.SerializeToString() == bytes([_field(1, 2), len(inner)]) + inner
