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
    stopping = []
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
            launch_path = os.path.join(config, args.server, "current", "launch.json")
            with open(launch_path) as handle:
                launch = json.load(handle)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            env.update(launch.get("env", {}))
            if args.env_file:
                with open(args.env_file) as handle:
                    env.update(json.load(handle))
            started = time.monotonic()
            try:
                proc = subprocess.Popen(launch["argv"], env=env, stdin=subprocess.DEVNULL)
            except OSError as exc:
                print(
                    "tfsconf-supervise: cannot start {}: {}".format(launch["argv"][0], exc),
                    file=sys.stderr,
                    flush=True,
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            child[0] = proc
            write_pid(pid_file, proc.pid)
            if stopping:
                proc.terminate()
            while True:
                try:
                    code = proc.wait(timeout=30 if stopping else None)
                    break
                except subprocess.TimeoutExpired:
                    proc.kill()
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
            for _ in range(int(backoff * 10)):
                if stopping:
                    break
                time.sleep(0.1)
            backoff = min(backoff * 2, 30.0)
    finally:
        for path in (pid_file, own_pid_file):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


if __name__ == "__main__":
    main()
