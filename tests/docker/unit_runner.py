#!/usr/bin/python3
"""Runs a compiled systemd unit's own command lines where systemd is not the init (the
test hosts here): ONLY for tfsconf's tests, in place of `systemctl`.

    unit_runner.py restarted|started|stopped <path to the .service file>

It reads [Service] as systemd does for the keys tfsconf's units use (Environment=,
ExecStartPre=, ExecStart=, ExecStop=, Restart=, RestartSec=, TimeoutStopSec=; a leading
`-` ignores a command's failure; a trailing backslash continues a line) and runs those
exact lines. A detached supervisor per unit keeps ExecStart running: when it exits, the
supervisor waits RestartSec and runs ExecStartPre and ExecStart again (Restart=always).
A stop runs ExecStop, then sends SIGTERM to ExecStart, and SIGKILL after TimeoutStopSec.

Each event is appended to <root>/var/log/unit-runner/<unit>.events as a JSON line with a
monotonic timestamp, where <root> is the directory that holds etc/systemd/system.
Standard library only: it runs with the host's /usr/bin/python3.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

CLIENT_WAIT_SECONDS = 10.0


class Unit:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.env: dict[str, str] = {}
        self.start_pre: list[str] = []
        self.start = ""
        self.stop: list[str] = []
        self.restart = "no"
        self.restart_sec = 0.1
        self.timeout_stop = 90.0
        section = ""
        for line in _logical_lines(path.read_text()):
            if line.startswith("["):
                section = line.strip("[]")
                continue
            if section != "Service" or "=" not in line:
                continue
            key, value = (part.strip() for part in line.split("=", 1))
            if key == "Environment":
                name, _, val = value.partition("=")
                self.env[name] = val
            elif key == "ExecStartPre":
                self.start_pre.append(value)
            elif key == "ExecStart":
                self.start = value
            elif key == "ExecStop":
                self.stop.append(value)
            elif key == "Restart":
                self.restart = value
            elif key == "RestartSec":
                self.restart_sec = float(value)
            elif key == "TimeoutStopSec":
                self.timeout_stop = float(value)
        if not self.start:
            raise SystemExit(f"{path}: no ExecStart")
        root = path.parents[3]  # <root>/etc/systemd/system/<unit>
        self.state = root / "var" / "lib" / "unit-runner"
        self.logs = root / "var" / "log" / "unit-runner"
        self.state.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pid_file = self.state / f"{self.name}.pid"
        self.events = self.logs / f"{self.name}.events"
        self.output = self.logs / f"{self.name}.log"

    def event(self, what: str, **fields: object) -> None:
        record = {"t": time.monotonic(), "wall": time.time(), "event": what, **fields}
        with self.events.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def supervisor_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        if not pending and raw.lstrip().startswith(("#", ";")):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        lines.append((pending + raw).strip())
        pending = ""
    return [line for line in lines if line]


def _argv(command: str) -> tuple[list[str], bool]:
    ignore = command.startswith("-")
    return shlex.split(command.lstrip("-")), ignore


def _environment(unit: Unit) -> dict[str, str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    env.update(unit.env)
    return env


def supervise(unit: Unit) -> int:
    """The detached supervisor of one unit (what systemd does for a Type=simple service)."""
    stopping = False
    main: subprocess.Popen[bytes] | None = None

    def on_term(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    env = _environment(unit)
    with unit.output.open("ab") as out:
        while not stopping:
            failed = False
            for command in unit.start_pre:
                argv, ignore = _argv(command)
                rc = subprocess.run(argv, env=env, stdout=out, stderr=out, check=False).returncode
                unit.event("exec-start-pre", argv=argv, rc=rc)
                if rc != 0 and not ignore:
                    failed = True
                    break
            if not failed and not stopping:
                argv, _ = _argv(unit.start)
                main = subprocess.Popen(argv, env=env, stdout=out, stderr=out)
                unit.event("exec-start", pid=main.pid)
                while main.poll() is None and not stopping:
                    time.sleep(0.05)
                if stopping:
                    break
                unit.event("main-exited", rc=main.returncode)
            if unit.restart != "always" or stopping:
                break
            deadline = time.monotonic() + unit.restart_sec
            while time.monotonic() < deadline and not stopping:
                time.sleep(0.05)
            unit.event("restart")
        if main is not None and main.poll() is None:
            started = time.monotonic()
            deadline = started + unit.timeout_stop
            for command in unit.stop:
                argv, _ = _argv(command)
                left = max(deadline - time.monotonic(), 0.1)
                try:
                    rc = subprocess.run(
                        argv, env=env, stdout=out, stderr=out, check=False, timeout=left
                    ).returncode
                except subprocess.TimeoutExpired:
                    rc = -1
                unit.event("exec-stop", argv=argv, rc=rc, seconds=time.monotonic() - started)
            if main.poll() is None:
                main.terminate()
            try:
                main.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                main.kill()
                main.wait()
                unit.event("killed")
            unit.event("stopped", seconds=time.monotonic() - started, rc=main.returncode)
    unit.pid_file.unlink(missing_ok=True)
    return 0


def start(unit: Unit) -> None:
    if unit.supervisor_pid() is not None:
        return
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "_supervise", str(unit.path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )
    unit.pid_file.write_text(str(proc.pid))
    unit.event("started", supervisor=proc.pid)


def stop(unit: Unit) -> None:
    pid = unit.supervisor_pid()
    if pid is None:
        return
    unit.event("stop-requested", supervisor=pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + unit.timeout_stop + CLIENT_WAIT_SECONDS
    while unit.supervisor_pid() == pid:
        if time.monotonic() > deadline:
            raise SystemExit(f"{unit.name}: supervisor {pid} did not stop")
        time.sleep(0.05)


def main(args: list[str]) -> int:
    if len(args) != 2 or args[0] not in ("started", "stopped", "restarted", "_supervise"):
        print(__doc__, file=sys.stderr)
        return 2
    unit = Unit(Path(args[1]))
    if args[0] == "_supervise":
        return supervise(unit)
    if args[0] in ("stopped", "restarted"):
        stop(unit)
    if args[0] in ("started", "restarted"):
        start(unit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
