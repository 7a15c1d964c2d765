#!/usr/bin/python
"""tfsconf_process: start, restart or stop a server of the `process` runtime through its
supervisor (files/tfsconf_supervise.py, installed at <config_root>/.tfsconf/bin/ by
tfsconf_host stage first).

state=started leaves a running supervisor alone (changed=false); restarted stops it (the
server gets SIGTERM and finishes its requests) and starts it again; stopped stops it.
Returns the server's pid once the supervisor has started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule


def rooted(root: str, path: str) -> str:
    return root.rstrip("/") + path if root else path


def read_pid(path: str) -> int | None:
    try:
        with open(path) as handle:
            pid = int(handle.read().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def stop(run_dir: str, server: str, timeout: float) -> bool:
    pid = read_pid(os.path.join(run_dir, server + ".supervisor.pid"))
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_pid(os.path.join(run_dir, server + ".supervisor.pid")) is None:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    server_pid = read_pid(os.path.join(run_dir, server + ".pid"))
    if server_pid is not None:
        os.kill(server_pid, signal.SIGKILL)
    for name in (server + ".supervisor.pid", server + ".pid"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(run_dir, name))
    return True


def start(module: AnsibleModule, p: dict[str, Any], run_dir: str) -> int:
    server = p["server"]
    env_file = os.path.join(run_dir, server + ".env.json")
    with open(env_file + ".tmp", "w") as handle:
        json.dump(p["env"], handle, sort_keys=True)
    os.rename(env_file + ".tmp", env_file)
    script = rooted(
        p["root"], os.path.join(p["config_root"], ".tfsconf", "bin", "tfsconf_supervise.py")
    )
    with open(os.path.join(run_dir, server + ".log"), "ab") as log:
        argv = [
            p["python"],
            script,
            "run",
            "--server",
            server,
            "--config-root",
            p["config_root"],
            "--env-file",
            env_file,
        ]
        if p["root"]:
            argv += ["--root", p["root"]]
        # the supervisor carries the same extra environment as its server, so whatever
        # finds the server by its environment finds its supervisor too
        environ = dict(os.environ)
        environ.update(p["env"])
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
            env=environ,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pid = read_pid(os.path.join(run_dir, server + ".pid"))
        if pid is not None:
            return pid
        time.sleep(0.05)
    module.fail_json(
        msg="server {}: the supervisor did not start it within 15 s (see {})".format(
            server, os.path.join(run_dir, server + ".log")
        )
    )
    return -1  # not reached: fail_json exits


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "server": {"type": "str", "required": True},
            "state": {
                "type": "str",
                "required": True,
                "choices": ["started", "restarted", "stopped"],
            },
            "root": {"type": "str", "default": ""},
            "config_root": {"type": "str", "required": True},
            "env": {"type": "dict", "default": {}},
            "python": {"type": "str", "default": "/usr/bin/python3"},
            "stop_timeout": {"type": "float", "default": 30.0},
        },
        supports_check_mode=True,
    )
    p = module.params
    run_dir = rooted(p["root"], os.path.join(p["config_root"], ".tfsconf", "run"))
    os.makedirs(run_dir, exist_ok=True)
    running = read_pid(os.path.join(run_dir, p["server"] + ".supervisor.pid")) is not None
    state = p["state"]
    if module.check_mode:
        module.exit_json(
            changed=(state != "started" or not running) and (state != "stopped" or running)
        )
    if state == "stopped":
        module.exit_json(changed=stop(run_dir, p["server"], p["stop_timeout"]))
    if state == "started" and running:
        module.exit_json(changed=False, pid=read_pid(os.path.join(run_dir, p["server"] + ".pid")))
    if running:
        stop(run_dir, p["server"], p["stop_timeout"])
    pid = start(module, p, run_dir)
    module.exit_json(changed=True, pid=pid)


if __name__ == "__main__":
    main()
