#!/usr/bin/env python3
"""Supervisor of one TF Serving process for tfsconf's `process` runtime (hosts with
neither Docker nor systemd). Standard library only; copied to
<config_root>/.tfsconf/bin/ by apply.

    tfsconf_supervise.py run --server NAME --config-root DIR [--root DIR] [--env-file F]

Starts the argv of <config_root>/<server>/current/launch.json with its environment (plus
the variables of --env-file), restarts it when it exits on its own (backing off from 1 s to
30 s), and on SIGTERM stops it (SIGTERM, then SIGKILL after 30 s) and exits. The server's
pid is in <config_root>/.tfsconf/run/<server>.pid, the supervisor's in
<server>.supervisor.pid, their output in <server>.log.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time


def rooted(root: str, path: str) -> str:
    return root.rstrip("/") + path if root else path


def write_pid(path: str, pid: int) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(f"{pid:d}\n")
    os.rename(tmp, path)


def read_launch(config: str, server: str, env_file: str | None) -> tuple[list[str], dict[str, str]]:
    """The server's argv and environment, read before each start (a switch of `current`
    changes them)."""
    with open(os.path.join(config, server, "current", "launch.json")) as handle:
        launch = json.load(handle)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(launch.get("env", {}))
    if env_file:
        with open(env_file) as handle:
            env.update(json.load(handle))
    return list(launch["argv"]), env


def wait_for(proc: subprocess.Popen[bytes], stopping: list[int]) -> int:
    """The server's exit code; once stopping, it gets 30 s before SIGKILL."""
    while True:
        try:
            return proc.wait(timeout=30 if stopping else None)
        except subprocess.TimeoutExpired:
            proc.kill()


def pause(seconds: float, stopping: list[int]) -> None:
    """Sleep, but wake within 0.1 s of a stop."""
    for _ in range(int(seconds * 10)):
        if stopping:
            return
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--server", required=True)
    parser.add_argument("--config-root", required=True)
    parser.add_argument("--root", default="")
    parser.add_argument("--env-file")
    args = parser.parse_args()
    config = rooted(args.root, args.config_root)
    run_dir = os.path.join(config, ".tfsconf", "run")
    os.makedirs(run_dir, exist_ok=True)
    pid_file = os.path.join(run_dir, args.server + ".pid")
    own_pid_file = os.path.join(run_dir, args.server + ".supervisor.pid")
    write_pid(own_pid_file, os.getpid())
    stopping: list[int] = []
    child: list[subprocess.Popen[bytes] | None] = [None]

    def on_term(signum: int, frame: object) -> None:
        stopping.append(signum)
        if child[0] is not None and child[0].poll() is None:
            child[0].terminate()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    backoff = 1.0
    try:
        while not stopping:
            argv, env = read_launch(config, args.server, args.env_file)
            started = time.monotonic()
            try:
                proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
            except OSError as exc:
                print(
                    f"tfsconf-supervise: cannot start {argv[0]}: {exc}", file=sys.stderr, flush=True
                )
                pause(backoff, stopping)
                backoff = min(backoff * 2, 30.0)
                continue
            child[0] = proc
            write_pid(pid_file, proc.pid)
            if stopping:
                proc.terminate()
            code = wait_for(proc, stopping)
            if stopping:
                break
            print(
                f"tfsconf-supervise: {args.server} exited with {code}; "
                f"restarting in {backoff:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            if time.monotonic() - started > 60:
                backoff = 1.0
            pause(backoff, stopping)
            backoff = min(backoff * 2, 30.0)
    finally:
        for path in (pid_file, own_pid_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


if __name__ == "__main__":
    main()
