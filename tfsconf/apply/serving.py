"""The controller side of TF Serving's gRPC API, as apply uses it.

- reload: ModelService/HandleReloadConfigRequest with a bounded deadline. TF Serving
  replaces its whole model list with the one sent; the file on disk is the same text (apply
  switched `current` first), so a restart later reads what the reload set.
- wait_available: ModelService/GetModelStatus until every expected version is AVAILABLE.
  A version that ends (END) with an error fails at once instead of waiting out the timeout;
  a server whose port is not open yet (TF Serving opens it only after its first load) is
  waited for.
- smoke_predict: PredictionService/Predict with the version's own warmup records.

The messages are tfsconf's own descriptions of TF Serving's (tfsconf.warmup.protos) and the
calls go through tfsconf.apply.stubs: neither TensorFlow nor tensorflow-serving-api is needed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsconf.errors import UserError

STATE_NAMES = {
    0: "UNKNOWN",
    10: "START",
    20: "LOADING",
    30: "AVAILABLE",
    40: "UNLOADING",
    50: "END",
}
AVAILABLE = 30
END = 50


class ServingError(UserError):
    """TF Serving refused, failed or did not answer in time."""


class ReloadStillLoading(ServingError):
    """HandleReloadConfigRequest outlived its deadline: TF Serving is still loading what it
    asked for (ServerCore::ReloadConfig holds its config lock until the new models are
    AVAILABLE), so another reload sent now would only queue behind that load."""


# main.cc defaults, used when the spec leaves a setting to TF Serving
DEFAULT_FILE_SYSTEM_POLL_WAIT_SECONDS = 1
DEFAULT_MAX_NUM_LOAD_RETRIES = 5
DEFAULT_LOAD_RETRY_INTERVAL_MICROS = 60_000_000


def reload_deadline(
    *,
    file_system_poll_wait_seconds: int | None,
    max_num_load_retries: int | None,
    load_retry_interval_micros: int | None,
    load_allowance: float,
) -> float:
    """Seconds a reload that adds a model may block: HandleReloadConfigRequest returns once
    the new model is AVAILABLE (server_core.cc ReloadConfig -> WaitUntilModelsAvailable),
    which takes the next disk poll (file_system_storage_path_source.cc), the load and its
    warmup (`load_allowance`: the rollout's health timeout), and every retry of a failed
    load (loader_harness.cc: max_num_load_retries x load_retry_interval_micros)."""
    poll = (
        DEFAULT_FILE_SYSTEM_POLL_WAIT_SECONDS
        if file_system_poll_wait_seconds is None
        else file_system_poll_wait_seconds
    )
    retries = DEFAULT_MAX_NUM_LOAD_RETRIES if max_num_load_retries is None else max_num_load_retries
    interval = (
        DEFAULT_LOAD_RETRY_INTERVAL_MICROS
        if load_retry_interval_micros is None
        else load_retry_interval_micros
    )
    return float(poll) + load_allowance + retries * interval / 1e6


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A server's gRPC port; `via`: the Unix socket of an SSH forward to it
    (tfsconf.apply.tunnel), called instead of the address."""

    address: str
    port: int
    via: str | None = None

    def __str__(self) -> str:
        return f"{self.address}:{self.port}" + (" (over SSH)" if self.via else "")


def _channel(endpoint: Endpoint) -> Any:
    import grpc

    if endpoint.via is not None:
        target = f"unix:{endpoint.via}"
    elif ":" in endpoint.address:
        target = f"[{endpoint.address}]:{endpoint.port}"
    else:
        target = f"{endpoint.address}:{endpoint.port}"
    return grpc.insecure_channel(
        target,
        options=[
            ("grpc.max_receive_message_length", 64 << 20),
            ("grpc.enable_http_proxy", 0),
            # a server not listening yet (TF Serving opens its ports after the first
            # load) must not push every later attempt into gRPC's shared reconnect backoff
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ],
    )


def parse_models_config(text: str) -> Any:
    from google.protobuf import text_format

    from tfsconf.warmup.protos import tf_protos

    config = tf_protos().server_config.ModelServerConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise UserError(f"models.config does not parse: {exc}") from exc
    return config


def reload(endpoint: Endpoint, models_config: str, *, deadline: float = 60.0) -> None:
    """Send a whole ModelServerConfig; raise ServingError with TF Serving's own message."""
    import grpc

    from tfsconf.apply.stubs import ModelServiceStub
    from tfsconf.warmup.protos import tf_protos

    request = tf_protos().serving.ReloadConfigRequest()
    request.config.CopyFrom(parse_models_config(models_config))
    with _channel(endpoint) as channel:
        stub = ModelServiceStub(channel)
        try:
            response = stub.HandleReloadConfigRequest(request, timeout=deadline)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise ReloadStillLoading(
                    f"{endpoint}: HandleReloadConfigRequest still loading after its "
                    f"{deadline:.0f} s deadline"
                ) from exc
            raise ServingError(
                f"{endpoint}: HandleReloadConfigRequest failed: {exc.code().name}: {exc.details()}"
            ) from exc
    if response.status.error_code != 0:
        raise ServingError(
            f"{endpoint}: HandleReloadConfigRequest failed: error {response.status.error_code}:"
            f" {response.status.error_message}"
        )


def expectations(models_config: str) -> dict[str, list[int] | None]:
    """model -> versions that must be AVAILABLE (None: at least one version, for latest/all
    policies, whose versions depend on what is on disk)."""
    config = parse_models_config(models_config)
    out: dict[str, list[int] | None] = {}
    for model in config.model_config_list.config:
        policy = model.model_version_policy
        if policy.WhichOneof("policy_choice") == "specific":
            out[model.name] = sorted(policy.specific.versions)
        else:
            out[model.name] = None
    return out


def model_status(
    endpoint: Endpoint, model: str, *, timeout: float = 5.0
) -> dict[int, tuple[str, str]]:
    """version -> (state name, error message) for one model; {} when TF Serving does not know
    the model; raises grpc.RpcError when the server does not answer."""
    import grpc

    from tfsconf.apply.stubs import ModelServiceStub
    from tfsconf.warmup.protos import tf_protos

    request = tf_protos().serving.GetModelStatusRequest()
    request.model_spec.name = model
    with _channel(endpoint) as channel:
        stub = ModelServiceStub(channel)
        try:
            response = stub.GetModelStatus(request, timeout=timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return {}
            raise
    return {
        int(s.version): (STATE_NAMES.get(int(s.state), str(s.state)), s.status.error_message)
        for s in response.model_version_status
    }


def wait_available(
    endpoint: Endpoint,
    expect: Mapping[str, Sequence[int] | None],
    *,
    timeout: float,
    poll: float = 0.2,
    failure_grace: float = 2.0,
) -> dict[str, list[int]]:
    """Wait until each model has every expected version AVAILABLE (or, for None, at least
    one); returns the AVAILABLE versions per model."""
    import grpc

    deadline = time.monotonic() + timeout
    failed_since: dict[tuple[str, int], float] = {}
    last: dict[str, dict[int, tuple[str, str]]] = {}
    unreachable = ""
    while True:
        done: dict[str, list[int]] = {}
        try:
            for model, versions in sorted(expect.items()):
                status = last[model] = model_status(endpoint, model)
                ready = sorted(v for v, (state, _) in status.items() if state == "AVAILABLE")
                for version in versions or ():
                    state, error = status.get(version, ("not loaded", ""))
                    key = (model, version)
                    # END with an error is a failed load; END without one is a version
                    # unloaded before (a reload may bring it back). A failed version that
                    # a reload asks for again shows its old END until the new attempt
                    # starts, so a failure counts once it has held for a grace period.
                    if state == "END" and error:
                        first = failed_since.setdefault(key, time.monotonic())
                        if time.monotonic() - first >= failure_grace:
                            raise ServingError(
                                f"{endpoint}: model {model} version {version} failed to "
                                f"load: {error}"
                            )
                    else:
                        failed_since.pop(key, None)
                wanted = set(versions) if versions is not None else None
                if (wanted is not None and wanted <= set(ready)) or (wanted is None and ready):
                    done[model] = ready
            unreachable = ""
        except grpc.RpcError as exc:
            unreachable = f"{exc.code().name}: {exc.details()}"
        if len(done) == len(expect):
            return done
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    if unreachable:
        raise ServingError(f"{endpoint}: not serving after {timeout:.0f} s ({unreachable})")
    waiting = _still_waiting(expect, last)
    raise ServingError(f"{endpoint}: not AVAILABLE within {timeout:.0f} s: {'; '.join(waiting)}")


def _still_waiting(
    expect: Mapping[str, Sequence[int] | None], last: Mapping[str, Mapping[int, tuple[str, str]]]
) -> list[str]:
    """What wait_available was still waiting for when it gave up, per model and version."""
    waiting = []
    for model, versions in sorted(expect.items()):
        status = last.get(model, {})
        for version in versions or ():
            state = status.get(version, ("not loaded", ""))[0]
            if state != "AVAILABLE":
                waiting.append(f"{model} v{version}: {state}")
        if versions is None and not any(s == "AVAILABLE" for s, _ in status.values()):
            waiting.append(f"{model}: no version AVAILABLE")
    return waiting


def smoke_predict(
    endpoint: Endpoint,
    model: str,
    version: int,
    warmup_file: Path,
    *,
    records: int = 1,
    timeout: float = 30.0,
) -> int:
    """Replay up to `records` predict records of the version's warmup file against that
    version; returns how many were sent (0 when the file holds no predict records)."""
    import grpc

    from tfsconf.apply.stubs import PredictionServiceStub
    from tfsconf.warmup.protos import tf_protos
    from tfsconf.warmup.tfrecord import read_records

    log_type = tf_protos().prediction_log.PredictionLog
    sent = 0
    with _channel(endpoint) as channel:
        stub = PredictionServiceStub(channel)
        for payload in read_records(warmup_file):
            log = log_type.FromString(payload)
            if log.WhichOneof("log_type") != "predict_log":
                continue
            request = log.predict_log.request
            request.model_spec.name = model
            request.model_spec.ClearField("version_label")
            request.model_spec.version.value = version
            try:
                stub.Predict(request, timeout=timeout)
            except grpc.RpcError as exc:
                raise ServingError(
                    f"{endpoint}: smoke predict on {model} version {version} failed: "
                    f"{exc.code().name}: {exc.details()}"
                ) from exc
            sent += 1
            if sent >= records:
                break
    return sent
