"""Rules validate takes from TF Serving's own source: each test names the file and function
it mirrors (tensorflow/serving at the release tags in tfsconf/tfserving/flag_table.py), and
checks the diagnostic's severity, path and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfsconf.diagnostics import Diagnostic, format_path
from tfsconf.errors import SpecError
from tfsconf.validate.load import load_environment

HEAD = """\
environment: rules
tfserving_version: "{version}"
image: {{allocator: {{kind: system}}}}
host_groups:
  g: {{hosts: [{{name: h1, address: 10.0.0.1, gpus: 1}}]{no_profiler}}}
# the profiler warning has its own test; the line numbers below count this line
servers:
  - name: s1
    group: g
    gpu: 0
"""
NO_PROFILER = ", defaults: {server: {enable_profiler: false}}"
MODEL = """\
models:
  - name: a
    base_path: /srv/tfserving/models/a
    source: {kind: local, path: /d/a}
"""


def _spec(tmp_path: Path, server: str, models: str = MODEL, version: str = "2.18.0") -> Path:
    """A one-server spec; `server` holds the server's extra keys, indented 4 spaces."""
    path = tmp_path / "rules.yaml"
    has_profiler_flag = tuple(int(part) for part in version.split(".")[:2]) >= (2, 5)
    head = HEAD.format(version=version, no_profiler=NO_PROFILER if has_profiler_flag else "")
    path.write_text(head + server + "    models: [a]\n" + models)
    return path


def _diagnostics(path: Path) -> list[Diagnostic]:
    try:
        return list(load_environment(path).warnings)
    except SpecError as raised:
        return list(raised.diagnostics)


def _found(path: Path) -> list[tuple[str, str, int]]:
    return [(d.severity, format_path(d.path), d.line) for d in _diagnostics(path)]


def _only(path: Path) -> Diagnostic:
    [diagnostic] = _diagnostics(path)
    return diagnostic


# --- A3: accepted before, but the server stops or freezes ---------------------------------


@pytest.mark.parametrize("reload", ["rpc", "poll"])
def test_file_system_poll_zero_is_refused_in_every_reload_mode(tmp_path: Path, reload: str) -> None:
    """Mirrors sources/storage_path/file_system_storage_path_source.cc:
    FileSystemStoragePathSource::SetAspiredVersionsCallback polls the disk once when
    file_system_poll_wait_seconds is 0, and UpdateConfig (what every ReloadConfig calls,
    by RPC or by the config poll) never polls, so no new version or model loads."""
    poll = "    model_config_file_poll_wait_seconds: 30\n" if reload == "poll" else ""
    spec = _spec(
        tmp_path,
        f"    model_config_reload: {reload}\n{poll}    file_system_poll_wait_seconds: 0\n",
    )
    found = _only(spec)
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "servers[0].file_system_poll_wait_seconds",
        13 if reload == "poll" else 12,
    )
    assert "no new version or model would load" in found.message


def test_file_system_poll_of_one_second_is_accepted(tmp_path: Path) -> None:
    """Mirrors file_system_storage_path_source.cc SetAspiredVersionsCallback: a positive
    wait starts the periodic polling thread."""
    assert _found(_spec(tmp_path, "    file_system_poll_wait_seconds: 1\n")) == []


LABELLED = MODEL + "    versions: {policy: specific, versions: [1, 2]}\n    labels: {stable: 1}\n"


def test_explicit_false_label_flag_with_labels_is_refused(tmp_path: Path) -> None:
    """Mirrors model_servers/server_core.cc: ServerCore::ReloadConfig calls
    UpdateModelVersionLabelMap before AddModelsViaModelConfigList, also at start, and
    UpdateModelVersionLabelMap refuses (FailedPrecondition) a label on a version that is
    not AVAILABLE unless allow_version_labels_for_unavailable_models is set."""
    spec = _spec(tmp_path, "    allow_version_labels_for_unavailable_models: false\n", LABELLED)
    found = _only(spec)
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "servers[0].allow_version_labels_for_unavailable_models",
        11,
    )
    assert "labelled model 'a'" in found.message and "cannot start" in found.message


def test_explicit_false_label_flag_without_labels_is_kept(tmp_path: Path) -> None:
    """Mirrors server_core.cc UpdateModelVersionLabelMap: without labels the flag is never
    consulted, so an explicit false is legal and is passed on as written."""
    spec = _spec(tmp_path, "    allow_version_labels_for_unavailable_models: false\n")
    loaded = load_environment(spec)
    from tfsconf.resolve.flags import server_flags

    [server] = loaded.resolved.hosts[0].servers
    rendered = [flag.render() for flag in server_flags(server)]
    assert "--allow_version_labels_for_unavailable_models=false" in rendered


def test_splitting_without_any_batch_size_is_refused(tmp_path: Path) -> None:
    """Mirrors servables/tensorflow/bundle_factory_util.h GetQueueOptions: with
    enable_large_batch_splitting and no max_execution_batch_size the execution batch
    limit is max_batch_size().value(), which is 0 when max_batch_size is unset."""
    spec = _spec(tmp_path, "    batching: {enabled: true, enable_large_batch_splitting: true}\n")
    found = _only(spec)
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "servers[0].batching.enable_large_batch_splitting",
        11,
    )
    assert "batches of size 0" in found.message


@pytest.mark.parametrize("size", ["max_batch_size: 64", "max_execution_batch_size: 32"])
def test_splitting_with_one_batch_size_is_accepted(tmp_path: Path, size: str) -> None:
    """Mirrors bundle_factory_util.h GetQueueOptions: either size gives a non-zero
    execution batch limit."""
    batching = f"    batching: {{enabled: true, enable_large_batch_splitting: true, {size}}}\n"
    assert [f for f in _found(_spec(tmp_path, batching)) if f[0] == "error"] == []


@pytest.mark.parametrize(
    ("version", "errors"),
    [
        (
            "2.3.0",
            [
                "servers[0].batching.enable_large_batch_splitting",
                "servers[0].batching.max_execution_batch_size",
            ],
        ),
        ("2.4.0", []),
    ],
)
def test_batching_fields_are_gated_by_release(
    tmp_path: Path, version: str, errors: list[str]
) -> None:
    """Mirrors servables/tensorflow/session_bundle_config.proto message BatchingParameters
    (enable_large_batch_splitting = 8 and max_execution_batch_size = 9 first at tag
    2.4.0), parsed by model_servers/server.cc Server::BuildAndStart (ParseProtoTextFile):
    an older server cannot parse a file naming them."""
    spec = _spec(
        tmp_path,
        "    batching:\n      enabled: true\n      max_batch_size: 64\n"
        "      enable_large_batch_splitting: true\n      max_execution_batch_size: 32\n",
        version=version,
    )
    found = [(p, line) for severity, p, line in _found(spec) if severity == "error"]
    assert found == list(zip(errors, [14, 15], strict=False))


def test_batching_field_gate_reaches_every_layer(tmp_path: Path) -> None:
    """Mirrors session_bundle_config.proto BatchingParameters at tag 2.3.0: the field is
    refused wherever it is written, here in a model's per-model batching."""
    models = MODEL + "    batching: {max_batch_size: 8, enable_large_batch_splitting: true}\n"
    spec = _spec(tmp_path, "    batching: {per_model: true}\n", models, version="2.3.0")
    errors = [(p, line) for severity, p, line in _found(spec) if severity == "error"]
    assert ("models[0].batching.enable_large_batch_splitting", 17) in errors
    # per-model batching itself needs 2.11: that flag's error may be reported in the same run
    assert set(errors) <= {
        ("models[0].batching.enable_large_batch_splitting", 17),
        ("servers[0].batching.per_model", 11),
    }, errors


# --- A4: thread settings at model level -----------------------------------------------


@pytest.mark.parametrize(
    ("setting", "value"), [("num_batch_threads", "4"), ("thread_pool_name", "mine")]
)
def test_thread_settings_in_per_model_batching_are_refused(
    tmp_path: Path, setting: str, value: str
) -> None:
    """Mirrors servables/tensorflow/bundle_factory_util.h CreateBatchScheduler (the one
    thread pool of a server, made from --batching_parameters_file by
    SavedModelBundleFactory::Create) and bundle_factory_util.cc GetPerModelBatchingParams
    (a version's batching_params.pbtxt only feeds the queue options)."""
    models = MODEL + f"    batching: {{max_batch_size: 8, {setting}: {value}}}\n"
    spec = _spec(tmp_path, "    batching: {per_model: true}\n", models)
    found = _only(spec)
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        f"models[0].batching.{setting}",
        17,
    )
    assert "server setting" in found.message


def test_thread_settings_in_model_defaults_are_refused(tmp_path: Path) -> None:
    """Mirrors bundle_factory_util.h CreateBatchScheduler: model defaults are model-level
    batching too, so they cannot size the shared thread pool either."""
    server = (
        "    batching: {per_model: true, num_batch_threads: 4}\n"
        "    model_defaults: {batching: {num_batch_threads: 8}}\n"
    )
    errors = [
        (p, line) for severity, p, line in _found(_spec(tmp_path, server)) if severity == "error"
    ]
    assert errors == [("servers[0].model_defaults.batching.num_batch_threads", 12)]


# --- B7: the label flag is always on ------------------------------------------------------


@pytest.mark.parametrize("models", [MODEL, LABELLED])
def test_label_flag_is_emitted_with_or_without_labels(tmp_path: Path, models: str) -> None:
    """Mirrors model_servers/server_core.cc UpdateModelVersionLabelMap (labels checked
    before any load, also at start) and main.cc, which has the flag from 1.15 on: the flag
    is set for every server, so adding the first label or dropping the last leaves the
    flags unchanged and stays a hot reload."""
    from tfsconf.resolve.flags import server_flags

    [server] = load_environment(_spec(tmp_path, "", models)).resolved.hosts[0].servers
    rendered = [flag.render() for flag in server_flags(server)]
    assert rendered.count("--allow_version_labels_for_unavailable_models=true") == 1


# --- B12: gRPC receive limit ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("4194304", "lowers the server's receive limit from 2 GiB to 4194304 bytes"),
        ("4294967296", "not an int32"),
    ],
)
def test_receive_limit_argument_can_only_lower_the_limit(
    tmp_path: Path, value: str, message: str
) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart: SetMaxMessageSize(int32 max)
    comes first, then each --grpc_channel_arguments entry (parsed by absl::SimpleAtoi into
    an int32, else passed as a string) is added and wins."""
    args = (
        "    grpc_channel_arguments:\n"
        f"      [grpc.max_concurrent_streams=10, grpc.max_receive_message_length={value}]\n"
    )
    found = [d for d in _diagnostics(_spec(tmp_path, args)) if d.severity == "warning"]
    assert [(format_path(d.path), d.line) for d in found] == [
        ("servers[0].grpc_channel_arguments[1]", 12)
    ]
    assert message in found[0].message


def test_receive_limit_at_the_server_maximum_is_quiet(tmp_path: Path) -> None:
    """Mirrors server.cc Server::BuildAndStart: the int32 maximum is the limit already set."""
    args = "    grpc_channel_arguments: [grpc.max_receive_message_length=2147483647]\n"
    assert _found(_spec(tmp_path, args)) == []


# --- B13: configs TF Serving accepts ---------------------------------------------------------


def test_max_execution_batch_size_without_splitting_is_a_warning(tmp_path: Path) -> None:
    """Mirrors bundle_factory_util.h GetQueueOptions: max_execution_batch_size is read only
    inside the enable_large_batch_splitting branch, so without splitting it is ignored."""
    batching = "    batching: {enabled: true, max_batch_size: 64, max_execution_batch_size: 32}\n"
    found = _only(_spec(tmp_path, batching))
    assert (found.severity, format_path(found.path), found.line) == (
        "warning",
        "servers[0].batching.max_execution_batch_size",
        11,
    )
    assert "ignored by TF Serving" in found.message


def test_gpu_memory_fraction_above_one_is_a_warning(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart, which passes the flag to
    GPUOptions.per_process_gpu_memory_fraction unchecked; TensorFlow's GPUOptions
    (core/protobuf/config.proto) documents values above 1 as CUDA unified memory."""
    found = _only(_spec(tmp_path, "    per_process_gpu_memory_fraction: 1.5\n"))
    assert (found.severity, format_path(found.path), found.line) == (
        "warning",
        "servers[0].per_process_gpu_memory_fraction",
        11,
    )
    assert "unified memory" in found.message


# --- B11: flags GPU operators set ------------------------------------------------------


def _server_flags(path: Path) -> list[str]:
    from tfsconf.resolve.flags import server_flags

    [server] = load_environment(path).resolved.hosts[0].servers
    return [flag.render() for flag in server_flags(server)]


def test_profiler_left_at_its_default_is_a_warning(tmp_path: Path) -> None:
    """Mirrors model_servers/server.h (Options::enable_profiler = true) and server.cc
    Server::BuildAndStart, which registers the profiler service on the gRPC server, the
    same port that serves predictions."""
    spec = _spec(tmp_path, "")
    spec.write_text(spec.read_text().replace(NO_PROFILER, ""))
    found = _only(spec)
    assert (found.severity, format_path(found.path), found.line) == (
        "warning",
        "servers[0].name",
        8,
    )
    assert "profiler" in found.message
    spec.write_text(
        spec.read_text().replace('tfserving_version: "2.18.0"', 'tfserving_version: "2.4.0"')
    )
    assert [d for d in _diagnostics(spec) if "profiler" in d.message] == []


GPU_OPERATOR_SETTINGS = """\
    num_load_threads: 2
    num_unload_threads: 1
    xla_gpu_compilation_enabled: true
    mixed_precision: bfloat16
    flush_filesystem_caches: false
    enable_signature_method_name_check: true
    prefer_tflite_model: true
    num_tflite_pools: 2
    num_tflite_interpreters_per_pool: 3
    enable_serialization_as_tensor_content: true
    session_config: {gpu_allow_growth: true}
"""


def test_gpu_operator_flags_are_emitted(tmp_path: Path) -> None:
    """Mirrors model_servers/main.cc main() (the flag names, at tag 2.19.0) and server.cc
    Server::BuildAndStart (tensorflow_session_config_file is parsed into the session
    config)."""
    flags = _server_flags(_spec(tmp_path, GPU_OPERATOR_SETTINGS, version="2.19.0"))
    for expected in (
        "--num_load_threads=2",
        "--num_unload_threads=1",
        "--enable_profiler=false",
        "--xla_gpu_compilation_enabled=true",
        "--mixed_precision=bfloat16",
        "--flush_filesystem_caches=false",
        "--enable_signature_method_name_check=true",
        "--prefer_tflite_model=true",
        "--num_tflite_pools=2",
        "--num_tflite_interpreters_per_pool=3",
        "--enable_serialization_as_tensor_content=true",
        "--tensorflow_session_config_file=/srv/tfserving/config/s1/current/session_config.pbtxt",
    ):
        assert expected in flags


@pytest.mark.parametrize(
    ("version", "too_new"),
    [
        (
            "2.4.0",
            [
                "num_load_threads",
                "num_unload_threads",
                "xla_gpu_compilation_enabled",
                "mixed_precision",
                "num_tflite_pools",
                "num_tflite_interpreters_per_pool",
                "enable_serialization_as_tensor_content",
                "session_config",
            ],
        ),
        ("2.18.0", ["enable_serialization_as_tensor_content"]),
        ("2.19.0", []),
    ],
)
def test_gpu_operator_flags_are_gated_by_release(
    tmp_path: Path, version: str, too_new: list[str]
) -> None:
    """Mirrors model_servers/main.cc main() at the release tags: each flag is refused on a
    release whose flag list lacks it (tfsconf/tfserving/flag_table.py)."""
    spec = _spec(tmp_path, GPU_OPERATOR_SETTINGS, version=version)
    errors = sorted(format_path(d.path) for d in _diagnostics(spec) if d.severity == "error")
    assert errors == sorted(f"servers[0].{name}" for name in too_new)


def test_grpc_socket_path_is_refused_in_docker(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart, which listens on
    "unix:" + grpc_socket_path inside the server's own filesystem (the container)."""
    found = _only(_spec(tmp_path, "    grpc_socket_path: /run/tfserving/s1.sock\n"))
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "servers[0].grpc_socket_path",
        11,
    )
    native = _spec(tmp_path, "    grpc_socket_path: /run/tfserving/s1.sock\n")
    native.write_text(
        native.read_text().replace("environment: rules\n", "environment: rules\nruntime: native\n")
    )
    assert "--grpc_socket_path=/run/tfserving/s1.sock" in _server_flags(native)


def test_tflite_pools_without_tflite_are_a_warning(tmp_path: Path) -> None:
    """Mirrors servables/tensorflow/saved_model_bundle_factory.cc (a TF Lite session, which
    uses the pools, only when prefer_tflite_model and a model.tflite is found)."""
    found = _only(_spec(tmp_path, "    num_tflite_pools: 2\n"))
    assert (found.severity, format_path(found.path)) == ("warning", "servers[0].num_tflite_pools")


def test_ssl_config_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc BuildServerCredentials: with ssl_config_file the
    gRPC port (and socket) accepts TLS only, which apply's clients do not speak."""
    found = _only(_spec(tmp_path, "    ssl_config_file: /etc/tfserving/ssl.config\n"))
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "servers[0].ssl_config_file",
        11,
    )
    assert "without TLS" in found.message


# --- existing rules without a test of their own --------------------------------------------


def test_two_models_on_one_base_path_are_refused_by_policy(tmp_path: Path) -> None:
    """TF Serving accepts it (model_servers/server_core.cc ValidateModelConfigList checks
    names, not paths); tfsconf refuses it because the per-version files and each model's
    sync would share one directory."""
    models = MODEL + (
        "  - name: b\n    base_path: /srv/tfserving/models/a\n"
        "    source: {kind: local, path: /d/b}\n"
    )
    spec = _spec(tmp_path, "", models)
    spec.write_text(spec.read_text().replace("models: [a]", "models: [a, b]"))
    found = _only(spec)
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "models[1].base_path",
        17,
    )


def test_batching_parameters_without_batching_are_a_warning(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart: without --enable_batching no
    batching parameters are read."""
    found = _only(_spec(tmp_path, "    batching: {enabled: false, max_batch_size: 8}\n"))
    assert (found.severity, format_path(found.path), found.line) == (
        "warning",
        "servers[0].batching.enabled",
        11,
    )


def test_model_without_batching_on_a_per_model_server_is_a_warning(tmp_path: Path) -> None:
    """Mirrors servables/tensorflow/bundle_factory_util.cc GetPerModelBatchingParams: with
    per-model batching a version without batching_params.pbtxt is served unbatched."""
    found = _only(_spec(tmp_path, "    batching: {per_model: true}\n"))
    assert (found.severity, format_path(found.path)) == ("warning", "models[0].name")
    assert "will not batch it" in found.message


WARMUP = MODEL + "    warmup: {samples: s.jsonl, records: 4, batch_sizes: [1, 128]}\n"


def test_warmup_with_warmup_disabled_is_a_warning(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart (set_enable_model_warmup from
    --enable_model_warmup): the warmup file is not replayed."""
    (tmp_path / "s.jsonl").write_text('{"x": [1.0]}\n')
    found = _only(_spec(tmp_path, "    enable_model_warmup: false\n", WARMUP))
    assert (found.severity, format_path(found.path)) == ("warning", "models[0].warmup")


def test_warmup_batch_over_max_batch_size_is_refused(tmp_path: Path) -> None:
    """Mirrors batching/batching_session.cc BatchingSession::Run (a batch larger than the
    queue's max_batch_size is refused), which every warmup record goes through."""
    (tmp_path / "s.jsonl").write_text('{"x": [1.0]}\n')
    batching = "    batching: {enabled: true, max_batch_size: 64}\n"
    found = _only(_spec(tmp_path, batching, WARMUP))
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "models[0].warmup",
        17,
    )
    assert "exceeds max_batch_size 64" in found.message


def test_mixed_precision_other_than_bfloat16_is_refused(tmp_path: Path) -> None:
    """Mirrors servables/tensorflow/saved_model_bundle_factory.cc
    SavedModelBundleFactory::InternalCreateSavedModelBundle: only "bfloat16" turns on the
    rewrite; any other value is logged and ignored, so the spec refuses it."""
    found = _only(_spec(tmp_path, "    mixed_precision: float16\n"))
    assert (found.severity, format_path(found.path), found.line) == (
        "error",
        "servers[0].mixed_precision",
        11,
    )


def test_gpu_allow_growth_on_a_cpu_server_is_a_warning(tmp_path: Path) -> None:
    """Mirrors model_servers/server.cc Server::BuildAndStart (the session config reaches
    TensorFlow's GPUOptions, which only a GPU device reads)."""
    spec = _spec(tmp_path, "    session_config: {gpu_allow_growth: true}\n")
    spec.write_text(spec.read_text().replace("    gpu: 0\n", ""))
    found = _only(spec)
    assert (found.severity, format_path(found.path)) == (
        "warning",
        "servers[0].session_config.gpu_allow_growth",
    )
