"""TensorFlow's and TF Serving's protobuf messages, from tfsconf's own .proto descriptions.

tfsconf/protos/tf_*.proto and serving_*.proto describe the messages tfsconf reads and
writes (SavedModel, TensorProto, tf.Example, PredictionLog and the requests, the model
server config, the ModelService messages) with TensorFlow's and TF Serving's field names,
numbers and types, in tfsconf's own proto package. The bytes and the text format are the
same as the official classes', so no command needs TensorFlow or tensorflow-serving-api
installed; ``warmup verify --replay`` is the one that runs TensorFlow itself.
tests/protos compares every message with the official descriptor, field by field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tfsconf.protos import (
    serving_apis_pb2,
    serving_config_pb2,
    tf_example_pb2,
    tf_saved_model_pb2,
    tf_tensor_bundle_pb2,
    tf_tensor_pb2,
)


@dataclass(frozen=True, slots=True)
class TfProtos:
    """The generated modules, by role (typed Any: the generated code has no stubs here).
    Several roles share one module: the .proto files group related messages."""

    tensor: Any
    tensor_shape: Any
    types: Any
    example: Any
    meta_graph: Any
    saved_model: Any
    tensor_bundle: Any
    predict: Any
    prediction_log: Any
    serving: Any
    server_config: Any


_TF_PROTOS = TfProtos(
    tensor=tf_tensor_pb2,
    tensor_shape=tf_tensor_pb2,
    types=tf_tensor_pb2,
    example=tf_example_pb2,
    meta_graph=tf_saved_model_pb2,
    saved_model=tf_saved_model_pb2,
    tensor_bundle=tf_tensor_bundle_pb2,
    predict=serving_apis_pb2,
    prediction_log=serving_apis_pb2,
    serving=serving_apis_pb2,
    server_config=serving_config_pb2,
)
"""A constant: the modules are imported with this one (protobuf only, about 20 ms), which
only the warmup tools, modelcheck and apply's gRPC calls do, each importing it lazily."""


def tf_protos() -> TfProtos:
    return _TF_PROTOS
