"""The controller-side steps of a rollout, run by the playbooks as
`<tfsconf's python> -m tfsconf.apply.agent` (delegated to localhost) with a JSON request on
stdin: TF Serving's gRPC API needs grpcio and the TF Serving protos, which only tfsconf's
own interpreter is sure to have.

Requests: {"action": "phases" | "reload" | "wait" | "smoke", "address", "port", ...}
- phases: [{"models_config", "expect"}]: each pushed in turn, waiting for its versions
- reload: "models_config"
- wait: "expect" {model: [versions] | null} or "models_config" to derive it from; "settle"
  seconds first (a config poll that has not read the new models.config yet)
- smoke: [{"model", "version", "warmup"}]
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
    from tfsconf.apply import serving

    endpoint = serving.Endpoint(str(request["address"]), int(request["port"]))
    timeout = float(request.get("timeout", 300))
    # derived from the server's settings by work.py (serving.reload_deadline)
    deadline = float(request.get("deadline", timeout))
    action = request["action"]
    if action == "phases":
        for phase in request["phases"]:
            serving.reload(endpoint, phase["models_config"], deadline=deadline)
            if phase.get("expect"):
                serving.wait_available(endpoint, phase["expect"], timeout=timeout)
        return {"changed": bool(request["phases"]), "phases": len(request["phases"])}
    if action == "reload":
        serving.reload(endpoint, request["models_config"], deadline=deadline)
        return {"changed": True}
    if action == "wait":
        time.sleep(float(request.get("settle", 0)))
        expect = request.get("expect")
        if not expect:
            expect = serving.expectations(request["models_config"])
        return {
            "changed": False,
            "available": serving.wait_available(endpoint, expect, timeout=timeout),
        }
    if action == "smoke":
        sent = [
            {
                "model": item["model"],
                "version": item["version"],
                "requests": serving.smoke_predict(
                    endpoint, item["model"], int(item["version"]), Path(item["warmup"])
                ),
            }
            for item in request["smoke"]
        ]
        return {"changed": False, "sent": sent}
    raise UserError(f"unknown action {action!r}")


STILL_LOADING = 75
"""Exit status of a reload that outlived its deadline (sysexits EX_TEMPFAIL)."""


def main() -> int:
    from tfsconf.apply.serving import ReloadStillLoading

    try:
        request = json.loads(sys.stdin.read())
        result = handle(request)
    except ReloadStillLoading as exc:
        print(str(exc), file=sys.stderr)
        return STILL_LOADING
    except UserError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
