"""An environment for the apply tests: a spec over a test bed, a model source of real
SavedModels, and `tfsconf apply` / `status` / `rollback` run as the user runs them, from a
base install: TensorFlow and tensorflow-serving-api cannot be imported (tests/notf.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from notf import without_tensorflow_env

from .testbed import TestBed

REPO = Path(__file__).resolve().parents[2]
TFSCONF = [sys.executable, "-m", "tfsconf"]
MODEL = "mixed"
BASE_PATH = "/srv/tfserving/models/mixed"
CONFIG_ROOT = "/srv/tfserving/config"
LOAD_SECONDS_FILE = "TFS_STANDIN_LOAD_SECONDS"
"""A file of this name in a version directory sets the stand-in's load time of it."""
SAMPLES = [
    {"dense": [0.5, 1.0, 1.5, 2.0], "count": 3, "tags": "a,b"},
    {"dense": [0.0, -1.0, 0.25, 4.0], "count": 0, "tags": "x"},
]


def publish_version(
    template: Path,
    source: Path,
    version: int,
    *,
    fail: bool = False,
    load_seconds: float | None = None,
) -> Path:
    """Version `version` of the model in a source directory, with its checksum manifest."""
    from tfsconf.modelcheck.manifest import write_manifest

    target = source / str(version)
    if not target.exists():
        shutil.copytree(template, target)
    if fail:  # the stand-in refuses to load a version carrying this marker
        (target / "TFS_STANDIN_FAIL_LOAD").write_text("fail\n")
    if load_seconds is not None:  # the stand-in takes this long to load this version
        (target / LOAD_SECONDS_FILE).write_text(f"{load_seconds}\n")
    write_manifest(target)
    return target


class Scenario:
    def __init__(self, bed: TestBed, workdir: Path, template: Path) -> None:
        self.bed = bed
        self.workdir = workdir
        self.template = template
        self.source = workdir / "source" / MODEL
        self.source.mkdir(parents=True)
        (workdir / "environments" / "samples").mkdir(parents=True)
        with (workdir / "environments" / "samples" / "mixed.jsonl").open("w") as handle:
            for sample in SAMPLES:
                handle.write(json.dumps(sample) + "\n")
        self.spec_path = workdir / "environments" / "bed.yaml"
        self.host_vars_path = workdir / "host_vars.yaml"
        self.host_vars_path.write_text(yaml.safe_dump(bed.host_vars()))

    def write_spec(
        self,
        versions: list[int],
        *,
        labels: dict[str, int] | None = None,
        batching: dict[str, Any] | None = None,
        step: int | str = 1,
        max_fail_percentage: int = 0,
        health_timeout: int = 30,
        extra_server: dict[str, Any] | None = None,
        more_servers: list[dict[str, Any]] | None = None,
        model_extra: dict[str, Any] | None = None,
        more_models: list[dict[str, Any]] | None = None,
    ) -> Path:
        for version in versions:
            self.publish(version)
        server: dict[str, Any] = {
            "name": "rank",
            "group": "fleet",
            "grpc_port": 8500,
            "rest_port": 8501,
            "models": [MODEL],
            "file_system_poll_wait_seconds": 1,
            "max_num_load_retries": 0,
        }
        if batching:
            server["batching"] = batching
        if extra_server:
            server.update(extra_server)
        model: dict[str, Any] = {
            "name": MODEL,
            "base_path": BASE_PATH,
            "source": {"kind": "local", "path": str(self.source)},
            "versions": {"policy": "specific", "versions": versions},
            "warmup": {"samples": "samples/mixed.jsonl", "records": 2},
        }
        if labels:
            model["labels"] = labels
        if model_extra:
            model.update(model_extra)
        spec = {
            "environment": "bed",
            "tfserving_version": "2.18.0",
            "paths": {"model_root": "/srv/tfserving/models", "config_root": CONFIG_ROOT},
            "connection": self.bed.connection_spec(),
            "runtime": "process",
            "rollout": {
                "step": step,
                "max_fail_percentage": max_fail_percentage,
                "health_timeout_seconds": health_timeout,
                "keep_releases": 3,
            },
            "host_groups": {"fleet": {"hosts": self.bed.spec_hosts()}},
            "servers": [server, *(more_servers or [])],
            "models": [model, *(more_models or [])],
        }
        self.spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return self.spec_path

    def publish(
        self,
        version: int,
        *,
        fail_on: tuple[str, ...] = (),
        load_seconds: Mapping[str, float] | None = None,
    ) -> None:
        """A version in the source as apply reads it (the controller's mount) and in each
        host's own mount of the source (under its root); on `fail_on` hosts the version
        carries the stand-in's load-failure marker, on the hosts `load_seconds` names its
        load time."""
        publish_version(self.template, self.source, version)
        for host in self.bed.hosts:
            mount = host.root / str(self.source).lstrip("/")
            publish_version(
                self.template,
                mount,
                version,
                fail=host.name in fail_on,
                load_seconds=(load_seconds or {}).get(host.name),
            )

    def tfsconf(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TFSCONF, *args],
            cwd=self.workdir,
            env=without_tensorflow_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    last_stderr = ""

    def make_unreachable(self, host: str) -> None:
        """ssh mode: the host's sshd is gone; local mode: its connection is ssh to a port
        where nothing listens."""
        import yaml

        values = self.bed.host_vars()
        if self.bed.mode == "ssh":
            pid_file = self.bed.base_dir / "hosts" / host / "sshd" / "sshd.pid"
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
        else:
            values[host].update(
                {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 9}
            )
        self.host_vars_path.write_text(yaml.safe_dump(values))

    def apply(
        self, *extra: str, timeout: float = 300
    ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        proc = self.tfsconf(
            "apply",
            str(self.spec_path),
            "--yes",
            "--host-vars",
            str(self.host_vars_path),
            "--format",
            "json",
            *extra,
            timeout=timeout,
        )
        self.last_stderr = proc.stderr
        try:
            report = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError:
            report = {}
        return proc, report

    # --- what is on a host ------------------------------------------------------------

    def root(self, host: str) -> Path:
        return self.bed.host(host).root

    def server_pid(self, host: str, server: str = "rank") -> int | None:
        path = self.root(host) / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "run" / f"{server}.pid"
        return int(path.read_text()) if path.exists() else None

    def current_release(self, host: str, server: str = "rank") -> str | None:
        link = self.root(host) / CONFIG_ROOT.lstrip("/") / server / "current"
        return Path(link.readlink()).name if link.is_symlink() else None

    def release_dirs(self, host: str, server: str = "rank") -> list[str]:
        releases = self.root(host) / CONFIG_ROOT.lstrip("/") / server / "releases"
        return sorted(p.name for p in releases.iterdir()) if releases.is_dir() else []

    def version_dirs(self, host: str) -> list[str]:
        base = self.root(host) / BASE_PATH.lstrip("/")
        return sorted(p.name for p in base.iterdir()) if base.is_dir() else []

    def record(self, host: str) -> dict[str, Any] | None:
        path = self.root(host) / CONFIG_ROOT.lstrip("/") / ".tfsconf" / "state.json"
        return json.loads(path.read_text()) if path.exists() else None
