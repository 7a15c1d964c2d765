"""tensorflow-serving-api's and TensorFlow's own generated modules (dev install only), imported
without initialising TensorFlow: the pb2 files need only protobuf, but they live inside the
``tensorflow`` package, whose __init__ loads the whole runtime. A bare package module stands
in for ``tensorflow`` while they import (unless TensorFlow is imported already)."""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from functools import cache
from typing import Any

OFFICIAL_MODULES = (
    "tensorflow.core.framework.types_pb2",
    "tensorflow.core.framework.tensor_shape_pb2",
    "tensorflow.core.framework.resource_handle_pb2",
    "tensorflow.core.framework.tensor_pb2",
    "tensorflow.core.framework.versions_pb2",
    "tensorflow.core.framework.tensor_slice_pb2",
    "tensorflow.core.example.feature_pb2",
    "tensorflow.core.example.example_pb2",
    "tensorflow.core.protobuf.named_tensor_pb2",
    "tensorflow.core.protobuf.saver_pb2",
    "tensorflow.core.protobuf.meta_graph_pb2",
    "tensorflow.core.protobuf.saved_model_pb2",
    "tensorflow.core.protobuf.tensor_bundle_pb2",
    "tensorflow_serving.apis.model_pb2",
    "tensorflow_serving.apis.predict_pb2",
    "tensorflow_serving.apis.input_pb2",
    "tensorflow_serving.apis.classification_pb2",
    "tensorflow_serving.apis.regression_pb2",
    "tensorflow_serving.apis.inference_pb2",
    "tensorflow_serving.apis.logging_pb2",
    "tensorflow_serving.apis.session_service_pb2",
    "tensorflow_serving.apis.prediction_log_pb2",
    "tensorflow_serving.apis.status_pb2",
    "tensorflow_serving.apis.get_model_status_pb2",
    "tensorflow_serving.apis.model_management_pb2",
    "tensorflow_serving.config.model_server_config_pb2",
    "tensorflow_serving.config.logging_config_pb2",
    "tensorflow_serving.config.log_collector_config_pb2",
    "tensorflow_serving.config.file_system_storage_path_source_pb2",
)


@cache
def official_modules() -> dict[str, Any]:
    """Every module above by its dotted name (imported once per process)."""
    if "tensorflow" in sys.modules:
        return {name: importlib.import_module(name) for name in OFFICIAL_MODULES}
    spec = importlib.util.find_spec("tensorflow")
    assert spec is not None and spec.submodule_search_locations, "the dev install has TF"
    stand_in = types.ModuleType("tensorflow", "stand-in: only pb2 modules are imported")
    stand_in.__path__ = list(spec.submodule_search_locations)
    stand_in.__spec__ = importlib.machinery.ModuleSpec("tensorflow", None, is_package=True)
    stand_in.__spec__.submodule_search_locations = stand_in.__path__
    sys.modules["tensorflow"] = stand_in
    try:
        return {name: importlib.import_module(name) for name in OFFICIAL_MODULES}
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]
