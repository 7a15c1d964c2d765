"""tfsconf_agent: one request to tfsconf's controller-side agent (tfsconf.apply.agent):
a hot reload, a health gate, a smoke predict, against one server.

An action, so it runs on the controller inside Ansible's worker process: a command task
started a Python for Ansible's command module and another for the agent, about a second of
controller CPU per activation. When this worker's interpreter cannot import tfsconf (an
ansible-playbook from another installation), the agent runs as a process of tfsconf's own
interpreter (`python`), as before.

Arguments: request (a mapping, or its JSON text); python (tfsconf's interpreter).
The result looks like a command's: rc (75: a reload outlived its deadline while TF Serving
was still loading), stdout (the agent's JSON result), stderr, and failed when rc is not 0.
"""

from __future__ import annotations

import json
import subprocess
import traceback
from typing import Any

from ansible.plugins.action import ActionBase


def _in_process(request: dict[str, Any]) -> tuple[int, str, str] | None:
    try:
        from tfsconf.apply import agent
    except ImportError:
        return None
    try:
        return agent.run(request)
    except Exception:  # a bug in the agent: its trace, as the process would have printed
        return 1, "", traceback.format_exc()


def _as_process(python: str, request: dict[str, Any]) -> tuple[int, str, str]:
    proc = subprocess.run(
        [python, "-m", "tfsconf.apply.agent"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


class ActionModule(ActionBase):  # type: ignore[misc]  # ansible is untyped (pyproject)
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Any = None, task_vars: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        if self._task.check_mode:  # a reload is a change: a check run sends nothing
            result.update(skipped=True, msg="tfsconf_agent sends nothing in check mode")
            return result
        raw = self._task.args.get("request")
        request = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
        found = _in_process(request)
        code, out, err = (
            found
            if found is not None
            else _as_process(str(self._task.args.get("python") or "python3"), request)
        )
        result.update(
            rc=code,
            stdout=out,
            stdout_lines=out.splitlines(),
            stderr=err,
            stderr_lines=err.splitlines(),
            changed=code == 0 and request.get("action") in ("phases", "reload"),
        )
        if code != 0:
            result.update(failed=True, msg="non-zero return code")
        return result
