"""Which tensorflow_model_server command-line flags exist in which TF Serving release.

FLAG_SINCE maps a flag name (no leading dashes) to the first (major, minor) release that accepts
it. tfsconf supports TF Serving >= 1.15 only, so every flag that already existed before 1.15 is
recorded as (1, 15). FLAG_UNTIL maps a removed flag to the first release that no longer has it.

How the data was gathered (stored copies of the public tensorflow/serving repository):

* Flag lists were read from tensorflow_serving/model_servers/main.cc at these commits:
  c3eeed4f, 1f8f2902 and d16ceafa (all listed under "Release 1.15.0" in RELEASE.md),
  8589d817 (listed under 2.3.0), efc445f4 (listed under 2.6.0), and 970c6307, f83bc0c6 and
  a9a8e7bf (all listed under 2.15.0-rc0). server.h was read at 94f2d694 (listed under 2.11.0-rc0).
* RELEASE.md was read in two stored versions (one ending at 2.10.0, one ending at 2.18.0). A
  commit listed under "Release X" is taken to ship first in X. RELEASE.md has no 2.5.0 or 2.7.0
  section, so the 2.4 to 2.6 window is the weakest part of this table.
* Extra hints for that window: a main.cc snapshot on the handong0123/serving fork (086dab42, a
  January 2021 PR branch off upstream master), pull requests #1785 (grpc_max_threads, opened
  2020-12-15) and #1796 (num_load_threads / num_unload_threads, opened 2021-01-13), and issue
  #1858 (May 2021, which names the commit that added xla_cpu_compilation_enabled).
* The newest main.cc seen (a renamed fork that tracks about 2.18) still has every flag below
  except use_tflite_model, so no other removals are known.

Each entry carries a comment with its evidence. "verified" means the flag was seen in main.cc at
a commit whose release is known, and it was absent before that. Entries marked "unverified:
estimate" could not be pinned exactly. They use the earliest release that fits the evidence,
and the comment names the first release where the flag is verified present.
"""

FLAG_SINCE: dict[str, tuple[int, int]] = {
    # Flags older than 1.15. All verified present in main.cc at c3eeed4f (1.15 dev).
    "port": (1, 15),  # verified; in main.cc long before 1.15
    "grpc_socket_path": (1, 15),  # verified; RELEASE.md lists UNIX-socket gRPC under 1.13.0
    "rest_api_port": (1, 15),  # verified; in main.cc at 009d6a93 (1.10 dev) and c3eeed4f
    "rest_api_num_threads": (1, 15),  # verified; same evidence as rest_api_port
    "rest_api_timeout_in_ms": (1, 15),  # verified; same evidence as rest_api_port
    "enable_batching": (1, 15),  # verified; in main.cc long before 1.15
    "batching_parameters_file": (1, 15),  # verified; in main.cc long before 1.15
    "model_config_file": (1, 15),  # verified; in main.cc long before 1.15
    "model_name": (1, 15),  # verified; in main.cc long before 1.15
    "model_base_path": (1, 15),  # verified; in main.cc long before 1.15
    "file_system_poll_wait_seconds": (1, 15),  # verified; in main.cc long before 1.15
    "flush_filesystem_caches": (1, 15),  # verified; in main.cc at 009d6a93 (1.10 dev)
    "tensorflow_session_parallelism": (1, 15),  # verified; still present at 2.15 dev
    "tensorflow_intra_op_parallelism": (1, 15),  # verified; RELEASE.md: added in 1.13.0
    "tensorflow_inter_op_parallelism": (1, 15),  # verified; RELEASE.md: added in 1.13.0
    "per_process_gpu_memory_fraction": (1, 15),  # verified; in main.cc long before 1.15
    "max_num_load_retries": (1, 15),  # verified; RELEASE.md: added in 1.11.0
    "load_retry_interval_micros": (1, 15),  # verified; in main.cc at c3eeed4f (1.15 dev)
    "monitoring_config_file": (1, 15),  # verified; in main.cc at c3eeed4f (1.15 dev)
    "ssl_config_file": (1, 15),  # verified; in main.cc at c3eeed4f (1.15 dev)
    "platform_config_file": (1, 15),  # verified; in main.cc long before 1.15
    "enable_model_warmup": (1, 15),  # verified; in main.cc at c3eeed4f (1.15 dev)
    "grpc_channel_arguments": (1, 15),  # verified; in main.cc at 43acb9eb (2018)
    "saved_model_tags": (1, 15),  # verified; in main.cc long before 1.15
    "version": (1, 15),  # verified; RELEASE.md 1.10.0 adds version output; at c3eeed4f
    # Flags added in 1.15. All four commits are listed under "Release 1.15.0" in RELEASE.md.
    "model_config_file_poll_wait_seconds": (1, 15),  # verified; main.cc at c3eeed4f
    "allow_version_labels_for_unavailable_models": (1, 15),  # verified; e6d91e72, at c3eeed4f
    "remove_unused_fields_from_bundle_metagraph": (1, 15),  # verified; 1f8f2902, absent c3eeed4f
    "use_tflite_model": (1, 15),  # verified; added in d16ceafa; renamed in 2.3 (FLAG_UNTIL)
    # Flags added in 2.x.
    "prefer_tflite_model": (2, 3),  # verified; replaces use_tflite_model in 8589d817 (2.3.0)
    "enable_signature_method_name_check": (2, 4),  # likely; 2.4.0 notes add native TF2
    # regress/classify (b724ced); absent at 8589d817 (2.3); in the Jan 2021 fork snapshot
    "grpc_max_threads": (2, 5),  # likely; PR #1785 opened after 2.4.0 shipped, not in 2.4.0
    # notes; in the Jan 2021 fork snapshot; verified present at efc445f4 (2.6)
    "num_load_threads": (2, 5),  # unverified: estimate; PR #1796 (Jan 2021); present at 2.6
    "num_unload_threads": (2, 5),  # unverified: estimate; same PR #1796; present at 2.6
    "xla_cpu_compilation_enabled": (2, 5),  # unverified: estimate; absent in the Jan 2021
    # snapshot, named as landed in issue #1858 (May 2021); verified present at efc445f4 (2.6)
    "enable_profiler": (2, 5),  # unverified: estimate; absent in the Jan 2021 snapshot;
    # verified present at efc445f4 (2.6)
    "rest_api_enable_cors_support": (2, 5),  # unverified: estimate; absent in the Jan 2021
    # snapshot; verified present at efc445f4 (2.6)
    "thread_pool_factory_config_file": (2, 6),  # verified; efc445f4 under 2.6.0; absent 2.3
    "use_alts_credentials": (2, 6),  # verified; ceba636b under 2.6.0; absent at efc445f4
    "num_request_iterations_for_warmup": (2, 8),  # verified; 2a55aec1 under 2.8.0; absent 2.6
    "tensorflow_session_config_file": (2, 8),  # verified; 342a8088 under 2.8.0; absent 2.6
    "enable_per_model_batching_parameters": (2, 11),  # verified; 94f2d694 under 2.11.0-rc0
    # (server.h gains the option there); absent from main.cc at efc445f4 (2.6)
    "mixed_precision": (2, 15),  # verified; 970c6307 under 2.15.0-rc0, not under 2.14.0-rc0
    "skip_initialize_tpu": (2, 15),  # verified; f83bc0c6 under 2.15.0-rc0, not under 2.14
    "enable_grpc_healthcheck_service": (2, 15),  # verified; a9a8e7bf under 2.15.0-rc0
    "xla_gpu_compilation_enabled": (2, 18),  # unverified: estimate; 2.18.0-rc0 notes say
    # "Added capability to use XLA on a GPU" (e5e795f5); flag seen only in a fork snapshot
}

FLAG_UNTIL: dict[str, tuple[int, int]] = {
    # verified; main.cc at 8589d817 (listed under 2.3.0) has prefer_tflite_model instead
    "use_tflite_model": (2, 3),
}
