"""TensorFlow and TF Serving protobuf modules, without starting TensorFlow.

The generated ``*_pb2`` modules live inside the ``tensorflow`` package, whose
``__init__.py`` loads the whole runtime (seconds, native libraries, log noise). The pb2
files themselves only need protobuf. When TensorFlow is not imported yet, a bare package
module stands in for ``tensorflow`` just long enough to import the pb2 modules, and is then
removed again, so a later ``import tensorflow`` (``warmup verify --replay``) still runs the
real package. When TensorFlow is already imported, the normal modules are used.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from tfsconf.errors import UserError

T = TypeVar("T")

_PROTO_MODULES = {
    "tensor": "tensorflow.core.framework.tensor_pb2",
    "tensor_shape": "tensorflow.core.framework.tensor_shape_pb2",
    "types": "tensorflow.core.framework.types_pb2",
    "example": "tensorflow.core.example.example_pb2",
    "meta_graph": "tensorflow.core.protobuf.meta_graph_pb2",
    "saved_model": "tensorflow.core.protobuf.saved_model_pb2",
    "tensor_bundle": "tensorflow.core.protobuf.tensor_bundle_pb2",
    "predict": "tensorflow_serving.apis.predict_pb2",
    "prediction_log": "tensorflow_serving.apis.prediction_log_pb2",
}


@dataclass(frozen=True, slots=True)
class TfProtos:
    """The generated modules tfsconf reads and writes (typed Any: they have no stubs)."""

    tensor: Any
    tensor_shape: Any
    types: Any
    example: Any
    meta_graph: Any
    saved_model: Any
    tensor_bundle: Any
    predict: Any
    prediction_log: Any


@cache
def tf_protos() -> TfProtos:
    """Import the protobuf modules once per process, without initialising TensorFlow."""
    return import_without_tensorflow(_import_all)


_SERVICE_MODULES = {
    "model_service": "tensorflow_serving.apis.model_service_pb2",
    "model_service_grpc": "tensorflow_serving.apis.model_service_pb2_grpc",
    "model_management": "tensorflow_serving.apis.model_management_pb2",
    "get_model_status": "tensorflow_serving.apis.get_model_status_pb2",
    "prediction_service_grpc": "tensorflow_serving.apis.prediction_service_pb2_grpc",
}


@cache
def serving_services() -> dict[str, Any]:
    """TF Serving's gRPC service modules (ModelService, PredictionService), likewise."""
    tf_protos()
    return import_without_tensorflow(
        lambda: {key: importlib.import_module(name) for key, name in _SERVICE_MODULES.items()}
    )


def import_without_tensorflow(load: Callable[[], T]) -> T:
    """Run `load` (imports of generated pb2 modules under ``tensorflow``) with a bare
    package standing in for ``tensorflow`` unless TensorFlow is imported already."""
    if "tensorflow" in sys.modules:
        return load()
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the tensorflow package is not installed: its protobuf definitions are needed",
            hint="install tensorflow-serving-api (it brings tensorflow)",
        )
    stand_in = types.ModuleType("tensorflow", "stand-in: only the pb2 modules are imported")
    stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None, is_package=True)
    stand_in.__spec__.submodule_search_locations = stand_in.__path__
    sys.modules["tensorflow"] = stand_in
    try:
        return load()
    finally:
        # Only the stand-in goes: the pb2 modules stay registered under their real names,
        # and a later real `import tensorflow` reuses them instead of loading them twice.
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]


def _import_all() -> TfProtos:
    modules = {key: importlib.import_module(name) for key, name in _PROTO_MODULES.items()}
    return TfProtos(**modules)
