"""apply end to end: real Ansible (ansible-runner) against three test hosts, each running the
TF Serving stand-in under the process runtime's supervisor. Every scenario runs on the ssh bed
(own network namespace + sshd); the first deploy also runs over Ansible's local connection."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tfsconf.apply.serving import Endpoint, model_status

from .scenario import BASE_PATH, CONFIG_ROOT, MODEL, Scenario

pytestmark = pytest.mark.slow
HOSTS = ("h1", "h2", "h3")


def states(scenario: Scenario, host: str) -> dict[int, str]:
    address = scenario.bed.host(host).address
    return {v: s for v, (s, _) in model_status(Endpoint(address, 8500), MODEL).items()}


def by_host(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in report["hosts"]}


def save_live_plan(scenario: Scenario) -> tuple[Path, subprocess.CompletedProcess[str]]:
    plan_path = scenario.workdir / "plan.json"
    proc = scenario.tfsconf(
        "plan",
        str(scenario.spec_path),
        "--live",
        "--host-vars",
        str(scenario.host_vars_path),
        "--out",
        str(plan_path),
    )
    return plan_path, proc


def releases_dir(scenario: Scenario, host: str) -> Path:
    return scenario.root(host) / CONFIG_ROOT.lstrip("/") / "rank" / "releases"


def deploy(scenario: Scenario, versions: list[int], **spec: Any) -> dict[str, Any]:
    """A change every host takes, as a test's setup or its final check: every host in one
    rollout step unless the test asks for a step (host by host is what the scenarios that
    watch a rollout test; here it would only triple the time)."""
    spec.setdefault("step", "100%")
    scenario.write_spec(versions, **spec)
    proc, report = scenario.apply()
    assert proc.returncode == 0, proc.stderr[-4000:]
    return report


def test_first_deploy_then_nothing_to_do(any_scenario: Scenario) -> None:
    scenario = any_scenario
    report = deploy(scenario, [1])
    assert {h: r["status"] for h, r in by_host(report).items()} == dict.fromkeys(HOSTS, "applied")
    for host in HOSTS:
        assert states(scenario, host) == {1: "AVAILABLE"}
        assert scenario.version_dirs(host) == ["1"]
        version = scenario.root(host) / BASE_PATH.lstrip("/") / "1"
        assert (version / "assets.extra" / "tf_serving_warmup_requests").stat().st_size > 0
        record = scenario.record(host)
        assert record is not None and record["release"] == scenario.current_release(host)
        assert record["models"] == {MODEL: {"base_path": BASE_PATH, "versions": [1]}}
        lock = scenario.root(host) / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "lock"
        assert not lock.exists()
    pids = {h: scenario.server_pid(h) for h in HOSTS}

    proc, again = scenario.apply()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert again["changed"] == 0
    assert {h["status"] for h in again["hosts"]} == {"unchanged"}
    assert "No changes." in proc.stderr
    assert {h: scenario.server_pid(h) for h in HOSTS} == pids

    status = scenario.tfsconf(
        "status", str(scenario.spec_path), "--host-vars", str(scenario.host_vars_path)
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert "in sync" in status.stdout


def test_version_bump_hot_reloads_without_restart_or_failed_request(scenario: Scenario) -> None:
    deploy(scenario, [1])
    pids = {h: scenario.server_pid(h) for h in HOSTS}
    first = {h: scenario.current_release(h) for h in HOSTS}
    # a release no record or link names any more (keep_releases is 3): the bump's record
    # removes it, and keeps the one it replaces (rollback's)
    for host in HOSTS:
        (releases_dir(scenario, host) / "r-left-by-an-old-run").mkdir()
    load = LoadClient(scenario)
    load.start()
    try:
        report = deploy(scenario, [2])
    finally:
        load.stop()
    assert {h["status"] for h in report["hosts"]} == {"applied"}
    assert {h: scenario.server_pid(h) for h in HOSTS} == pids  # hot reload: same process
    for host in HOSTS:
        assert states(scenario, host).get(2) == "AVAILABLE"
        assert scenario.version_dirs(host) == ["1", "2"]  # never deletes a version
        kept = sorted(p.name for p in releases_dir(scenario, host).iterdir())
        assert kept == sorted({first[host], scenario.current_release(host)}), kept
    assert load.sent > 20, load.sent
    assert load.failures == [], load.failures[:3]


def test_label_moves_in_two_phases(scenario: Scenario) -> None:
    deploy(scenario, [1], labels={"stable": 1})
    scenario.write_spec([1, 2], labels={"stable": 2})
    plan_path, proc = save_live_plan(scenario)
    assert proc.returncode == 2, proc.stderr[-3000:]
    import json

    saved = json.loads(plan_path.read_text())["plans"][0]
    phases = [s["phases"] for h in saved["hosts"] for s in h["servers"]]
    assert all(len(p) == 2 for p in phases) and len(phases) == 3
    proc = scenario.tfsconf(
        "apply", str(plan_path), "--yes", "--host-vars", str(scenario.host_vars_path)
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for host in HOSTS:
        assert labelled(scenario, host, "stable") == 2


def test_saved_plan_is_refused_when_stale(scenario: Scenario) -> None:
    deploy(scenario, [1])
    scenario.write_spec([2])
    plan_path, proc = save_live_plan(scenario)
    assert proc.returncode == 2
    scenario.write_spec([3])
    proc = scenario.tfsconf(
        "apply", str(plan_path), "--yes", "--host-vars", str(scenario.host_vars_path)
    )
    assert proc.returncode == 1
    assert "stale plan" in proc.stderr
    assert all(scenario.version_dirs(h) == ["1"] for h in HOSTS)


def test_batching_change_restarts_host_by_host(scenario: Scenario) -> None:
    deploy(scenario, [1])
    pids = {h: scenario.server_pid(h) for h in HOSTS}
    # step 1: host by host is what this test watches (at one step, every host of the step
    # restarts at once)
    report = deploy(
        scenario, [1], step=1, batching={"max_batch_size": 8, "batch_timeout_micros": 0}
    )
    assert {h["status"] for h in report["hosts"]} == {"applied"}
    new = {h: scenario.server_pid(h) for h in HOSTS}
    assert all(new[h] != pids[h] for h in HOSTS)
    # serial 1: each host was recorded before the next one started
    times = [scenario.record(h)["applied_at"] for h in HOSTS]  # type: ignore[index]
    assert times == sorted(times)
    stderr_order = [line for line in scenario.last_stderr.splitlines() if ": restarted:" in line]
    assert [line.split("]")[0].strip(" [") for line in stderr_order] == list(HOSTS)


def test_failing_version_on_host_2_rolls_it_back_and_stops(scenario: Scenario) -> None:
    deploy(scenario, [1])
    releases = {h: scenario.current_release(h) for h in HOSTS}
    scenario.publish(2, fail_on=("h2",))
    scenario.write_spec([2], health_timeout=20)
    proc, report = scenario.apply()
    assert proc.returncode == 1
    hosts = by_host(report)
    assert hosts["h1"]["status"] == "applied"
    assert hosts["h2"]["status"] == "rolled-back"
    assert "version 2 failed to load" in hosts["h2"]["error"]
    assert hosts["h3"]["status"] == "untouched"
    assert "FAILED" in proc.stdout or report["ok"] is False
    # h2 back on its previous release, serving version 1 again; h3 never touched
    assert scenario.current_release("h2") == releases["h2"]
    assert states(scenario, "h2").get(1) == "AVAILABLE"
    assert scenario.record("h2")["release"] == releases["h2"]  # type: ignore[index]
    assert scenario.current_release("h3") == releases["h3"]
    assert scenario.version_dirs("h3") == ["1"]
    assert states(scenario, "h1").get(2) == "AVAILABLE"


def test_unreachable_host_stops_apply_in_preflight(scenario: Scenario) -> None:
    deploy(scenario, [1])
    releases = {h: scenario.current_release(h) for h in HOSTS}
    staged = {h: scenario.release_dirs(h) for h in HOSTS}
    scenario.make_unreachable("h3")
    scenario.write_spec([2])
    proc, _report = scenario.apply()
    assert proc.returncode == 1
    assert "h3" in proc.stderr and "nothing was changed" in proc.stderr
    for host in ("h1", "h2"):
        assert scenario.current_release(host) == releases[host]
        assert scenario.version_dirs(host) == ["1"]
        # the release their lock calls staged went with the locks
        assert scenario.release_dirs(host) == staged[host]


def test_concurrent_apply_is_refused_by_the_lock(scenario: Scenario) -> None:
    deploy(scenario, [1])
    lock = scenario.root("h2") / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "lock"
    # a dead run's lock: its heartbeat stopped long ago
    lock.write_text(
        '{"owner": {"operator": "alice@ops"}, "run_id": "other", "since": "2026-11-22T00:00:00Z",'
        ' "renewed_at": 0}\n'
    )
    scenario.write_spec([2])
    proc, report = scenario.apply()
    assert proc.returncode == 1
    hosts = by_host(report)
    assert hosts["h2"]["status"] == "locked"
    assert "locked by alice@ops" in hosts["h2"]["error"]
    assert all(scenario.version_dirs(h) == ["1"] for h in HOSTS)
    assert lock.exists()  # another run's lock is never released by this one
    for host in ("h1", "h3"):  # the locks this run took are released
        assert not (scenario.root(host) / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "lock").exists()
    proc, report = scenario.apply("--break-lock")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not lock.exists()


def labelled(scenario: Scenario, host: str, label: str) -> int:
    import grpc

    from tfsconf.apply.stubs import PredictionServiceStub
    from tfsconf.warmup.protos import tf_protos

    warmup = (
        scenario.root(host)
        / BASE_PATH.lstrip("/")
        / "2"
        / "assets.extra"
        / "tf_serving_warmup_requests"
    )
    from tfsconf.warmup.tfrecord import read_records

    log = tf_protos().prediction_log.PredictionLog.FromString(next(read_records(warmup)))
    request = log.predict_log.request
    request.model_spec.ClearField("version")
    request.model_spec.version_label = label
    address = scenario.bed.host(host).address
    with grpc.insecure_channel(f"{address}:8500") as channel:
        stub = PredictionServiceStub(channel)
        response = stub.Predict(request, timeout=5)
    return int(response.model_spec.version.value)


class LoadClient:
    """Predict requests (no version: the newest AVAILABLE one) round-robin over the hosts
    until stopped; bounded by a deadline in case a test forgets to stop it."""

    def __init__(
        self,
        scenario: Scenario,
        deadline: float = 240.0,
        *,
        label: str | None = None,
        hosts: tuple[str, ...] = HOSTS,
    ) -> None:
        self.scenario = scenario
        self.hosts = hosts
        self.label = label
        """Requests name this version label instead of taking the newest version."""
        self.deadline = time.monotonic() + deadline
        self.sent = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        import grpc

        from tfsconf.apply.stubs import PredictionServiceStub
        from tfsconf.warmup.protos import tf_protos
        from tfsconf.warmup.tfrecord import read_records

        host0 = self.scenario.root("h1") / BASE_PATH.lstrip("/") / "1"
        payload = next(read_records(host0 / "assets.extra" / "tf_serving_warmup_requests"))
        request = tf_protos().prediction_log.PredictionLog.FromString(payload).predict_log.request
        request.model_spec.ClearField("version")
        if self.label:
            request.model_spec.version_label = self.label
        channels = [
            grpc.insecure_channel(f"{self.scenario.bed.host(h).address}:8500") for h in self.hosts
        ]
        stubs = [PredictionServiceStub(c) for c in channels]
        try:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                stub = stubs[self.sent % len(stubs)]
                try:
                    stub.Predict(request, timeout=5)
                except grpc.RpcError as exc:
                    self.failures.append(f"{exc.code().name}: {exc.details()}")
                self.sent += 1
                time.sleep(0.01)
        finally:
            for channel in channels:
                channel.close()


def test_rollback_returns_every_host_to_its_previous_release(scenario: Scenario) -> None:
    deploy(scenario, [1])
    first = {h: scenario.current_release(h) for h in HOSTS}
    deploy(scenario, [2])
    pids = {h: scenario.server_pid(h) for h in HOSTS}
    proc = scenario.tfsconf(
        "rollback", str(scenario.spec_path), "--yes", "--host-vars", str(scenario.host_vars_path)
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for host in HOSTS:
        assert scenario.current_release(host) == first[host]
        assert states(scenario, host).get(1) == "AVAILABLE"
        assert scenario.server_pid(host) == pids[host]  # a models.config change: hot reload
        record = scenario.record(host)
        assert record is not None and record["release"] == first[host]
        assert [e["kind"] for e in record["history"]] == ["apply", "apply", "rollback"]
    # the spec still asks for version 2: plan shows the drift, apply would go forward again
    status = scenario.tfsconf(
        "status", str(scenario.spec_path), "--host-vars", str(scenario.host_vars_path)
    )
    assert status.returncode == 2 and "drift" in status.stdout
