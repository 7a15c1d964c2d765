"""tfsconf's generic gRPC stubs against a server registered with tensorflow-serving-api's own
service definitions and classes (on 127.0.0.1): the method paths and the bytes both match."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from official import official_modules

from tfsconf.apply import serving
from tfsconf.apply.stubs import ModelServiceStub, PredictionServiceStub
from tfsconf.warmup.protos import tf_protos

MODELS_CONFIG = """
model_config_list {
  config {
    name: "ctr" base_path: "/srv/m/ctr" model_platform: "tensorflow"
    model_version_policy { specific { versions: 7 } }
    version_labels { key: "stable" value: 7 }
  }
}
"""


def _official(name: str) -> Any:
    official_modules()
    import importlib

    return importlib.import_module(f"tensorflow_serving.apis.{name}")


def _servicers() -> tuple[type, type]:
    return (
        _official("model_service_pb2_grpc").ModelServiceServicer,
        _official("prediction_service_pb2_grpc").PredictionServiceServicer,
    )


class Recorder(*_servicers()):  # type: ignore[misc]
    """Answers with the official classes and keeps what it received (the other methods
    are the official servicers' UNIMPLEMENTED defaults)."""

    def __init__(self) -> None:
        self.received: list[Any] = []

    def GetModelStatus(self, request: Any, context: Any) -> Any:
        self.received.append(request)
        status = _official("get_model_status_pb2")
        response = status.GetModelStatusResponse()
        entry = response.model_version_status.add(version=7, state=30)
        entry.status.error_message = ""
        return response

    def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:
        self.received.append(request)
        response = _official("model_management_pb2").ReloadConfigResponse()
        response.status.error_code = 9
        response.status.error_message = "refused on purpose"
        return response

    def Predict(self, request: Any, context: Any) -> Any:
        self.received.append(request)
        response = _official("predict_pb2").PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 7
        response.outputs["y"].CopyFrom(request.inputs["x"])
        return response


@pytest.fixture
def server() -> Iterator[tuple[Recorder, int]]:
    model_service = _official("model_service_pb2_grpc")
    prediction_service = _official("prediction_service_pb2_grpc")
    recorder = Recorder()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    model_service.add_ModelServiceServicer_to_server(recorder, grpc_server)
    prediction_service.add_PredictionServiceServicer_to_server(recorder, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        yield recorder, port
    finally:
        grpc_server.stop(grace=None)


def test_reload_and_status_reach_the_official_service(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    endpoint = serving.Endpoint("127.0.0.1", port)
    with pytest.raises(serving.ServingError, match="error 9: refused on purpose"):
        serving.reload(endpoint, MODELS_CONFIG, deadline=10)
    sent = recorder.received[-1]
    assert type(sent).DESCRIPTOR.full_name == "tensorflow.serving.ReloadConfigRequest"
    model = sent.config.model_config_list.config[0]
    assert (model.name, list(model.model_version_policy.specific.versions)) == ("ctr", [7])
    assert dict(model.version_labels) == {"stable": 7}
    assert serving.model_status(endpoint, "ctr", timeout=10) == {7: ("AVAILABLE", "")}
    assert recorder.received[-1].model_spec.name == "ctr"


def test_predict_round_trip(server: tuple[Recorder, int]) -> None:
    recorder, port = server
    apis = tf_protos().serving
    request = apis.PredictRequest()
    request.model_spec.name = "ctr"
    request.inputs["x"].dtype = 1
    request.inputs["x"].float_val.extend([0.5, 1.5])
    request.inputs["x"].tensor_shape.dim.add(size=2)
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        response = PredictionServiceStub(channel).Predict(request, timeout=10)
        assert ModelServiceStub(channel).GetModelStatus is not None
    assert type(response).DESCRIPTOR.full_name == "tfsconf.wire.tensorflow.serving.PredictResponse"
    assert response.model_spec.version.value == 7
    assert list(response.outputs["y"].float_val) == [0.5, 1.5]
    assert recorder.received[-1].SerializeToString() == request.SerializeToString()
