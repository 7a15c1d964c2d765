"""The controller-side steps of a rollout: TF Serving's gRPC API needs grpcio and the TF
Serving protos, which only tfsconf's own interpreter is sure to have. The playbooks call
`run` through their `tfsconf_agent` action (playbooks/action_plugins), inside Ansible's
worker process when that is tfsconf's interpreter (it is when tfsconf starts Ansible), else
as `<tfsconf's python> -m tfsconf.apply.agent` with the JSON request on stdin.

Requests: {"action": "phases" | "reload" | "wait" | "check", "address", "port", "ssh", ...}
- ssh: the host's SSH route (tfsconf.apply.tunnel) when TF Serving is reached over SSH,
  else null
- phases: [{"models_config", "expect", "smoke"}]: each pushed in turn, waiting for its
  versions, then smoke-testing them by number before the next phase moves traffic; with
  "check" ({"expect", "smoke"}), the check below follows in the same process (one agent
  start and one Ansible task per activation, not two)
- reload: "models_config"
- wait: "expect" {model: [versions] | null} or "models_config" to derive it from; "settle"
  seconds first (a config poll that has not read the new models.config yet)
- check: as wait, then "smoke": [{"model", "version", "warmup"}] tried by version number
  (the health gate and the smoke test in one process and one Ansible task)
Exit 0 with a JSON result on stdout, or 1 with the reason on stderr, or 75 when a reload
outlived its deadline while TF Serving was still loading (the revert then restarts that
server instead of sending a reload that would queue behind the load).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from tfsconf.errors import UserError


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Run one request; with "ssh" (the host's route, grpc_via: ssh) every call goes
    through an SSH forward that ends with the request."""
    from tfsconf.apply import serving
    from tfsconf.apply.tunnel import grpc_endpoints

    port = int(request["port"])
    with grpc_endpoints(str(request["address"]), [port], request.get("ssh")) as endpoints:
        return _handle(serving, endpoints[port], request)


def _handle(serving: Any, endpoint: Any, request: dict[str, Any]) -> dict[str, Any]:
    timeout = float(request.get("timeout", 300))
    # derived from the server's settings by work.py (serving.reload_deadline)
    deadline = float(request.get("deadline", timeout))
    action = request["action"]
    if action == "phases":
        sent = []
        for number, phase in enumerate(request["phases"], 1):
            serving.reload(endpoint, phase["models_config"], deadline=deadline)
            if phase.get("expect"):
                serving.wait_available(endpoint, phase["expect"], timeout=timeout)
            # the smoke gate: before the next phase moves any traffic to a new version
            for item in phase.get("smoke", []):
                sent.append(_smoke(serving, endpoint, item, f"phase {number}"))
        result = {"changed": bool(request["phases"]), "phases": len(request["phases"])}
        check = request.get("check")
        if check is not None:  # the health gate and smoke test in the same process
            checked = _handle(serving, endpoint, {**request, **check, "action": "check"})
            return {**result, "available": checked["available"], "sent": sent + checked["sent"]}
        return {**result, "sent": sent}
    if action == "reload":
        serving.reload(endpoint, request["models_config"], deadline=deadline)
        return {"changed": True}
    if action in ("wait", "check"):  # check: the health gate, then the smoke test
        time.sleep(float(request.get("settle", 0)))
        expect = request.get("expect")
        if not expect:
            expect = serving.expectations(request["models_config"])
        available = serving.wait_available(endpoint, expect, timeout=timeout)
        smoke = (request.get("smoke") or []) if action == "check" else []
        sent = [_smoke(serving, endpoint, item, "after activation") for item in smoke]
        return {"changed": False, "available": available, "sent": sent}
    raise UserError(f"unknown action {action!r}")


STILL_LOADING = 75
"""Exit status of a reload that outlived its deadline (sysexits EX_TEMPFAIL)."""


def _smoke(serving: Any, endpoint: Any, item: dict[str, Any], when: str) -> dict[str, Any]:
    """One smoke item: the version's own warmup, or (requests_of) the requests an older
    version serves now, sent to the new version by number."""
    model, version = str(item["model"]), int(item["version"])
    old = item.get("requests_of")
    try:
        count = serving.smoke_predict(endpoint, model, version, Path(item["warmup"]))
    except serving.ServingError as exc:
        what = f"the requests version {old} serves" if old is not None else "its warmup requests"
        raise UserError(
            f"smoke gate ({when}): {model} version {version} cannot answer {what}, so it "
            f"takes no traffic: {exc}"
        ) from exc
    return {"model": model, "version": version, "requests_of": old, "requests": count}


def run(request: dict[str, Any]) -> tuple[int, str, str]:
    """One request as a command would answer it: (exit status, stdout, stderr). The
    playbooks' tfsconf_agent action calls this inside Ansible's worker process; `main` is
    the same as a process of its own."""
    from tfsconf.apply.serving import ReloadStillLoading

    try:
        result = handle(request)
    except ReloadStillLoading as exc:
        return STILL_LOADING, "", str(exc)
    except UserError as exc:
        return 1, "", str(exc)
    return 0, json.dumps(result), ""


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
    except ValueError as exc:
        print(f"the request is not JSON: {exc}", file=sys.stderr)
        return 1
    code, out, err = run(request)
    if out:
        print(out)
    if err:
        print(err, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
