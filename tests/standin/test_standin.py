"""The TF Serving stand-in, run as real processes against real SavedModels.

Every server is started on 127.0.0.1 with free ports and stopped (SIGTERM, then kill) in
teardown; every wait has a deadline.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "tfserving_standin.py"


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


standin = _load("tfserving_standin_under_test", STANDIN)
pb = standin.protos()

# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def crc32c_bitwise(data: bytes) -> int:
    """A second, bit-at-a-time crc32c (the stand-in's is table-driven)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def write_tfrecords(path: Path, records: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for record in records:
            length = len(record).to_bytes(8, "little")
            handle.write(length + _masked(length).to_bytes(4, "little"))
            handle.write(record + _masked(record).to_bytes(4, "little"))


def tensor(dtype: int, dims: list[int], **values: Any) -> Any:
    proto = pb.tensor.TensorProto(dtype=dtype, **values)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    return proto


DT_FLOAT, DT_INT64, DT_STRING = 1, 9, 7


def mixed_request(batch: int = 2, **spec: Any) -> Any:
    request = pb.predict.PredictRequest()
    request.model_spec.name = spec.pop("name", "mixed")
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["dense"].CopyFrom(tensor(DT_FLOAT, [batch, 4], float_val=[0.5] * 4 * batch))
    request.inputs["count"].CopyFrom(tensor(DT_INT64, [batch], int64_val=[1] * batch))
    request.inputs["tags"].CopyFrom(tensor(DT_STRING, [batch, 1], string_val=[b"a,b"] * batch))
    return request


def warmup_record(request: Any) -> bytes:
    entry = pb.prediction_log.PredictionLog()
    entry.predict_log.request.CopyFrom(request)
    return entry.SerializeToString()


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.03)


def model_entry(name: str, base_path: Path | str, policy: str = "", **labels: int) -> str:
    text = f'config {{ name: "{name}" base_path: "{base_path}" model_platform: "tensorflow" '
    if policy:
        text += f"model_version_policy {{ {policy} }} "
    for label, version in labels.items():
        text += f'version_labels {{ key: "{label}" value: {version} }} '
    return text + "}"


def config_text(*entries: str) -> str:
    return "model_config_list { " + " ".join(entries) + " }\n"


class Server:
    def __init__(self, workdir: Path, args: list[str], env: dict[str, str]) -> None:
        self.grpc_port, self.rest_port = free_ports(2)
        self.log_path = workdir / f"standin-{self.grpc_port}.log"
        full_env = {
            **os.environ,
            "TFS_STANDIN_BIND": "127.0.0.1",
            "TFS_STANDIN_LOAD_SECONDS": "0.1",
            **env,
        }
        argv = [
            sys.executable,
            str(STANDIN),
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            "--load_retry_interval_micros=50000",
            *args,
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(argv, env=full_env, stdout=subprocess.DEVNULL, stderr=log)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}")
        self.models = pb.model_service_grpc.ModelServiceStub(self.channel)
        self.predictions = pb.prediction_service_grpc.PredictionServiceStub(self.channel)

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_ready(self, timeout: float = 20) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"stand-in exited {self.proc.returncode}:\n{self.log()}")
            return port_open(self.grpc_port)

        wait_for(ready, timeout, "the gRPC port")

    def wait_exit(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def status(self, name: str = "mixed", **spec: Any) -> list[tuple[int, str, str, str]]:
        request = pb.status.GetModelStatusRequest()
        request.model_spec.name = name
        if "version" in spec:
            request.model_spec.version.value = spec["version"]
        if "label" in spec:
            request.model_spec.version_label = spec["label"]
        response = self.models.GetModelStatus(request, timeout=5)
        states = pb.status.ModelVersionStatus.State
        return [
            (
                entry.version,
                states.Name(entry.state),
                standin._code_name(entry.status.error_code),
                entry.status.error_message,
            )
            for entry in response.model_version_status
        ]

    def states(self, name: str = "mixed") -> dict[int, str]:
        return {version: state for version, state, _, _ in self.status(name)}

    def reload(self, text: str, timeout: float = 10) -> Any:
        from google.protobuf import text_format

        request = pb.management.ReloadConfigRequest()
        text_format.Parse(text, request.config)
        return self.models.HandleReloadConfigRequest(request, timeout=timeout)

    def predict(self, request: Any) -> Any:
        return self.predictions.Predict(request, timeout=5)

    def rest(self, path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{self.rest_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def stop(self) -> int | None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                return None
        return self.proc.returncode


def rpc_error(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


# --------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mixed model's version directory, built once with TensorFlow."""
    savedmodels = _load("standin_savedmodels", HERE.parent / "warmup" / "savedmodels.py")
    return savedmodels.build_mixed_model(tmp_path_factory.mktemp("built") / "mixed" / "1")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def starter(
        config: str | None,
        *flags: str,
        env: dict[str, str] | None = None,
        ready: bool = True,
        config_path: Path | None = None,
        config_flag: str | None = None,
    ) -> Server:
        args = list(flags)
        if config is not None:
            path = config_path or tmp_path / f"models-{len(servers)}.config"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(config)
            args.append(f"--model_config_file={config_flag or path}")
        server = Server(tmp_path, args, env or {})
        servers.append(server)
        if ready:
            server.wait_ready()
        return server

    yield starter
    for server in servers:
        server.stop()


def add_version(built: Path, base: Path, number: int | str) -> Path:
    target = base / str(number)
    shutil.copytree(built, target)
    return target


def publish(built: Path, base: Path, number: int, marker: bool = False) -> Path:
    """Stage under a non-numeric name, then rename (the atomic-publish primitive)."""
    staging = add_version(built, base, f".staging-{number}")
    if marker:
        (staging / standin.FAIL_MARKER).write_text("")
    return staging.rename(base / str(number))


# --------------------------------------------------------------------------------------
# fast tests
# --------------------------------------------------------------------------------------


def test_crc32c_matches_the_known_vector_and_a_bitwise_implementation() -> None:
    assert standin.crc32c(b"123456789") == 0xE3069283
    assert crc32c_bitwise(b"123456789") == 0xE3069283
    data = bytes(range(256)) * 3 + b"tfsconf"
    for end in (0, 1, 7, 100, len(data)):
        assert standin.crc32c(data[:end]) == crc32c_bitwise(data[:end])
    assert standin.masked_crc32c(b"abc") == _masked(b"abc")


def test_flags_need_equals_and_known_names() -> None:
    flags = standin.parse_flags(["--port=9000", "--enable_batching", "--enable_model_warmup=false"])
    assert (flags["port"], flags["enable_batching"], flags["enable_model_warmup"]) == (
        9000,
        True,
        False,
    )
    assert flags["file_system_poll_wait_seconds"] == 1
    assert flags["max_num_load_retries"] == 5
    for bad in (["--no_such_flag=1"], ["--port"], ["--port", "9000"], ["--enable_batching=yes"]):
        with pytest.raises(standin.FlagError):
            standin.parse_flags(bad)


def test_stricter_than_tf_serving_unknown_flag_and_equal_ports_exit_1(tmp_path: Path) -> None:
    """Stand-in strictness, NOT TF Serving behaviour: main.cc only prints an unknown
    argument and server.cc only logs equal gRPC/REST ports (and skips REST); both start.
    The stand-in exits 1 so that tfsconf emitting either is caught. A missing
    --model_config_file is a real start-up failure (ParseProtoTextFile)."""
    config = tmp_path / "models.config"
    config.write_text("")
    cases = [
        (["--port=18000", "--bogus_flag=1"], "unknown flag --bogus_flag"),
        (["--port=18000", "--rest_api_port=18000"], "cannot be the same"),
        (["--port=18000", "--model_config_file=/nonexistent/models.config"], "No such file"),
    ]
    for extra, message in cases:
        done = subprocess.run(
            [sys.executable, str(STANDIN), f"--model_config_file={config}", *extra],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert message in done.stderr


def test_a_config_parse_error_exits_1(tmp_path: Path) -> None:
    config = tmp_path / "models.config"
    config.write_text("model_config_list { config { nme: 'x' } }")
    done = subprocess.run(
        [sys.executable, str(STANDIN), "--port=18001", f"--model_config_file={config}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "Invalid protobuf file" in done.stderr


# --------------------------------------------------------------------------------------
# real processes, real SavedModels
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_ports_open_after_the_initial_load_then_status_and_rest(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    server = start(
        config_text(model_entry("mixed", base)),
        env={"TFS_STANDIN_LOAD_SECONDS": "1.5"},
        ready=False,
    )
    wait_for(lambda: "Loading servable version" in server.log(), 15, "the load to begin")
    assert not port_open(server.grpc_port)
    assert not port_open(server.rest_port)
    server.wait_ready()
    assert server.status() == [(1, "AVAILABLE", "OK", "")]
    expected = {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }
    assert server.rest("/v1/models/mixed") == (200, expected)
    assert server.rest("/v1/models/mixed/versions/1") == (200, expected)
    assert server.rest("/v1/models/nope") == (
        404,
        {"error": "Could not find any versions of model nope"},
    )
    assert server.rest("/v1/models/mixed/versions/2")[0] == 404
    # the label is never resolved by a status call: every version, even for no such label
    assert server.rest("/v1/models/mixed/labels/stable") == (200, expected)
    assert server.rest("/V1/MODELS/mixed") == (200, expected)  # the regexes are (?i)
    assert server.rest("/v1/other") == (400, {"error": "Malformed request: GET /v1/other"})
    assert server.rest("/v2/models/mixed")[0] == 404
    error = rpc_error(lambda: server.status("nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert server.stop() == 0


def test_the_first_poll_sees_the_startup_config_however_long_the_interval(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    """FileSystemStoragePathSource::SetAspiredVersionsCallback
    (sources/storage_path/file_system_storage_path_source.cc) starts its PeriodicFunction
    once the source holds the startup config, and a PeriodicFunction runs at once: the
    startup models load without waiting out file_system_poll_wait_seconds."""
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    server = start(
        config_text(model_entry("mixed", base)),
        "--file_system_poll_wait_seconds=3600",
        ready=False,
    )
    server.wait_ready(timeout=30)
    assert server.status() == [(1, "AVAILABLE", "OK", "")]


@pytest.mark.slow
def test_hot_reload_keeps_the_old_version_until_the_new_one_is_available(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    server = start(
        config_text(model_entry("mixed", base, "specific { versions: 1 }")),
        env={"TFS_STANDIN_LOAD_SECONDS": "0.6"},
    )
    add_version(built, base, 2)
    server.reload(config_text(model_entry("mixed", base, "specific { versions: 2 }")))
    samples = []

    def swapped() -> bool:
        samples.append(server.states())
        return samples[-1] == {1: "END", 2: "AVAILABLE"}

    wait_for(swapped, 15, "version 2 to replace version 1")
    assert all("AVAILABLE" in sample.values() for sample in samples), samples
    assert {1: "AVAILABLE", 2: "LOADING"} in samples


@pytest.mark.slow
def test_a_label_may_only_move_onto_an_available_version(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    add_version(built, base, 2)
    server = start(config_text(model_entry("mixed", base, "specific { versions: 1 }")))
    both = "specific { versions: 1 versions: 2 }"

    error = rpc_error(
        lambda: server.reload(config_text(model_entry("mixed", base, both, stable=2)))
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (
        "Request to assign label to version 2 of model mixed, which is not currently "
        "available for inference"
    )
    time.sleep(1.3)  # longer than one file-system poll: the rejected config did not apply
    assert server.status() == [(1, "AVAILABLE", "OK", "")]
    error = rpc_error(lambda: server.predict(mixed_request(version_label="stable")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    server.reload(config_text(model_entry("mixed", base, both, stable=1)))
    assert server.predict(mixed_request(version_label="stable")).model_spec.version.value == 1
    wait_for(lambda: server.states() == {1: "AVAILABLE", 2: "AVAILABLE"}, 10, "version 2")
    # GetModelStatus reads only model_spec.version: a label, known or not, lists them all
    every = [(2, "AVAILABLE", "OK", ""), (1, "AVAILABLE", "OK", "")]
    assert server.status(label="stable") == every
    assert server.status(label="nope") == every
    server.reload(config_text(model_entry("mixed", base, both, stable=2)))
    assert server.predict(mixed_request(version_label="stable")).model_spec.version.value == 2


@pytest.mark.slow
def test_labels_at_startup_need_the_allow_flag_which_covers_new_labels_only(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    labelled = config_text(model_entry("mixed", base, stable=1))
    refused = start(labelled, ready=False)
    assert refused.wait_exit() != 0
    assert "FAILED_PRECONDITION" in refused.log()

    server = start(labelled, "--allow_version_labels_for_unavailable_models=true")
    assert server.predict(mixed_request(version_label="stable")).model_spec.version.value == 1
    error = rpc_error(lambda: server.reload(config_text(model_entry("mixed", base, stable=3))))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    server.reload(config_text(model_entry("mixed", base, stable=1, canary=3)))
    error = rpc_error(lambda: server.predict(mixed_request(version_label="canary")))
    assert error.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.slow
def test_an_incomplete_savedmodel_never_becomes_available(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    broken = add_version(built, base, 2)
    (broken / "variables" / "variables.data-00000-of-00001").unlink()
    server = start(
        config_text(model_entry("mixed", base, "specific { versions: 1 }")),
        "--max_num_load_retries=2",
    )
    server.reload(config_text(model_entry("mixed", base, "specific { versions: 1 versions: 2 }")))
    samples = []

    def ended() -> bool:
        samples.append(server.status())
        return samples[-1][0][1] == "END"

    wait_for(ended, 15, "version 2 to fail")
    assert not any(entry[:2] == (2, "AVAILABLE") for sample in samples for entry in sample)
    (v2, state, code, message), (v1, *rest) = samples[-1]
    assert (v2, state, code, v1, rest[0]) == (2, "END", "NOT_FOUND", 1, "AVAILABLE")
    assert "variables.data-00000-of-00001" in message
    assert server.log().count("{name: mixed version: 2} failed") == 3  # 1 try + 2 retries

    alone = tmp_path / "alone" / "mixed"
    shutil.copytree(broken, alone / "1")
    failing = start(
        config_text(model_entry("mixed", alone)), "--max_num_load_retries=0", ready=False
    )
    assert failing.wait_exit() == 1
    assert "1 model(s) did not become available" in failing.log()


@pytest.mark.slow
def test_warmup_files_are_checked_when_a_version_loads(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    import tensorflow as tf

    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    good = [warmup_record(mixed_request(batch=1)), warmup_record(mixed_request(batch=3))]

    valid = add_version(built, base, 4) / "assets.extra" / "tf_serving_warmup_requests"
    write_tfrecords(valid, good)
    reference = tmp_path / "reference.tfrecord"
    with tf.io.TFRecordWriter(str(reference)) as writer:
        for record in good:
            writer.write(record)
    assert valid.read_bytes() == reference.read_bytes()

    bad_crc = add_version(built, base, 2) / "assets.extra" / "tf_serving_warmup_requests"
    write_tfrecords(bad_crc, good)
    data = bytearray(bad_crc.read_bytes())
    data[-1] ^= 0xFF
    bad_crc.write_bytes(bytes(data))

    too_many = add_version(built, base, 3) / "assets.extra" / "tf_serving_warmup_requests"
    write_tfrecords(too_many, good[:1] * 1001)

    wrong_input = mixed_request(batch=1)
    wrong_input.inputs["nope"].CopyFrom(wrong_input.inputs.pop("dense"))
    bad_request = add_version(built, base, 5) / "assets.extra" / "tf_serving_warmup_requests"
    write_tfrecords(bad_request, [warmup_record(wrong_input)])

    server = start(
        config_text(model_entry("mixed", base, "specific { versions: 1 }")),
        "--max_num_load_retries=0",
    )
    server.reload(config_text(model_entry("mixed", base, "all {}")))

    def settled() -> bool:
        # one snapshot: two calls could see version 1 alone settled, then the poll's
        # START of versions 2 to 5
        states = server.states()
        return len(states) == 5 and all(s in ("AVAILABLE", "END") for s in states.values())

    wait_for(settled, 20, "every version to settle")
    final = {version: (state, code, message) for version, state, code, message in server.status()}
    assert final[4] == ("AVAILABLE", "OK", "")
    assert final[1] == ("AVAILABLE", "OK", "")
    assert final[2][:2] == ("END", "DATA_LOSS")  # framing: the crc does not match
    assert final[3][:2] == ("END", "INVALID_ARGUMENT")
    assert "exceeds the maximum (1000)" in final[3][2]
    assert final[5][:2] == ("END", "INVALID_ARGUMENT")


@pytest.mark.slow
def test_a_failing_new_version_leaves_the_old_one_serving(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    server = start(config_text(model_entry("mixed", base)), "--max_num_load_retries=1")
    publish(built, base, 2, marker=True)
    wait_for(lambda: server.status()[0][:2] == (2, "END"), 10, "version 2 to fail")
    (_, _, code, message), v1 = server.status()
    assert code == "UNKNOWN"
    assert standin.FAIL_MARKER in message
    assert v1 == (1, "AVAILABLE", "OK", "")
    assert server.predict(mixed_request()).model_spec.version.value == 1


@pytest.mark.slow
def test_predict_checks_the_signature_and_answers_zeros(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    add_version(built, base, 2)
    server = start(
        config_text(model_entry("mixed", base, "specific { versions: 1 versions: 2 }", stable=1)),
        "--allow_version_labels_for_unavailable_models=true",
    )
    wait_for(lambda: server.states() == {1: "AVAILABLE", 2: "AVAILABLE"}, 10, "both versions")

    response = server.predict(mixed_request(batch=2, version=1))
    assert (response.model_spec.name, response.model_spec.version.value) == ("mixed", 1)
    assert response.model_spec.signature_name == "serving_default"
    score = response.outputs["score"]
    assert (score.dtype, [d.size for d in score.tensor_shape.dim]) == (DT_FLOAT, [2])
    assert score.tensor_content == bytes(8)
    assert server.predict(mixed_request(version_label="stable")).model_spec.version.value == 1
    assert server.predict(mixed_request()).model_spec.version.value == 2

    by_count = pb.predict.PredictRequest()
    by_count.model_spec.name = "mixed"
    by_count.model_spec.signature_name = "by_count"
    by_count.inputs["count"].CopyFrom(tensor(DT_INT64, [3], int64_val=[1, 2, 3]))
    twice = server.predict(by_count).outputs["twice"]
    assert (twice.dtype, [d.size for d in twice.tensor_shape.dim]) == (DT_INT64, [3])

    wrong_key = mixed_request()
    wrong_key.inputs["nope"].CopyFrom(wrong_key.inputs.pop("dense"))
    wrong_dtype = mixed_request()
    wrong_dtype.inputs["count"].dtype = DT_FLOAT
    cases = [
        (mixed_request(name="nope"), grpc.StatusCode.NOT_FOUND, "Servable not found"),
        (mixed_request(version=7), grpc.StatusCode.NOT_FOUND, "Specific(mixed, 7)"),
        (mixed_request(version_label="nope"), grpc.StatusCode.INVALID_ARGUMENT, "label"),
        (mixed_request(signature_name="x"), grpc.StatusCode.INVALID_ARGUMENT, '"x" not found'),
        (wrong_key, grpc.StatusCode.INVALID_ARGUMENT, "Sent extra: {nope}"),
        (wrong_dtype, grpc.StatusCode.INVALID_ARGUMENT, "to be int64 but float"),
    ]
    for request, code, text in cases:
        error = rpc_error(lambda request=request: server.predict(request))
        assert (error.code(), text in error.details()) == (code, True), error.details()


@pytest.mark.slow
def test_a_missing_base_path_stalls_version_discovery_for_every_model(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    ghost = tmp_path / "models" / "ghost"
    add_version(built, base, 1)
    server = start(config_text(model_entry("mixed", base)))
    both = config_text(model_entry("mixed", base), model_entry("ghost", ghost))
    reload_errors: list[grpc.RpcError] = []

    def reload_with_deadline() -> None:
        try:
            server.reload(both, timeout=1.0)
        except grpc.RpcError as error:
            reload_errors.append(error)

    worker = threading.Thread(target=reload_with_deadline)
    worker.start()
    worker.join(timeout=10)
    assert [e.code() for e in reload_errors] == [grpc.StatusCode.DEADLINE_EXCEEDED]
    publish(built, base, 2)
    time.sleep(2.2)  # two polls: neither sees version 2 while ghost's base_path is missing
    assert server.status() == [(1, "AVAILABLE", "OK", "")]
    assert "Could not find base path" in server.log()

    add_version(built, ghost, 1)
    wait_for(lambda: server.states() == {1: "END", 2: "AVAILABLE"}, 10, "mixed version 2")
    wait_for(lambda: server.states("ghost") == {1: "AVAILABLE"}, 10, "ghost version 1")


@pytest.mark.slow
def test_root_prefix_and_config_polling_revert_an_rpc_reload(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    root = tmp_path / "root"
    add_version(built, root / "models" / "mixed", 1)
    add_version(built, root / "models" / "other", 1)
    server = start(
        config_text(model_entry("mixed", "/models/mixed")),
        "--model_config_file_poll_wait_seconds=1",
        env={"TFS_STANDIN_ROOT": str(root)},
        config_path=root / "srv" / "cfg" / "models.config",
        config_flag="/srv/cfg/models.config",
    )
    assert server.status() == [(1, "AVAILABLE", "OK", "")]
    server.reload(
        config_text(model_entry("mixed", "/models/mixed"), model_entry("other", "/models/other"))
    )
    assert "Successfully loaded servable version {name: other version: 1}" in server.log()
    wait_for(lambda: server.states("other") == {1: "END"}, 10, "the file poll to drop 'other'")
    assert server.states() == {1: "AVAILABLE"}


@pytest.mark.slow
def test_batching_parameters_are_parsed_at_start_and_checked_at_load(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    config = config_text(model_entry("mixed", base))
    malformed = tmp_path / "malformed.txt"
    malformed.write_text("max_batch_size: 8")  # a wrapper field needs { value: 8 }
    mismatched = tmp_path / "mismatched.txt"
    mismatched.write_text(
        "max_batch_size { value: 32 } allowed_batch_sizes: 8 allowed_batch_sizes: 16"
    )
    for path, message in (
        (malformed, "Invalid protobuf file"),
        (mismatched, "must match max_batch_size"),
    ):
        server = start(
            config,
            "--enable_batching=true",
            f"--batching_parameters_file={path}",
            "--max_num_load_retries=0",
            ready=False,
        )
        assert server.wait_exit() == 1
        assert message in server.log()

    own = add_version(built, base, 2) / "batching_params.pbtxt"
    own.write_text("max_batch_size { value: 0 }")
    server = start(
        config_text(model_entry("mixed", base, "all {}")),
        "--enable_batching=true",
        "--enable_per_model_batching_parameters=true",
        f"--batching_parameters_file={mismatched}",
        "--max_num_load_retries=0",
        ready=False,
    )
    assert server.wait_exit() == 1  # the highest version is awaited at startup
    assert "input_batch_size_limit must be positive; was 0" in server.log()
    own.write_text("max_batch_size { value: 16 } allowed_batch_sizes: 8 allowed_batch_sizes: 16")
    server = start(
        config_text(model_entry("mixed", base, "all {}")),
        "--enable_batching=true",
        "--enable_per_model_batching_parameters=true",
        f"--batching_parameters_file={mismatched}",  # versions without a file: not batched
    )
    wait_for(lambda: server.states() == {1: "AVAILABLE", 2: "AVAILABLE"}, 10, "both versions")


# --------------------------------------------------------------------------------------
# rules mirrored from TF Serving 2.18.0 (each docstring names the source)
# --------------------------------------------------------------------------------------


def batching(text: str) -> Any:
    from google.protobuf import text_format

    return text_format.Parse(text, standin.batching_parameters_class()())


def refused_batching(text: str) -> str:
    with pytest.raises(standin.TfError) as caught:
        standin.check_batching_parameters(batching(text))
    assert caught.value.code == "INVALID_ARGUMENT"
    return caught.value.message


def test_allowed_batch_sizes_end_at_max_batch_size_with_or_without_splitting() -> None:
    """bundle_factory_util.cc WrapSessionForBatching: the last allowed size must equal
    max_batch_size (1000 when unset) whether or not large batch splitting is on."""
    split = "enable_large_batch_splitting { value: true } max_execution_batch_size { value: 4 } "
    standin.check_batching_parameters(
        batching(
            "max_batch_size { value: 8 } allowed_batch_sizes: 4 allowed_batch_sizes: 8 " + split
        )
    )
    message = refused_batching(
        "max_batch_size { value: 8 } allowed_batch_sizes: 2 allowed_batch_sizes: 4 " + split
    )
    assert message == (
        "Last entry in allowed_batch_sizes must match max_batch_size; last entry was 4; expected 8"
    )
    assert "expected 1000" in refused_batching("allowed_batch_sizes: 8")
    standin.check_batching_parameters(batching("allowed_batch_sizes: 10 allowed_batch_sizes: 1000"))


def test_queue_options_are_checked_as_add_queue_does() -> None:
    """bundle_factory_util.h GetQueueOptions and shared_batch_scheduler.h AddQueue: with
    splitting, max_execution_batch_size (else max_batch_size's value, 0 when unset) may
    not exceed max_batch_size (1000 when unset); positive limit and queue length,
    non-negative timeout. A 0-sized execution batch is refused (stricter than TF)."""
    split = "enable_large_batch_splitting { value: true } "
    assert "greater than or equal to max_execution_batch_size (8 < 16)" in refused_batching(
        split + "max_batch_size { value: 8 } max_execution_batch_size { value: 16 }"
    )
    standin.check_batching_parameters(batching(split + "max_execution_batch_size { value: 16 }"))
    standin.check_batching_parameters(batching(split + "max_batch_size { value: 16 }"))
    assert "0-sized batches" in refused_batching(split)
    assert "input_batch_size_limit must be positive; was 0" in refused_batching(
        "max_batch_size { value: 0 }"
    )
    assert "batch_timeout_micros must be non-negative" in refused_batching(
        "batch_timeout_micros { value: -1 }"
    )
    assert "max_enqueued_batches must be positive" in refused_batching(
        "max_enqueued_batches { value: 0 }"
    )
    # the thread pool is checked once, at start (SharedBatchScheduler::Create), not per queue
    standin.check_batching_parameters(batching("num_batch_threads { value: 0 }"))
    with pytest.raises(standin.TfError, match="num_batch_threads must be positive; was 0"):
        standin.check_scheduler_parameters(batching("num_batch_threads { value: 0 }"))
    standin.check_scheduler_parameters(batching(""))


def test_a_batched_run_is_sized_by_its_inputs_first_dimension() -> None:
    """batching_util.h ComputeTensorBatchSize and shared_batch_scheduler.h
    ValidateBatchTaskQueueCapacity: inputs of rank >= 1 with one 0th-dimension size, at
    most max_batch_size (also with splitting)."""
    limit = batching("max_batch_size { value: 4 }")
    standin.check_batched_run(limit, [[4, 3], [4]])
    cases = [
        ([[5, 3], [5]], "Task size 5 is larger than maximum input batch size 4"),
        ([[2], [3]], "must have equal 0th-dimension size"),
        ([[2], []], "must have at least one dimension"),
        ([], "must have at least one input tensor"),
    ]
    for dims, message in cases:
        with pytest.raises(standin.TfError, match=message):
            standin.check_batched_run(limit, dims)
    split = batching(
        "max_batch_size { value: 4 } enable_large_batch_splitting { value: true } "
        "max_execution_batch_size { value: 2 }"
    )
    standin.check_batched_run(split, [[4]])
    with pytest.raises(standin.TfError, match="Task size 5"):
        standin.check_batched_run(split, [[5]])


def test_channel_arguments_are_parsed_as_the_server_splits_them() -> None:
    """server.cc parseGrpcChannelArgs: ',' then '=' with empty pieces kept (an empty piece
    or one without '=' crashes the server, an extra '=' is dropped: all refused here);
    int32 values as ints."""
    assert standin._channel_arguments("") == []
    assert standin._channel_arguments("grpc.a=5,grpc.b=x,grpc.c=4294967296") == [
        ("grpc.a", 5),
        ("grpc.b", "x"),
        ("grpc.c", "4294967296"),
    ]
    for bad in ("grpc.a=5,", "grpc.a", "grpc.a=1=2", " grpc.a=1", "=1"):
        with pytest.raises(standin.FlagError):
            standin._channel_arguments(bad)


def _core_with_states() -> Any:
    options = standin.LoadOptions(frozenset({"serve"}), True, False, False, None)
    core = standin.Core(
        flags=standin.parse_flags([]), load_seconds=0, load_options=options, stop=threading.Event()
    )
    core.monitor = {"m": {1: ("AVAILABLE", "OK", "", 1), 2: ("END", "NOT_FOUND", "gone", 2)}}
    core.labels = {"m": {"stable": 1}}
    return core


def test_model_status_ignores_the_version_label() -> None:
    """get_model_status_impl.cc GetModelStatusWithModelSpec reads only model_spec.version;
    http_rest_api_handler.cc ProcessModelStatusRequest passes a REST label to it."""
    core = _core_with_states()
    every = [(2, "END", "NOT_FOUND", "gone"), (1, "AVAILABLE", "OK", "")]
    for label in ("stable", "no_such_label", ""):
        request = pb.status.GetModelStatusRequest()
        request.model_spec.name = "m"
        request.model_spec.version_label = label
        response = standin.model_status(core, request)
        assert [
            (
                e.version,
                pb.status.ModelVersionStatus.State.Name(e.state),
                standin._code_name(e.status.error_code),
                e.status.error_message,
            )
            for e in response.model_version_status
        ] == every
        code, body = standin.rest_status(core, f"/v1/models/m/labels/{label or 'x'}")
        assert (code, [e["version"] for e in body["model_version_status"]]) == (200, ["2", "1"])
    assert standin.rest_status(core, "/v1/models/m/versions/2")[1]["model_version_status"][0][
        "status"
    ] == {"error_code": "NOT_FOUND", "error_message": "gone"}
    assert standin.rest_status(core, "/v1/models/m/versions/3") == (
        404,
        {"error": "Could not find version 3 of model m"},
    )
    assert standin.rest_status(core, "/v1/models") == (
        400,
        {"error": "Missing model name in request."},
    )
    assert standin.rest_status(core, "/v1/models/m/versions/x") == (
        400,
        {"error": "Malformed request: GET /v1/models/m/versions/x"},
    )


def _start_and_exit(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(STANDIN), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TFS_STANDIN_BIND": "127.0.0.1", **(env or {})},
    )


def test_start_up_refusals(tmp_path: Path) -> None:
    """server.cc BuildAndStart, 2.18.0: a batching file needs --enable_batching; the three
    parallelism flags may not all be set; the session, platform, monitoring and SSL files
    must parse as their messages (monitoring only with the REST API on; SSL aborts);
    ALTS excludes SSL; some gRPC port or socket; server.cc LoadCustomModelConfig for a
    custom_model_config. Each server exits 1 without serving."""
    empty = tmp_path / "empty.config"
    empty.write_text("model_config_list { }\n")
    files = {
        "batching": "max_batch_size { value: 8 }",
        "bad_monitoring": "prometheus_config { enable: yes }",
        "bad_ssl": "server_key: 1 2",
        "bad_session": "gpu_options { allow_groth: true }",
        "bad_platform": 'platform_configs { key: "tensorflow" value { nope: 1 } }',
        "threads": "num_batch_threads { value: 0 }",
        "custom": "custom_model_config { }",
        "ssl": 'server_key: "k" server_cert: "c"',
    }
    paths = {}
    for name, text in files.items():
        paths[name] = tmp_path / f"{name}.txt"
        paths[name].write_text(text + "\n")
    ports = iter(free_ports(2 * 12))
    common = [f"--model_config_file={empty}"]
    cases = {
        "batching file alone": (
            [f"--batching_parameters_file={paths['batching']}"],
            "batching_parameters_file is set without setting server_options.enable_batching",
        ),
        "three parallelism flags": (
            [
                "--tensorflow_session_parallelism=2",
                "--tensorflow_intra_op_parallelism=2",
                "--tensorflow_inter_op_parallelism=2",
            ],
            "You cannot configure all.",
        ),
        "monitoring": ([f"--monitoring_config_file={paths['bad_monitoring']}"], "Invalid"),
        "ssl": ([f"--ssl_config_file={paths['bad_ssl']}"], "Invalid protobuf file"),
        "session": ([f"--tensorflow_session_config_file={paths['bad_session']}"], "Invalid"),
        "platform": ([f"--platform_config_file={paths['bad_platform']}"], "Invalid"),
        "scheduler": (
            ["--enable_batching", f"--batching_parameters_file={paths['threads']}"],
            "num_batch_threads must be positive; was 0",
        ),
        "alts": (
            ["--use_alts_credentials=true", f"--ssl_config_file={paths['ssl']}"],
            "Either use_alts_credentials must be false or ssl_config_file must be empty.",
        ),
        "no grpc port": (["--port=0"], "At least one of server_options.grpc_port"),
        "channel arguments": (["--grpc_channel_arguments=grpc.a=1,"], "is not key=value"),
        "custom model config": (
            [f"--model_config_file={paths['custom']}"],
            "ModelServer does not yet support custom model config.",
        ),
    }
    running = {}
    for name, (args, _) in cases.items():
        port_args = [f"--port={next(ports)}", f"--rest_api_port={next(ports)}"]
        if name == "no grpc port":
            port_args = ["--rest_api_port=0"]
        running[name] = _start_and_exit([*port_args, *common, *args])
    for name, (_, message) in cases.items():
        proc = running[name]
        _, stderr = proc.communicate(timeout=60)
        assert (name, proc.returncode) == (name, 1), stderr
        assert message in stderr, (name, stderr)
        assert "Running gRPC ModelServer" not in stderr, name


def test_what_the_start_up_rules_let_through(tmp_path: Path, start: Callable[..., Server]) -> None:
    """server.cc BuildAndStart: intra and inter parallelism together are fine (only all
    three are refused); --monitoring_config_file is read only when the REST API is on;
    --enable_batching without a file batches with the defaults."""
    bad_monitoring = tmp_path / "monitoring.txt"
    bad_monitoring.write_text("prometheus_config { enable: yes }\n")
    server = start(
        "model_config_list { }\n",
        "--tensorflow_intra_op_parallelism=2",
        "--tensorflow_inter_op_parallelism=2",
        "--rest_api_port=0",
        f"--monitoring_config_file={bad_monitoring}",
        "--enable_batching=true",
    )
    assert server.proc.poll() is None
    assert not port_open(server.rest_port)


@pytest.mark.slow
def test_warmup_and_predict_go_through_the_batch_queue(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    """saved_model_bundle_factory.cc: a batched version's session is the batching session,
    and RunSavedModelWarmup (saved_model_warmup_util.cc) and Predict both run through it:
    a warmup request larger than max_batch_size fails the load (shared_batch_scheduler.h
    ValidateBatchTaskQueueCapacity); with splitting, max_batch_size is still the limit and
    allowed_batch_sizes still ends at it. Per-version files (GetPerModelBatchingParams)
    give each version its own queue; a version without one is unbatched."""
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)  # the first config awaits the highest version: keep it good
    warm3 = [warmup_record(mixed_request(batch=3))]
    params = {
        2: "max_batch_size { value: 2 }",  # warmup of 3 refused
        3: (  # the rule the stand-in used to get wrong: last allowed == max_batch_size
            "max_batch_size { value: 4 } allowed_batch_sizes: 2 allowed_batch_sizes: 4 "
            "enable_large_batch_splitting { value: true } max_execution_batch_size { value: 2 }"
        ),
        4: (
            "max_batch_size { value: 4 } allowed_batch_sizes: 1 allowed_batch_sizes: 2 "
            "enable_large_batch_splitting { value: true } max_execution_batch_size { value: 2 }"
        ),
        5: None,  # no file: not batched
    }
    for number, text in params.items():
        target = add_version(built, base, number)
        write_tfrecords(target / "assets.extra" / "tf_serving_warmup_requests", warm3)
        if text is not None:
            (target / "batching_params.pbtxt").write_text(text + "\n")
    small = add_version(built, base, 6)
    (small / "batching_params.pbtxt").write_text("max_batch_size { value: 2 }\n")
    server = start(
        config_text(model_entry("mixed", base, "specific { versions: 1 }")),
        "--enable_batching=true",
        "--enable_per_model_batching_parameters=true",
        "--max_num_load_retries=0",
    )
    server.reload(config_text(model_entry("mixed", base, "all {}")))

    def settled() -> bool:
        states = server.states()  # one snapshot
        return len(states) == 6 and all(s in ("AVAILABLE", "END") for s in states.values())

    wait_for(settled, 30, "every version to settle")
    final = {version: (state, code, message) for version, state, code, message in server.status()}
    assert final[2][:2] == ("END", "INVALID_ARGUMENT")
    assert "Task size 3 is larger than maximum input batch size 2" in final[2][2]
    assert final[3] == ("AVAILABLE", "OK", "")
    assert final[4][:2] == ("END", "INVALID_ARGUMENT")
    assert "last entry was 2; expected 4" in final[4][2]
    assert final[5] == ("AVAILABLE", "OK", "")
    assert final[6] == ("AVAILABLE", "OK", "")

    assert server.predict(mixed_request(batch=2, version=6)).model_spec.version.value == 6
    error = rpc_error(lambda: server.predict(mixed_request(batch=3, version=6)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Task size 3 is larger than maximum input batch size 2" in error.details()
    assert server.predict(mixed_request(batch=3, version=5)).model_spec.version.value == 5

    logged = config_text(model_entry("mixed", base, "all {}")).replace(
        'model_platform: "tensorflow" ',
        'model_platform: "tensorflow" logging_config { sampling_config { sampling_rate: 1 } } ',
    )
    error = rpc_error(lambda: server.reload(logged))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "No request-logger-creator provided.",
    )


def _self_signed(tmp_path: Path) -> tuple[str, str]:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key.read_text(), cert.read_text()


def _text_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid text-format string


@pytest.mark.slow
def test_ssl_monitoring_and_platform_files_take_effect(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    """server.cc BuildServerCredentials: with an SSLConfig the gRPC port speaks TLS only;
    http_server.cc CreateAndStartHttpServer: prometheus_config.enable serves the page at
    its path on the REST port; BuildAndStart with --platform_config_file: the
    PlatformConfigMap's SessionBundleConfig replaces the flags (here its batching)."""
    base = tmp_path / "models" / "mixed"
    add_version(built, base, 1)
    key, cert = _self_signed(tmp_path)
    ssl = tmp_path / "ssl.config"
    ssl.write_text(f"server_key: {_text_string(key)}\nserver_cert: {_text_string(cert)}\n")
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true path: "/metrics/here" }\n')
    server = start(
        config_text(model_entry("mixed", base)),
        f"--ssl_config_file={ssl}",
        f"--monitoring_config_file={monitoring}",
    )
    insecure = rpc_error(server.status)
    assert insecure.code() == grpc.StatusCode.UNAVAILABLE
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.encode())
    with grpc.secure_channel(f"127.0.0.1:{server.grpc_port}", credentials) as channel:
        request = pb.status.GetModelStatusRequest()
        request.model_spec.name = "mixed"
        stub = pb.model_service_grpc.ModelServiceStub(channel)
        reply = stub.GetModelStatus(request, timeout=10)
        assert [e.version for e in reply.model_version_status] == [1]
    url = f"http://127.0.0.1:{server.rest_port}/metrics/here"
    with urllib.request.urlopen(url, timeout=5) as page:
        text = page.read().decode()
    assert f'load_attempt_count{{model_path="{base}/1",status="success"}} 1' in text
    assert server.rest("/v1/models/mixed")[0] == 200

    platform = tmp_path / "platform.config"
    platform.write_text(
        'platform_configs { key: "tensorflow" value { source_adapter_config {\n'
        "  [type.googleapis.com/tensorflow.serving.SavedModelBundleSourceAdapterConfig] {\n"
        "    legacy_config { batching_parameters { max_batch_size { value: 2 } }\n"
        '      saved_model_tags: "serve" } } } } }\n'
    )
    server = start(
        config_text(model_entry("mixed", base)),
        f"--platform_config_file={platform}",
        "--enable_batching=false",  # ignored: the platform config decides
    )
    assert server.predict(mixed_request(batch=2)).model_spec.version.value == 1
    error = rpc_error(lambda: server.predict(mixed_request(batch=3)))
    assert "Task size 3 is larger than maximum input batch size 2" in error.details()


def _loading_together(server: Server, models: tuple[str, ...]) -> bool:
    states = [server.states(name) for name in models]
    return sum("LOADING" in s.values() for s in states) > 1


@pytest.mark.slow
def test_loads_run_one_at_a_time_without_load_threads(
    built: Path, tmp_path: Path, start: Callable[..., Server]
) -> None:
    """basic_manager.cc CreateExecutor: --num_load_threads=0 (the default) loads inline in
    the manager thread, one version at a time across all models; with threads, loads of
    different models overlap. The first config loads with num_initial_load_threads
    (server_core.h; load_servables_fast.cc ConnectSourcesWithFastInitialLoad), so the
    initial loads overlap either way. Load times come from the stand-in's test-only
    TFS_STANDIN_LOAD_SECONDS file in each version directory."""
    models = ("a", "b", "c")
    servers = {}
    for threads in (0, 3):
        root = tmp_path / f"threads-{threads}"
        for name in models:
            first = add_version(built, root / name, 1)
            (first / standin.LOAD_SECONDS_NAME).write_text("1.0\n")
        servers[threads] = start(
            config_text(*(model_entry(name, root / name) for name in models)),
            f"--num_load_threads={threads}",
            "--file_system_poll_wait_seconds=1",
        )
    for threads, server in servers.items():
        log = server.log()
        first_done = log.index("Successfully loaded")
        assert all(log.index(f"{{name: {name} version: 1}}") < first_done for name in models)
        root = tmp_path / f"threads-{threads}"
        for name in models:
            staging = add_version(built, root / name, ".staging-2")
            (staging / standin.LOAD_SECONDS_NAME).write_text("1.0\n")
            staging.rename(root / name / "2")
    samples: dict[int, list[bool]] = {0: [], 3: []}

    def all_swapped() -> bool:
        done = True
        for threads, server in servers.items():
            samples[threads].append(_loading_together(server, models))
            done = done and all(server.states(n).get(2) == "AVAILABLE" for n in models)
        return done

    wait_for(all_swapped, 30, "version 2 of every model on both servers")
    assert not any(samples[0]), "with --num_load_threads=0 two loads overlapped"
    assert any(samples[3]), "with --num_load_threads=3 no two loads overlapped"


def _signatures(**outputs_by_name: tuple[str, tuple[str, ...]]) -> dict[str, Any]:
    graph = pb.saved_model.SavedModel().meta_graphs.add()
    for name, (method, outputs) in outputs_by_name.items():
        signature = graph.signature_def[name]
        signature.method_name = method
        signature.inputs["inputs"].dtype = DT_STRING
        for output in outputs:
            signature.outputs[output].dtype = DT_FLOAT
    return dict(graph.signature_def)


def test_classify_and_regress_warmup_records_need_fitting_signatures() -> None:
    """classifier.cc GetClassificationSignatureDef/PreProcessClassification, regressor.cc
    PreProcessRegression, predict_util.cc RunPredict: the signature a classify or regress
    warmup record names must exist with one input and the expected outputs; with
    --enable_signature_method_name_check its method_name must match."""
    signatures = _signatures(
        serving_default=(standin.CLASSIFY_METHOD, ("classes", "scores")),
        reg=(standin.REGRESS_METHOD, ("outputs",)),
        odd=(standin.PREDICT_METHOD, ("probabilities",)),
    )
    check = standin.check_example_signature
    check(signatures, "", "classify_log", True)
    check(signatures, "reg", "regress_log", True)
    cases = [
        ("nope", "classify_log", False, "No signature was found with the name: nope"),
        ("odd", "classify_log", False, 'at least one of "classes" or "scores"'),
        ("odd", "regress_log", False, "No regression outputs"),
        ("", "regress_log", False, "Expected one output Tensor."),
        ("reg", "classify_log", True, "method_name to be tensorflow/serving/classify"),
    ]
    for name, kind, method_check, message in cases:
        with pytest.raises(standin.TfError, match=message):
            check(signatures, name, kind, method_check)
    request = pb.predict.PredictRequest()
    request.model_spec.signature_name = "odd"
    request.inputs["inputs"].dtype = DT_STRING
    standin.check_predict_request(signatures, request, True)
    weird = _signatures(serving_default=("custom/method", ("x",)))
    request.model_spec.signature_name = ""
    standin.check_predict_request(weird, request, False)
    with pytest.raises(standin.TfError, match="Expected prediction signature method_name"):
        standin.check_predict_request(weird, request, True)
