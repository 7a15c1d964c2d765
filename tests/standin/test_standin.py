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


def test_unknown_flag_and_equal_ports_exit_1(tmp_path: Path) -> None:
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
    assert "cannot parse" in done.stderr


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
    assert server.rest("/v1/models/mixed/labels/stable") == (
        404,
        {"error": "Unrecognized servable version label: stable"},
    )
    assert server.rest("/v1/other")[0] == 404
    error = rpc_error(lambda: server.status("nope"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert server.stop() == 0


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
    for part in ("stable", "version 2", "model mixed", "not currently available"):
        assert part in error.details()
    time.sleep(1.3)  # longer than one file-system poll: the rejected config did not apply
    assert server.status() == [(1, "AVAILABLE", "OK", "")]
    error = rpc_error(lambda: server.predict(mixed_request(version_label="stable")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT

    server.reload(config_text(model_entry("mixed", base, both, stable=1)))
    assert server.status(label="stable") == [(1, "AVAILABLE", "OK", "")]
    assert server.rest("/v1/models/mixed/labels/stable")[1]["model_version_status"][0] == {
        "version": "1",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }
    assert server.predict(mixed_request(version_label="stable")).model_spec.version.value == 1
    wait_for(lambda: server.states() == {1: "AVAILABLE", 2: "AVAILABLE"}, 10, "version 2")
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
    wait_for(
        lambda: (
            all(s in ("AVAILABLE", "END") for s in server.states().values())
            and len(server.states()) == 5
        ),
        20,
        "every version to settle",
    )
    final = {version: (state, code, message) for version, state, code, message in server.status()}
    assert final[4] == ("AVAILABLE", "OK", "")
    assert final[1] == ("AVAILABLE", "OK", "")
    assert final[2][:2] == ("END", "DATA_LOSS")
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
    for path, message in ((malformed, "cannot parse"), (mismatched, "must match max_batch_size")):
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
    assert "max_batch_size must be positive" in server.log()
    own.write_text("max_batch_size { value: 16 } allowed_batch_sizes: 8 allowed_batch_sizes: 16")
    server = start(
        config_text(model_entry("mixed", base, "all {}")),
        "--enable_batching=true",
        "--enable_per_model_batching_parameters=true",
        f"--batching_parameters_file={mismatched}",  # versions without a file: not batched
    )
    wait_for(lambda: server.states() == {1: "AVAILABLE", 2: "AVAILABLE"}, 10, "both versions")
