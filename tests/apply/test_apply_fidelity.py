"""apply end to end on a one-host bed (local mode): what TF Serving reads, where and when,
and the revert paths of a failed host."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tfsconf.apply.batching import BATCHING_PARAMS
from tfsconf.apply.serving import Endpoint, model_status

from .conftest import BedFactory
from .scenario import BASE_PATH, CONFIG_ROOT, MODEL, Scenario
from .test_apply import HOSTS, by_host, deploy

pytestmark = pytest.mark.slow

# generous: one apply takes ~20 s on an idle machine, minutes on a loaded one
APPLY_TIMEOUT = 900
AUX_PORT = 8600
AUX: dict[str, Any] = {
    "name": "aux",
    "group": "fleet",
    "grpc_port": AUX_PORT,
    "rest_port": AUX_PORT + 1,
    "models": [MODEL],
    "file_system_poll_wait_seconds": 1,
    "max_num_load_retries": 0,
}


@pytest.fixture
def one_host(make_bed: BedFactory, tmp_path: Any, model_template: Any) -> Scenario:
    return Scenario(make_bed("local", 1), tmp_path / "work", model_template)


@pytest.fixture
def three_hosts(make_bed: BedFactory, tmp_path: Any, model_template: Any) -> Scenario:
    return Scenario(make_bed("local", 3), tmp_path / "work", model_template)


def states(
    scenario: Scenario, port: int = 8500, host: str = "h1", model: str = MODEL
) -> dict[int, str]:
    endpoint = Endpoint(scenario.bed.host(host).address, port)
    return {v: s for v, (s, _) in model_status(endpoint, model).items()}


def server_log(scenario: Scenario, host: str, server: str = "rank") -> str:
    """What the server (the stand-in) wrote to its log under the supervisor, over every
    start of it (the supervisor appends)."""
    run = scenario.root(host) / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "run"
    return (run / f"{server}.log").read_text()


def test_removed_server_serves_again_when_its_host_rolls_back(one_host: Scenario) -> None:
    """A run that removes server `aux` and then fails on `rank` rolls the host back with
    `aux` restarted on its previous release and waited healthy on its own port, read from
    its recorded server.flags (work.py once read `srv.flags`, waited on port 0 and left
    the host `failed`)."""
    scenario = one_host
    scenario.write_spec([1], more_servers=[AUX])
    proc, _ = scenario.apply(timeout=APPLY_TIMEOUT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    release = scenario.current_release("h1")
    assert states(scenario, AUX_PORT) == {1: "AVAILABLE"}

    scenario.publish(2, fail_on=("h1",))
    scenario.write_spec([2], health_timeout=15)  # aux removed; version 2 fails to load
    proc, report = scenario.apply(timeout=APPLY_TIMEOUT)
    assert proc.returncode == 1
    (host,) = report["hosts"]
    assert host["status"] == "rolled-back", host
    assert "version 2 failed to load" in host["error"]
    assert scenario.current_release("h1") == release
    assert scenario.current_release("h1", "aux") == release
    assert states(scenario, AUX_PORT) == {1: "AVAILABLE"}
    assert states(scenario).get(1) == "AVAILABLE"
    assert scenario.record("h1")["release"] == release  # type: ignore[index]


class VersionWatch:
    """Watches one host while apply runs (bounded): for each version directory, whether
    its batching_params.pbtxt was there when the directory was first seen, and when the
    version was first reported AVAILABLE."""

    def __init__(self, scenario: Scenario, deadline: float = 240.0) -> None:
        self.base = scenario.root("h1") / BASE_PATH.lstrip("/")
        self.endpoint = Endpoint(scenario.bed.host("h1").address, 8500)
        self.deadline = time.monotonic() + deadline
        self.first_seen: dict[str, bool] = {}
        self.at_available: dict[int, bool] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> VersionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        import grpc

        while not self._stop.is_set() and time.monotonic() < self.deadline:
            names = [p.name for p in self.base.iterdir()] if self.base.is_dir() else []
            for name in names:
                if name.isdigit() and name not in self.first_seen:
                    self.first_seen[name] = (self.base / name / BATCHING_PARAMS).is_file()
            try:
                status = model_status(self.endpoint, MODEL, timeout=1)
            except grpc.RpcError:
                status = {}
            for version, (state, _) in status.items():
                if state == "AVAILABLE" and version not in self.at_available:
                    path = self.base / str(version) / BATCHING_PARAMS
                    self.at_available[version] = path.is_file()
            time.sleep(0.01)


def test_per_model_batching_is_in_every_version_before_it_loads(one_host: Scenario) -> None:
    """Mirrors servables/tensorflow/bundle_factory_util.cc GetPerModelBatchingParams: with
    --enable_per_model_batching_parameters a version is batched only by the
    <version>/batching_params.pbtxt present when it loads. The compiled file is staged in
    each synced version before the rename publishes it, rewritten in versions already on
    the host before the restart the plan announces, and put back when the host rolls back.
    The thread pool still comes from --batching_parameters_file (server.cc)."""
    scenario = one_host
    base = scenario.root("h1") / BASE_PATH.lstrip("/")
    current = scenario.root("h1") / CONFIG_ROOT.lstrip("/") / "rank" / "current"
    server_batching = {"per_model": True, "num_batch_threads": 2}

    def deploy(versions: list[int], max_batch_size: int, **spec: Any) -> Any:
        scenario.write_spec(
            versions,
            batching=server_batching,
            model_extra={"batching": {"max_batch_size": max_batch_size}},
            **spec,
        )
        with VersionWatch(scenario) as watch:
            proc, report = scenario.apply(timeout=APPLY_TIMEOUT)
        return proc, report, watch

    proc, _, watch = deploy([1], 4)
    assert proc.returncode == 0, proc.stderr[-4000:]
    compiled = (current / "models" / MODEL / BATCHING_PARAMS).read_text()
    assert "max_batch_size {\n  value: 4\n}" in compiled
    assert (base / "1" / BATCHING_PARAMS).read_text() == compiled
    assert watch.first_seen == {"1": True} and watch.at_available == {1: True}
    flags = (current / "server.flags").read_text()
    assert "--enable_per_model_batching_parameters=true" in flags
    assert "--batching_parameters_file=" in flags
    assert "num_batch_threads {\n  value: 2\n}" in (current / "batching_parameters.txt").read_text()

    pid = scenario.server_pid("h1")
    proc, _, watch = deploy([1, 2], 8)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "per-model batching of mixed" in proc.stderr  # the plan's restart reason
    assert scenario.server_pid("h1") != pid  # loaded versions read the file again
    compiled = (current / "models" / MODEL / BATCHING_PARAMS).read_text()
    assert "max_batch_size {\n  value: 8\n}" in compiled
    for version in ("1", "2"):
        assert (base / version / BATCHING_PARAMS).read_text() == compiled
    assert watch.first_seen == {"1": True, "2": True}
    assert watch.at_available.get(2) is True
    assert states(scenario) == {1: "AVAILABLE", 2: "AVAILABLE"}

    # a failing run that changes the file again: the host rolls back, files too
    scenario.publish(3, fail_on=("h1",))
    proc, report, _ = deploy([1, 2, 3], 16, health_timeout=15)
    assert proc.returncode == 1
    assert report["hosts"][0]["status"] == "rolled-back", report
    for version in ("1", "2"):
        assert (base / version / BATCHING_PARAMS).read_text() == compiled


def test_preflight_checks_the_hosts_allocator_and_server_release(one_host: Scenario) -> None:
    """model_servers/main.cc prints "TensorFlow ModelServer: <version>" for --version: the
    process runtime runs the host's own binary, so preflight compares its release with
    tfserving_version, and checks the LD_PRELOAD library is on the host (the loader skips a
    missing one with a warning only). Either failure stops the apply before any change."""
    import yaml

    scenario = one_host
    scenario.write_spec([1])
    library = scenario.root("h1") / "usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    library.unlink()
    proc, report = scenario.apply(timeout=APPLY_TIMEOUT)
    assert proc.returncode == 1
    (host,) = report["hosts"]
    assert host["status"] == "preflight-failed", host
    assert "allocator library /usr/lib/x86_64-linux-gnu/libjemalloc.so.2" in host["error"]
    library.write_bytes(b"")
    values = scenario.bed.host_vars()
    values["h1"]["tfsconf_process_env"]["TFS_STANDIN_VERSION"] = "2.17.0"
    scenario.host_vars_path.write_text(yaml.safe_dump(values))
    proc, report = scenario.apply(timeout=APPLY_TIMEOUT)
    assert proc.returncode == 1
    (host,) = report["hosts"]
    assert "is TF Serving 2.17.0-rc0+dev.sha.standin" in host["error"], host
    assert "declares tfserving_version 2.18.0" in host["error"]
    assert scenario.version_dirs("h1") == [] and scenario.current_release("h1") is None


SECOND = "second"


def test_reload_still_loading_at_its_deadline_is_reverted_by_a_restart(
    three_hosts: Scenario,
) -> None:
    """Mirrors model_servers/server_core.cc ServerCore::ReloadConfig: a reload that adds a
    model returns only once it is AVAILABLE (WaitUntilModelsAvailable), holding the config
    lock, so a revert sent as another HandleReloadConfigRequest would queue behind the
    load. Here the new model takes 30 s to load on h2, past the reload deadline derived from
    rank's flags (file_system_poll_wait_seconds 1 + health timeout 5 + 0 retries = 6 s):
    the agent exits 75, and the revert restarts rank on its previous release instead. One
    host at a time, no failure allowed: h1 took the change, h3 is never touched."""
    scenario = three_hosts
    deploy(scenario, [1])
    releases = {h: scenario.current_release(h) for h in HOSTS}
    pids = {h: scenario.server_pid(h) for h in HOSTS}

    scenario.publish(2, load_seconds={"h2": 30})
    second = {
        "name": SECOND,
        "base_path": "/srv/tfserving/models/second",
        "source": {"kind": "local", "path": str(scenario.source)},
        "versions": {"policy": "specific", "versions": [2]},
        "warmup": {"samples": "samples/mixed.jsonl", "records": 2},
    }
    scenario.write_spec(
        [1],
        step=1,
        health_timeout=5,
        extra_server={"models": [MODEL, SECOND]},
        more_models=[second],
    )
    proc, report = scenario.apply(timeout=APPLY_TIMEOUT)
    assert proc.returncode == 1, proc.stderr[-4000:]
    hosts = by_host(report)
    assert hosts["h1"]["status"] == "applied", hosts["h1"]
    assert hosts["h2"]["status"] == "rolled-back", hosts["h2"]
    assert "HandleReloadConfigRequest still loading after its 6 s deadline" in hosts["h2"]["error"]
    assert hosts["h3"]["status"] == "untouched", hosts["h3"]

    # h2: restarted (not reloaded) on its previous release, serving version 1 again
    assert scenario.server_pid("h2") not in (None, pids["h2"])
    assert states(scenario, host="h2") == {1: "AVAILABLE"}
    assert states(scenario, host="h2", model=SECOND) == {}
    assert scenario.current_release("h2") == releases["h2"]
    assert scenario.record("h2")["release"] == releases["h2"]  # type: ignore[index]
    log = server_log(scenario, "h2")
    # model_service_impl.cc logs one "Config entry" per model of each reload it is sent:
    # two for the reload that ran out of time, none from the revert
    assert log.count("Config entry") == 2, log[-3000:]
    assert "signal 15: shutting down" in log

    # h1: a hot reload (same process) that loaded the new model; h3 as it was
    assert "[h1] rank: hot reload (1 phase(s)): changed" in proc.stderr
    assert scenario.server_pid("h1") == pids["h1"]
    assert states(scenario, host="h1", model=SECOND) == {2: "AVAILABLE"}
    assert scenario.current_release("h1") != releases["h1"]
    assert scenario.server_pid("h3") == pids["h3"]
    assert scenario.current_release("h3") == releases["h3"]
    assert states(scenario, host="h3", model=SECOND) == {}


def test_config_poll_loads_a_new_version_without_a_reload_rpc(one_host: Scenario) -> None:
    """Mirrors model_servers/server.cc Server::PollFilesystemAndReloadConfig: under
    `model_config_reload: poll` the server re-reads models.config itself, so apply sends no
    HandleReloadConfigRequest (model_service_impl.cc would log a "Config entry" per model)
    and its health gate waits for the poll; the process is the same. A label moved onto a
    version that is not loaded yet needs an intermediate config the poll cannot apply
    (server_core.cc refuses a label on a version that is not AVAILABLE): the planner
    refuses it, and apply, which plans the same way, changes nothing."""
    scenario = one_host
    poll = {"model_config_reload": "poll", "model_config_file_poll_wait_seconds": 1}
    deploy(scenario, [1], labels={"stable": 1}, extra_server=poll)
    pid = scenario.server_pid("h1")

    report = deploy(scenario, [1, 2], labels={"stable": 1}, extra_server=poll)
    assert [h["status"] for h in report["hosts"]] == ["applied"], report
    assert "picked up by the config poll within 1 s" in scenario.last_stderr
    assert "[h1] rank: health gate and smoke predict: ok" in scenario.last_stderr
    assert ": hot reload (" not in scenario.last_stderr  # the RPC task never ran
    assert states(scenario) == {1: "AVAILABLE", 2: "AVAILABLE"}
    assert scenario.server_pid("h1") == pid
    assert "Config entry" not in server_log(scenario, "h1")
    release = scenario.current_release("h1")

    scenario.write_spec([1, 2, 3], labels={"stable": 3}, step="100%", extra_server=poll)
    refusal = "model_config_reload is poll, and this change moves a version label"
    plan = scenario.tfsconf(
        "plan", str(scenario.spec_path), "--live", "--host-vars", str(scenario.host_vars_path)
    )
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert refusal in plan.stderr and "Apply it in two changes" in plan.stderr
    proc, _ = scenario.apply(timeout=APPLY_TIMEOUT)
    assert proc.returncode == 1
    assert refusal in proc.stderr
    assert scenario.version_dirs("h1") == ["1", "2"]
    assert scenario.current_release("h1") == release
    assert scenario.server_pid("h1") == pid
    assert states(scenario) == {1: "AVAILABLE", 2: "AVAILABLE"}
