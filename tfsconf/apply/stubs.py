"""TF Serving's gRPC services as tfsconf calls them, without generated service code.

Each method is grpc's generic unary call on the path TF Serving registers
(``/tensorflow.serving.<Service>/<Method>``, from apis/model_service.proto and
apis/prediction_service.proto), with tfsconf's own message classes for the bytes. So the
base install needs grpcio but neither grpcio-tools nor tensorflow-serving-api.
"""

from __future__ import annotations

from typing import Any

from tfsconf.warmup.protos import tf_protos

MODEL_SERVICE = "/tensorflow.serving.ModelService/"
PREDICTION_SERVICE = "/tensorflow.serving.PredictionService/"


def _serialize(message: Any) -> bytes:
    # any message with the same wire format will do (the tests' stand-in passes its own)
    return bytes(message.SerializeToString())


def _unary(channel: Any, path: str, response_type: Any) -> Any:
    return channel.unary_unary(
        path, request_serializer=_serialize, response_deserializer=response_type.FromString
    )


class ModelServiceStub:
    """tensorflow.serving.ModelService: GetModelStatus, HandleReloadConfigRequest."""

    def __init__(self, channel: Any) -> None:
        apis = tf_protos().serving
        self.GetModelStatus = _unary(
            channel, MODEL_SERVICE + "GetModelStatus", apis.GetModelStatusResponse
        )
        self.HandleReloadConfigRequest = _unary(
            channel, MODEL_SERVICE + "HandleReloadConfigRequest", apis.ReloadConfigResponse
        )


class PredictionServiceStub:
    """tensorflow.serving.PredictionService: Predict, Classify, Regress, MultiInference."""

    def __init__(self, channel: Any) -> None:
        apis = tf_protos().serving
        self.Predict = _unary(channel, PREDICTION_SERVICE + "Predict", apis.PredictResponse)
        self.Classify = _unary(
            channel, PREDICTION_SERVICE + "Classify", apis.ClassificationResponse
        )
        self.Regress = _unary(channel, PREDICTION_SERVICE + "Regress", apis.RegressionResponse)
        self.MultiInference = _unary(
            channel, PREDICTION_SERVICE + "MultiInference", apis.MultiInferenceResponse
        )
