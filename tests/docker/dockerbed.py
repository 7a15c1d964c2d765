"""A test bed whose hosts each run their own Docker engine.

Every host of tests/apply/testbed.py is a network namespace; here it also gets a private
mount namespace, held by a small process and shared by that host's sshd and dockerd:
- a fresh tmpfs on /run, so /run/docker.sock, dockerd's --exec-root (/run/docker) and its
  containerd are the host's own, and the docker CLI finds its engine at the default path;
- the host's root R/srv bind-mounted on /srv, so the absolute paths the compiled unit
  mounts into the container (/srv/tfserving/...) are that host's files.
dockerd runs with its own --data-root (under the bed's directory), --iptables=false
(the namespace has no NAT to manage), and is stopped and its data removed on close.

The base image (tests/docker/baseimage.py) is imported into each engine with `docker
import` under the name the scenario spec gives as its base.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from apply.testbed import TestBed, TestBedError, TestHost

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
DOCKERD_READY_SECONDS = 90.0
DOCKERD_STOP_SECONDS = 30.0
UNIT_RUNNER = Path(__file__).resolve().parent / "unit_runner.py"

_HOLDER_SCRIPT = """set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/lock
mount --bind "$1/srv" /srv
touch "$2"
exec sleep infinity
"""


class DockerBed(TestBed):
    __test__ = False

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._holders: dict[str, subprocess.Popen[bytes]] = {}
        self._dockerds: dict[str, subprocess.Popen[bytes]] = {}

    def _dir(self, host: TestHost) -> Path:
        return host.root.parent

    def enter(self, host: TestHost) -> list[str]:
        holder = self._holders.get(host.name)
        if holder is None:
            return super().enter(host)
        return ["nsenter", "-t", str(holder.pid), "-m", "-n"]

    def _prepare_hosts(self) -> None:
        if self.mode != "ssh":
            raise TestBedError("docker hosts need network namespaces (ssh mode)")
        for host in self.hosts:
            (host.root / "srv").mkdir(parents=True, exist_ok=True)
            ready = self._dir(host) / "mntns.ready"
            holder = subprocess.Popen(
                [
                    *super().enter(host),
                    "unshare",
                    "--mount",
                    "--propagation",
                    "private",
                    "/bin/sh",
                    "-c",
                    _HOLDER_SCRIPT,
                    "holder",
                    str(host.root),
                    str(ready),
                ],
                stdin=subprocess.DEVNULL,
            )
            self._holders[host.name] = holder
            deadline = time.monotonic() + 10
            while not ready.exists():
                if holder.poll() is not None or time.monotonic() > deadline:
                    raise TestBedError(f"mount namespace of {host.name} not ready")
                time.sleep(0.02)
            time.sleep(0.05)  # the exec into sleep
        for host in self.hosts:
            self.start_dockerd(host)
        for host in self.hosts:
            self._wait_dockerd(host)

    # --- the engine -------------------------------------------------------------------

    def docker(self, host: TestHost | str, *args: str, timeout: float = 120) -> str:
        """Run the docker CLI against the host's engine (for observing it, and importing
        the base image); raise on failure."""
        target = self.host(host) if isinstance(host, str) else host
        proc = subprocess.run(
            [*self.enter(target), DOCKER, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise TestBedError(f"docker {' '.join(args)} on {target.name}: {proc.stderr}")
        return proc.stdout

    def start_dockerd(self, host: TestHost) -> None:
        data = self._dir(host) / "docker"
        data.mkdir(exist_ok=True)
        log = (self._dir(host) / "dockerd.log").open("ab")
        self._dockerds[host.name] = subprocess.Popen(
            [
                *self.enter(host),
                DOCKERD,
                f"--data-root={data}",
                "--exec-root=/run/docker",
                "--pidfile=/run/docker.pid",
                "--host=unix:///run/docker.sock",
                "--iptables=false",
                "--ip6tables=false",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )

    def _wait_dockerd(self, host: TestHost) -> None:
        deadline = time.monotonic() + DOCKERD_READY_SECONDS
        while True:
            dockerd = self._dockerds[host.name]
            if dockerd.poll() is not None:
                log = (self._dir(host) / "dockerd.log").read_text(errors="replace")
                raise TestBedError(f"dockerd of {host.name} exited: {log[-2000:]}")
            probe = subprocess.run(
                [*self.enter(host), DOCKER, "version", "--format", "{{.Server.Version}}"],
                capture_output=True,
                check=False,
                timeout=30,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise TestBedError(f"dockerd of {host.name} not answering")
            time.sleep(0.2)

    def restart_dockerd(self, name: str) -> float:
        """Stop the host's dockerd as its service manager would (SIGTERM, wait), start it
        again and wait until it answers; returns the seconds it was down."""
        host = self.host(name)
        dockerd = self._dockerds[name]
        started = time.monotonic()
        dockerd.send_signal(signal.SIGTERM)
        dockerd.wait(timeout=DOCKERD_STOP_SECONDS)
        self.start_dockerd(host)
        self._wait_dockerd(host)
        return time.monotonic() - started

    def import_image(self, tarball: Path, reference: str) -> None:
        for host in self.hosts:
            self.docker(host, "import", str(tarball), reference, timeout=300)

    # --- what the apply playbooks see ---------------------------------------------------

    def host_vars(self) -> dict[str, dict[str, Any]]:
        values = super().host_vars()
        for host_values in values.values():
            # systemd is not the init here: the unit's own lines run through the test runner
            host_values["tfsconf_unit_runner"] = ["/usr/bin/python3", str(UNIT_RUNNER)]
        return values

    def unit_events(self, host: str, unit: str) -> list[dict[str, Any]]:
        import json

        path = self.host(host).root / "var" / "log" / "unit-runner" / f"{unit}.events"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def _close_hosts(self) -> list[str]:
        errors = []
        for host in self.hosts:
            if host.name not in self._holders:
                continue
            runner_state = host.root / "var" / "lib" / "unit-runner"
            for pid_file in runner_state.glob("*.pid") if runner_state.is_dir() else []:
                with contextlib.suppress(ValueError, ProcessLookupError):
                    import os

                    os.kill(int(pid_file.read_text()), signal.SIGKILL)
            dockerd = self._dockerds.get(host.name)
            if dockerd is not None and dockerd.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired, TestBedError):
                    ids = self.docker(host, "ps", "-q", timeout=10).split()
                    if ids:
                        self.docker(host, "kill", *ids, timeout=20)
                dockerd.send_signal(signal.SIGTERM)
                try:
                    dockerd.wait(timeout=DOCKERD_STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    errors.append(f"dockerd of {host.name} did not stop")
                    dockerd.kill()
        return errors

    def close(self) -> None:
        try:
            super().close()
        finally:
            for holder in self._holders.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    holder.wait(timeout=5)
            for host in self.hosts:
                shutil.rmtree(self._dir(host) / "docker", ignore_errors=True)


def _main() -> None:  # manual check: python -m tests.docker.dockerbed <dir>
    bed = DockerBed.create(Path(sys.argv[1]), "ssh", 1)
    try:
        print(bed.docker("h1", "info", "--format", "{{.Driver}} {{.InitBinary}}"))
    finally:
        bed.close()


if __name__ == "__main__":
    _main()
