"""Every bundled example environment (environments/*.yaml) applied end to end on the docker
bed, with its models served by stand-in sources of the kinds it names: a WebHDFS namenode
(md5 checksums, the webhdfs default), an HTTP server with a version index (the mnist model's
`latest` policy) and sha256 manifests, and a local directory mounted on every host.

The example is applied as written except for what only a real estate has:
- hosts: each host group gets test hosts (production: ranking on h1 and h2, vision on h3;
  staging: h1 and h2), and `connection` is the bed's;
- sources: the same paths under the stand-in servers' addresses (http instead of https);
- image: the stand-in base (tests/docker/baseimage.py) and its allocator pin (Debian's);
- GPUs: no GPU here, so each server's `gpu` (docker run --gpus) and
  `per_process_gpu_memory_fraction` (validate refuses it on a CPU server) are dropped; every
  other server setting stays.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from notf import without_tensorflow_env

from tfsconf.apply.serving import Endpoint, model_status
from tfsconf.apply.stubs import PredictionServiceStub
from tfsconf.warmup.protos import tf_protos
from tfsconf.warmup.tfrecord import read_records

from .baseimage import BaseImage
from .dockerbed import DockerBed
from .example_models import BUILDERS
from .example_sources import Files, WebHdfs, checksum, serve, write_index

pytestmark = [pytest.mark.slow, pytest.mark.docker]
REPO = Path(__file__).resolve().parents[2]
BASE_REF = "tfsconf-test/serving-standin:2.18.0"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
# the hosts of each example's groups on the bed
GROUPS = {
    "production": {"ranking": ["h1", "h2"], "vision": ["h3"]},
    "staging": {"staging": ["h1", "h2"]},
}
# what a latest/all source holds: the newest `count` of these are served
PUBLISHED_FOR_LATEST = [7, 8, 9]
APPLY_SECONDS = 1500


@pytest.fixture(scope="module")
def model_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("example-models")
    return {name: build(root / name) for name, build in BUILDERS.items()}


def source_versions(model: dict[str, Any]) -> list[int]:
    policy = model["versions"]
    if policy["policy"] == "specific":
        return list(policy["versions"])
    return PUBLISHED_FOR_LATEST


def served_versions(model: dict[str, Any]) -> list[int]:
    policy = model["versions"]
    if policy["policy"] == "specific":
        return sorted(policy["versions"])
    if policy["policy"] == "latest":
        return PUBLISHED_FOR_LATEST[-policy.get("count", 1) :]
    return PUBLISHED_FOR_LATEST


class ExampleOnBed:
    def __init__(
        self, name: str, bed: DockerBed, workdir: Path, base: BaseImage, peer: str
    ) -> None:
        self.name = name
        self.bed = bed
        self.workdir = workdir
        self.base = base
        self.peer = peer
        self.example = yaml.safe_load((REPO / "environments" / f"{name}.yaml").read_text())
        self.spec_path = workdir / "environments" / f"{name}.yaml"
        self.host_vars_path = workdir / "host_vars.yaml"
        self.requests: dict[str, list[str]] = {}

    # --- the sources -------------------------------------------------------------------

    def publish(self, templates: dict[str, Path], stack: ExitStack) -> dict[str, str]:
        """Each model's versions in a source of its kind; returns model -> new location."""
        http_root = self.workdir / "http"
        hdfs_root = self.workdir / "hdfs"
        http_root.mkdir()
        hdfs_root.mkdir()
        http_at, self.requests["http"] = stack.enter_context(serve(http_root, self.peer, Files))
        hdfs_at, self.requests["webhdfs"] = stack.enter_context(
            serve(hdfs_root, self.peer, WebHdfs)
        )
        locations = {}
        for model in self.example["models"]:
            source = model["source"]
            versions = source_versions(model)
            if source["kind"] == "local":
                mounts = [self.workdir / "nfs" / model["name"]]
                mounts += [h.root / str(mounts[0]).lstrip("/") for h in self.bed.hosts]
                for mount in mounts:
                    self._versions(templates[model["name"]], mount, versions, "sha256")
                locations[model["name"]] = str(mounts[0])
                continue
            url = urllib.parse.urlsplit(source["url"])
            root = hdfs_root if source["kind"] == "webhdfs" else http_root
            model_dir = root / url.path.lstrip("/")
            default = "md5" if source["kind"] == "webhdfs" else "sha256"
            self._versions(
                templates[model["name"]], model_dir, versions, source.get("checksums", default)
            )
            if source["kind"] == "http":
                write_index(model_dir, versions)
            scheme, at = ("webhdfs", hdfs_at) if source["kind"] == "webhdfs" else ("http", http_at)
            locations[model["name"]] = f"{scheme}://{at}{url.path}"
        return locations

    @staticmethod
    def _versions(template: Path, model_dir: Path, versions: list[int], kind: str) -> None:
        for version in versions:
            target = model_dir / str(version)
            shutil.copytree(template, target)
            checksum(target, kind)

    # --- the spec ------------------------------------------------------------------------

    def write_spec(self, locations: dict[str, str]) -> Path:
        spec = json.loads(json.dumps(self.example))
        spec["connection"] = self.bed.connection_spec()
        for group, hosts in GROUPS[self.name].items():
            spec["host_groups"][group]["hosts"] = [
                {"name": h, "address": self.bed.host(h).address} for h in hosts
            ]
        image = spec.setdefault("image", {})
        image["base_cpu"] = BASE_REF
        image["base_gpu"] = BASE_REF
        allocator = image.setdefault("allocator", {})
        assert allocator.get("kind", "jemalloc") == "jemalloc", allocator
        allocator["package"] = f"libjemalloc2={self.base.packages['libjemalloc2']}"
        allocator["library"] = JEMALLOC
        for server in spec["servers"]:
            server.pop("gpu", None)
            server.pop("per_process_gpu_memory_fraction", None)
        for model in spec["models"]:
            source = model["source"]
            if source["kind"] == "local":
                source["path"] = locations[model["name"]]
            else:
                source["url"] = locations[model["name"]]
        self.spec_path.parent.mkdir(parents=True)
        shutil.copytree(REPO / "environments" / "samples", self.spec_path.parent / "samples")
        self.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        self.host_vars_path.write_text(yaml.safe_dump(self.bed.host_vars()))
        self.spec = spec
        return self.spec_path

    def tfsconf(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tfsconf", *args],
            cwd=self.workdir,
            env=without_tensorflow_env(),
            capture_output=True,
            text=True,
            timeout=APPLY_SECONDS,
            check=False,
        )

    def run(self, command: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.tfsconf(
            command, str(self.spec_path), "--host-vars", str(self.host_vars_path), *extra
        )

    # --- what serves -------------------------------------------------------------------

    def placements(self) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        """(host, server, model) for every model of every server on every host."""
        models = {m["name"]: m for m in self.spec["models"]}
        for server in self.spec["servers"]:
            for host in GROUPS[self.name][server["group"]]:
                for name in server["models"]:
                    yield host, server, models[name]

    def predict_by_label(
        self, host: str, server: dict[str, Any], model: dict[str, Any], label: str
    ) -> int:
        """A request of the version's own warmup file, sent by label; the version that
        answered."""
        version = model["labels"][label]
        warmup = (
            self.bed.host(host).root
            / model["base_path"].lstrip("/")
            / str(version)
            / "assets.extra"
            / "tf_serving_warmup_requests"
        )
        log = tf_protos().prediction_log.PredictionLog.FromString(next(read_records(warmup)))
        request = log.predict_log.request
        request.model_spec.ClearField("version")
        request.model_spec.version_label = label
        import grpc

        address = f"{self.bed.host(host).address}:{server['grpc_port']}"
        with grpc.insecure_channel(address) as channel:
            response = PredictionServiceStub(channel).Predict(request, timeout=30)
        return int(response.model_spec.version.value)


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_bundled_example_applies_end_to_end(
    name: str,
    standin_base: BaseImage,
    model_templates: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    hosts = sorted({h for group in GROUPS[name].values() for h in group})
    bed = DockerBed.create(tmp_path_factory.mktemp(f"bed-{name}"), "ssh", len(hosts))
    with ExitStack() as stack:
        stack.callback(bed.close)
        bed.import_image(standin_base.tarball, BASE_REF)
        # the root-namespace end of h1's link: the controller and every host reach it
        peer = bed.host("h1").address.rsplit(".", 1)[0] + ".1"
        example = ExampleOnBed(name, bed, tmp_path_factory.mktemp(name), standin_base, peer)
        example.write_spec(example.publish(model_templates, stack))

        check = example.tfsconf("validate", str(example.spec_path))
        assert check.returncode == 0, check.stdout + check.stderr
        proc = example.run("apply", "--yes", "--format", "json")
        assert proc.returncode == 0, proc.stderr[-4000:]
        report = json.loads(proc.stdout)
        assert {h["host"]: h["status"] for h in report["hosts"]} == dict.fromkeys(
            hosts, "applied"
        ), proc.stderr[-4000:]

        # every model of every server serves the versions of its policy
        for host, server, model in example.placements():
            endpoint = Endpoint(bed.host(host).address, server["grpc_port"])
            states = {v: s for v, (s, _) in model_status(endpoint, model["name"]).items()}
            assert states == dict.fromkeys(served_versions(model), "AVAILABLE"), (
                host,
                server["name"],
                model["name"],
                states,
            )
            base = bed.host(host).root / model["base_path"].lstrip("/")
            assert sorted(int(p.name) for p in base.iterdir() if p.name.isdigit()) == (
                served_versions(model)
            )
            for label in model.get("labels", {}):
                version = example.predict_by_label(host, server, model, label)
                assert version == model["labels"][label], (host, model["name"], label)
            if server.get("batching", {}).get("per_model"):
                for version in served_versions(model):
                    params = base / str(version) / "batching_params.pbtxt"
                    text = params.read_text()
                    size = model["batching"]["max_batch_size"]
                    assert re.search(rf"max_batch_size\s*{{\s*value:\s*{size}\s*}}", text), text

        # what the sources were asked for: the http index (mnist's latest policy), md5 files
        # of the webhdfs versions, through the namenode's redirect
        kinds = {m["source"]["kind"] for m in example.spec["models"]}
        if "http" in kinds:
            assert any(r.endswith("/.tfsconf-versions.json") for r in example.requests["http"])
        if "webhdfs" in kinds:
            assert any("/MD5SUMS?op=OPEN" in r for r in example.requests["webhdfs"])
            assert any(r.startswith("/datanode/") for r in example.requests["webhdfs"])

        status = example.run("status", "--format", "json")
        assert status.returncode == 0, status.stdout + status.stderr
        for host in json.loads(status.stdout)["hosts"]:
            for server in host["servers"]:
                assert server["container"]["running"] is True, server
                assert all(m["ok"] for m in server["models"]), server

        # applied as written: the same spec again changes nothing
        again = example.run("apply", "--yes", "--format", "json")
        assert again.returncode == 0, again.stderr[-4000:]
        assert {h["host"]: h["status"] for h in json.loads(again.stdout)["hosts"]} == (
            dict.fromkeys(hosts, "unchanged")
        ), again.stderr[-4000:]
