"""Which tensorflow_model_server command-line flags, and which BatchingParameters fields,
exist in which TF Serving release.

FLAG_SINCE maps a flag name (no leading dashes) to the first (major, minor) release that
accepts it. tfsconf supports TF Serving >= 1.15 only, so every flag that already existed
before 1.15 is recorded as (1, 15). FLAG_UNTIL maps a removed flag to the first release that
no longer has it.

Evidence: the flag list (every `tensorflow::Flag("name", ...)`) of
tensorflow_serving/model_servers/main.cc at each release tag of tensorflow/serving, read
from 1.15.0 through 2.20.0 (1.15.0, 2.0.0 to 2.4.0, 2.5.0-rc0, 2.5.1, 2.6.0 to 2.14.0,
2.15.0-rc0, 2.15.1, 2.16.1, 2.17.0, 2.18.0-rc0, 2.18.0, 2.19.0-rc0, 2.19.0, 2.20.0). An entry
says "tag X" when the flag is first in main.cc at tag X and absent at the tag before it.
Every entry is verified that way; the set of flags at 2.20.0 is the union of all tags minus
use_tflite_model, so no other flag was removed.
"""

READ_THROUGH: tuple[int, int] = (2, 20)
"""The newest release whose main.cc was read: a spec for a newer one gets a warning."""

FLAG_SINCE: dict[str, tuple[int, int]] = {
    # Present at tag 1.15.0 (the oldest supported release).
    "port": (1, 15),
    "grpc_socket_path": (1, 15),
    "rest_api_port": (1, 15),
    "rest_api_num_threads": (1, 15),
    "rest_api_timeout_in_ms": (1, 15),
    "enable_batching": (1, 15),
    "batching_parameters_file": (1, 15),
    "model_config_file": (1, 15),
    "model_name": (1, 15),
    "model_base_path": (1, 15),
    "file_system_poll_wait_seconds": (1, 15),
    "flush_filesystem_caches": (1, 15),
    "tensorflow_session_parallelism": (1, 15),
    "tensorflow_intra_op_parallelism": (1, 15),
    "tensorflow_inter_op_parallelism": (1, 15),
    "per_process_gpu_memory_fraction": (1, 15),
    "max_num_load_retries": (1, 15),
    "load_retry_interval_micros": (1, 15),
    "monitoring_config_file": (1, 15),
    "ssl_config_file": (1, 15),
    "platform_config_file": (1, 15),
    "enable_model_warmup": (1, 15),
    "grpc_channel_arguments": (1, 15),
    "saved_model_tags": (1, 15),
    "version": (1, 15),
    "model_config_file_poll_wait_seconds": (1, 15),
    "allow_version_labels_for_unavailable_models": (1, 15),
    "remove_unused_fields_from_bundle_metagraph": (1, 15),
    "use_tflite_model": (1, 15),  # renamed at tag 2.3.0 (FLAG_UNTIL)
    "prefer_tflite_model": (2, 3),  # tag 2.3.0, replacing use_tflite_model
    "enable_signature_method_name_check": (2, 4),  # tag 2.4.0
    # tag 2.5.0-rc0 (no 2.5.0 tag; present at 2.5.0-rc0 and 2.5.1, absent at 2.4.0)
    "grpc_max_threads": (2, 5),
    "num_load_threads": (2, 5),
    "num_unload_threads": (2, 5),
    "xla_cpu_compilation_enabled": (2, 5),
    "enable_profiler": (2, 5),
    "rest_api_enable_cors_support": (2, 5),
    "num_tflite_pools": (2, 5),
    "num_tflite_interpreters_per_pool": (2, 5),
    "thread_pool_factory_config_file": (2, 6),  # tag 2.6.0
    "use_alts_credentials": (2, 6),  # tag 2.6.0
    "num_request_iterations_for_warmup": (2, 8),  # tag 2.8.0
    "tensorflow_session_config_file": (2, 8),  # tag 2.8.0
    "enable_per_model_batching_parameters": (2, 11),  # tag 2.11.0
    "mixed_precision": (2, 15),  # tag 2.15.0-rc0
    "skip_initialize_tpu": (2, 15),  # tag 2.15.0-rc0
    "enable_grpc_healthcheck_service": (2, 15),  # tag 2.15.0-rc0
    "xla_gpu_compilation_enabled": (2, 18),  # tag 2.18.0-rc0
    "enable_serialization_as_tensor_content": (2, 19),  # tag 2.19.0-rc0
}

FLAG_UNTIL: dict[str, tuple[int, int]] = {
    # main.cc at tag 2.3.0 has prefer_tflite_model instead
    "use_tflite_model": (2, 3),
}

BATCHING_FIELD_SINCE: dict[str, tuple[int, int]] = {
    # message BatchingParameters in
    # tensorflow_serving/servables/tensorflow/session_bundle_config.proto: fields 1-7 are
    # at tag 1.15.0; fields 8 and 9 first appear at tag 2.4.0 (absent at 2.3.0). An older
    # server fails to parse a file that names them, so every batched model fails to load.
    "enable_large_batch_splitting": (2, 4),
    "max_execution_batch_size": (2, 4),
}

BATCHING_SERVER_ONLY: tuple[str, ...] = ("num_batch_threads", "thread_pool_name")
"""BatchingParameters fields that only --batching_parameters_file sets: the batch thread
pool is created once per server (bundle_factory_util.cc CreateBatchScheduler), and a
version's own batching_params.pbtxt sets only queue options (DOMAIN.md)."""
