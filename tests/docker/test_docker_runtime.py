"""The docker runtime end to end on real Docker engines: three test hosts, each with its own
dockerd (tests/docker/dockerbed.py), a locally built stand-in for tensorflow/serving as the
base (tests/docker/baseimage.py), the image built on each host from the Dockerfile tfsconf
compiled, and the compiled unit's own ExecStartPre/ExecStart/ExecStop lines run by
tests/docker/unit_runner.py (systemd is not the init here).

The scenarios build on each other and run in file order: first deploy, hot reload,
restart, image change, a build that fails on one host, rollback, an engine restart.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from apply.scenario import BASE_PATH, CONFIG_ROOT, MODEL, Scenario

from tfsconf.apply.serving import Endpoint, model_status
from tfsconf.apply.stubs import PredictionServiceStub
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.tfrecord import read_records

from .baseimage import BaseImage
from .dockerbed import DockerBed

pytestmark = [pytest.mark.slow, pytest.mark.docker]
HOSTS = ("h1", "h2", "h3")
CONTAINER = "tfserving-rank"
UNIT = "tfserving-rank.service"
BASE_REF = "tfsconf-test/serving-standin:2.18.0"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4"
FIRST_CONF = "background_thread:true,dirty_decay_ms:5000"
SECOND_CONF = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0"
BATCHING = {"max_batch_size": 8, "batch_timeout_micros": 0}
STOP_LIMIT_SECONDS = 5.0
APPLY_SECONDS = 1500.0


class DockerScenario(Scenario):
    """The apply scenario of tests/apply with the docker runtime: host networking, the
    stand-in base, and the allocator pinned to the versions in the base's apt repository."""

    def __init__(self, bed: DockerBed, workdir: Path, template: Path, base: BaseImage) -> None:
        super().__init__(bed, workdir, template)
        self.docker_bed = bed
        self.base = base
        self.allocator: dict[str, Any] = self.jemalloc(FIRST_CONF)

    def tfsconf(self, *args: str, timeout: float = APPLY_SECONDS) -> Any:
        # a host builds its image before it restarts: slower than the process runtime
        try:
            return super().tfsconf(*args, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr or b""
            text = err.decode(errors="replace") if isinstance(err, bytes) else str(err)
            raise AssertionError(
                f"tfsconf {args[0]} ran over {timeout:.0f} s: {text[-4000:]}"
            ) from exc

    def apply(self, *extra: str, timeout: float = APPLY_SECONDS) -> Any:
        return super().apply(*extra, timeout=timeout)

    def jemalloc(self, conf: str) -> dict[str, Any]:
        version = self.base.packages["libjemalloc2"]
        return {
            "kind": "jemalloc",
            "package": f"libjemalloc2={version}",
            "library": JEMALLOC,
            "malloc_conf": conf,
        }

    def tcmalloc(self) -> dict[str, Any]:
        version = self.base.packages["libgoogle-perftools4"]
        return {
            "kind": "tcmalloc",
            "package": f"libgoogle-perftools4={version}",
            "library": TCMALLOC,
        }

    def write_spec(self, versions: list[int], **kwargs: Any) -> Path:
        path = super().write_spec(versions, **kwargs)
        spec = yaml.safe_load(path.read_text())
        spec["runtime"] = "docker"
        spec["docker_network"] = "host"
        spec["image"] = {"base_cpu": BASE_REF, "allocator": self.allocator}
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    # --- what runs on a host ----------------------------------------------------------

    def inspect(self, host: str, fmt: str, what: str = CONTAINER) -> str:
        return self.docker_bed.docker(host, "inspect", "--format", fmt, what).strip()

    def container_id(self, host: str) -> str:
        return self.inspect(host, "{{.Id}}")

    def server_pid(self, host: str, server: str = "rank") -> int:
        """The server process: the child of the container's init (docker run --init)."""
        init = int(self.inspect(host, "{{.State.Pid}}"))
        children = Path(f"/proc/{init}/task/{init}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def server_environ(self, host: str) -> dict[str, str]:
        raw = Path(f"/proc/{self.server_pid(host)}/environ").read_bytes()
        return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)

    def server_maps(self, host: str) -> str:
        return Path(f"/proc/{self.server_pid(host)}/maps").read_text()

    def expected_image(self) -> str:
        out = self.workdir / "compiled"
        proc = self.tfsconf("compile", str(self.spec_path), "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        return str(json.loads((out / "manifest.json").read_text())["images"]["tfserving-cpu"])

    def states(self, host: str) -> dict[int, str]:
        address = self.bed.host(host).address
        return {v: s for v, (s, _) in model_status(Endpoint(address, 8500), MODEL).items()}

    def status(self) -> tuple[int, dict[str, Any]]:
        proc = self.tfsconf(
            "status",
            str(self.spec_path),
            "--host-vars",
            str(self.host_vars_path),
            "--format",
            "json",
        )
        return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else {}


class LoadClient:
    """Predict requests (no version: the newest AVAILABLE one) round-robin over the given
    hosts until stopped, with failures counted per host; bounded in time and count. The
    request is the first predict record of version 1's warmup file, sent with tfsconf's own
    gRPC stub (tfsconf/apply/stubs.py) and message classes: no TensorFlow import."""

    def __init__(
        self, scenario: DockerScenario, hosts: tuple[str, ...] = HOSTS, limit: int = 50_000
    ) -> None:
        self.scenario = scenario
        self.hosts = hosts
        self.deadline = time.monotonic() + 300.0
        self.limit = limit
        self.sent = dict.fromkeys(hosts, 0)
        self.failures: dict[str, list[str]] = {h: [] for h in hosts}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LoadClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _request(self) -> Any:
        log_type = tf_protos().prediction_log.PredictionLog
        version_dir = self.scenario.root(self.hosts[0]) / BASE_PATH.lstrip("/") / "1"
        warmup = version_dir / "assets.extra" / "tf_serving_warmup_requests"
        for payload in read_records(warmup):
            log = log_type.FromString(payload)
            if log.WhichOneof("log_type") == "predict_log":
                request = log.predict_log.request
                request.model_spec.ClearField("version")
                request.model_spec.ClearField("version_label")
                return request
        raise AssertionError(f"no predict record in {warmup}")

    def _run(self) -> None:
        import grpc

        request = self._request()
        channels = {
            h: grpc.insecure_channel(f"{self.scenario.bed.host(h).address}:8500")
            for h in self.hosts
        }
        stubs = {h: PredictionServiceStub(c) for h, c in channels.items()}
        count = 0
        try:
            while (
                not self._stop.is_set() and time.monotonic() < self.deadline and count < self.limit
            ):
                host = self.hosts[count % len(self.hosts)]
                try:
                    stubs[host].Predict(request, timeout=5)
                except grpc.RpcError as exc:
                    self.failures[host].append(f"{exc.code().name}: {exc.details()}")
                self.sent[host] += 1
                count += 1
                time.sleep(0.01)
        finally:
            for channel in channels.values():
                channel.close()


def by_host(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {h["host"]: h for h in report["hosts"]}


@pytest.fixture(scope="module")
def fleet(
    docker_bed: DockerBed,
    standin_base: BaseImage,
    docker_model_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> DockerScenario:
    docker_bed.import_image(standin_base.tarball, BASE_REF)
    return DockerScenario(
        docker_bed, tmp_path_factory.mktemp("docker-work"), docker_model_template, standin_base
    )


def _apply(fleet: DockerScenario) -> dict[str, Any]:
    proc, report = fleet.apply()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert {h: r["status"] for h, r in by_host(report).items()} == dict.fromkeys(HOSTS, "applied")
    return report


def test_1_first_deploy_builds_the_image_and_preloads_jemalloc(fleet: DockerScenario) -> None:
    fleet.write_spec([1])
    _apply(fleet)
    image = fleet.expected_image()
    compiled = (fleet.workdir / "compiled" / "images" / "tfserving-cpu" / "Dockerfile").read_text()
    for host in HOSTS:
        # built on the host from the compiled Dockerfile
        state_dir = fleet.root(host) / CONFIG_ROOT.lstrip("/") / ".tfsconf"
        assert (state_dir / "images" / "tfserving-cpu" / "Dockerfile").read_text() == compiled
        assert fleet.inspect(host, "{{.Config.Image}}") == image
        assert fleet.inspect(host, "{{.State.Running}}") == "true"
        # jemalloc really loaded in the server process, with its environment
        assert JEMALLOC in fleet.server_maps(host)
        environ = fleet.server_environ(host)
        assert environ["LD_PRELOAD"] == JEMALLOC
        assert environ["MALLOC_CONF"] == FIRST_CONF
        # models and config from read-only bind mounts at the same paths
        mounts = json.loads(fleet.inspect(host, "{{json .Mounts}}"))
        assert {(m["Destination"], m["RW"]) for m in mounts} == {
            ("/srv/tfserving/models", False),
            (f"{CONFIG_ROOT}/rank", False),
        }
        assert fleet.states(host) == {1: "AVAILABLE"}
    code, status = fleet.status()
    assert code == 0, status
    for host in status["hosts"]:
        (server,) = host["servers"]
        assert server["container"]["image"] == image
        assert server["container"]["running"] is True


def test_2_version_bump_hot_reloads_in_the_same_container(fleet: DockerScenario) -> None:
    before = {h: fleet.container_id(h) for h in HOSTS}
    fleet.write_spec([2])
    with LoadClient(fleet) as load:
        _apply(fleet)
    assert {h: fleet.container_id(h) for h in HOSTS} == before
    assert all(fleet.states(h).get(2) == "AVAILABLE" for h in HOSTS)  # 1 may show END
    print(f"version bump under load: {load.sent} requests sent, failed: {load.failures}")
    assert sum(load.sent.values()) > 30, load.sent
    assert load.failures == {h: [] for h in HOSTS}


def test_3_batching_change_restarts_each_container_quickly(fleet: DockerScenario) -> None:
    before = {h: fleet.container_id(h) for h in HOSTS}
    fleet.write_spec([2], batching=BATCHING)
    _apply(fleet)
    assert "restart" in fleet.last_stderr  # the plan's cost wording
    for host in HOSTS:
        assert fleet.container_id(host) != before[host]
        events = fleet.docker_bed.unit_events(host, UNIT)
        stops = [e for e in events if e["event"] == "stopped"]
        assert stops, events
        seconds = stops[-1]["seconds"]
        print(f"{host}: old container stopped in {seconds:.2f} s (docker stop, --init)")
        assert seconds < STOP_LIMIT_SECONDS, (host, seconds)
        assert not [e for e in events if e["event"] == "killed"]
        assert fleet.states(host).get(2) == "AVAILABLE"


def test_4_image_change_rebuilds_then_restarts_with_the_new_environment(
    fleet: DockerScenario,
) -> None:
    old_image = fleet.expected_image()
    fleet.allocator = fleet.jemalloc(SECOND_CONF)
    fleet.write_spec([2], batching=BATCHING)
    _apply(fleet)
    assert "rebuild" in fleet.last_stderr
    image = fleet.expected_image()
    assert image != old_image
    for host in HOSTS:
        assert fleet.inspect(host, "{{.Config.Image}}") == image
        assert fleet.server_environ(host)["MALLOC_CONF"] == SECOND_CONF
        assert JEMALLOC in fleet.server_maps(host)


def test_5_image_failing_to_build_on_h2_rolls_h2_back_and_stops(
    fleet: DockerScenario, standin_base: BaseImage
) -> None:
    # h2's mirror lacks tcmalloc: the same base, its apt repository without the package
    fleet.docker_bed.docker("h2", "import", str(standin_base.tarball_without_tcmalloc), BASE_REF)
    running = {h: fleet.container_id(h) for h in HOSTS}
    images = {h: fleet.inspect(h, "{{.Config.Image}}") for h in HOSTS}
    fleet.allocator = fleet.tcmalloc()
    fleet.write_spec([2], batching=BATCHING)
    with LoadClient(fleet, hosts=("h2",)) as load:
        proc, report = fleet.apply()
    assert proc.returncode == 1, proc.stderr[-4000:]
    hosts = by_host(report)
    assert hosts["h1"]["status"] == "applied"
    assert hosts["h2"]["status"] == "rolled-back"
    assert hosts["h3"]["status"] == "untouched"
    error = hosts["h2"]["error"]
    print(f"h2 error: {error}")
    assert "docker build" in error and "RUN apt-get update" in error, error
    assert "E: " in error and "libgoogle-perftools4" in error, error
    # h2 and h3 still serve from the containers they had, without a gap on h2
    for host in ("h2", "h3"):
        assert fleet.container_id(host) == running[host]
        assert fleet.inspect(host, "{{.Config.Image}}") == images[host]
        assert fleet.states(host).get(2) == "AVAILABLE"
    assert load.sent["h2"] > 10 and load.failures["h2"] == [], load.failures["h2"][:3]
    # h1 runs tcmalloc now
    assert fleet.server_environ("h1")["LD_PRELOAD"] == TCMALLOC
    assert TCMALLOC in fleet.server_maps("h1")


def test_6_rollback_runs_the_previous_image_without_rebuilding(fleet: DockerScenario) -> None:
    # h1's previous release is the image change of scenario 4 (h2 and h3: scenario 3's)
    created = {
        h: {
            ref: fleet.inspect(h, "{{.Created}}", ref)
            for ref in fleet.docker_bed.docker(
                h, "images", "--format", "{{.Repository}}:{{.Tag}}"
            ).split()
            if ref.startswith("tfsconf/")
        }
        for h in HOSTS
    }
    proc = fleet.tfsconf(
        "rollback", str(fleet.spec_path), "--yes", "--host-vars", str(fleet.host_vars_path)
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert ": build" not in proc.stderr  # every image was still on its host
    for host in HOSTS:
        record = fleet.record(host)
        assert record is not None
        running = fleet.inspect(host, "{{.Config.Image}}")
        assert running in created[host]  # an image that existed before the rollback
        assert fleet.states(host).get(2) == "AVAILABLE"
        environ = fleet.server_environ(host)
        assert environ["LD_PRELOAD"] == JEMALLOC
        if host == "h1":
            assert environ["MALLOC_CONF"] == SECOND_CONF  # back to scenario 4's image
    after = {h: {ref: fleet.inspect(h, "{{.Created}}", ref) for ref in created[h]} for h in HOSTS}
    assert after == created  # nothing was rebuilt


def test_7_dockerd_restart_brings_the_server_back(fleet: DockerScenario) -> None:
    before = fleet.container_id("h3")
    down = fleet.docker_bed.restart_dockerd("h3")
    print(f"h3: dockerd down for {down:.1f} s")
    deadline = time.monotonic() + 120
    while True:
        _code, status = fleet.status()
        healthy = all(
            m["ok"] for h in status.get("hosts", []) for s in h["servers"] for m in s["models"]
        )
        if healthy:
            break
        assert time.monotonic() < deadline, status
        time.sleep(2)
    assert fleet.container_id("h3") != before
    events = [e["event"] for e in fleet.docker_bed.unit_events("h3", UNIT)]
    assert "main-exited" in events and "restart" in events
    print(f"h3: back after {time.monotonic() - deadline + 120:.1f} s")
