#!/usr/bin/python3
"""tfsconf_serving: TF Serving's gRPC API from the controller (always `delegate_to:
localhost`, run by tfsconf's own interpreter, which has grpcio and the TF Serving API).

action=reload   send models_config through HandleReloadConfigRequest (deadline bounded)
action=phases   reload each phase's models_config, waiting for its versions before the next
action=wait     until every version of `expect` (or of models_config) is AVAILABLE
action=smoke    predict with each listed version's warmup records
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "action": {"type": "str", "required": True, "choices": ["reload", "phases", "wait", "smoke"]},
            "address": {"type": "str", "required": True},
            "port": {"type": "int", "required": True},
            "models_config": {"type": "str"},
            "expect": {"type": "dict"},
            "timeout": {"type": "float", "default": 300.0},
            "smoke": {"type": "list", "elements": "dict", "default": []},
            "phases": {"type": "list", "elements": "dict", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    if module.check_mode:
        module.exit_json(changed=p["action"] == "reload")
    try:
        from tfsconf.apply import serving
    except ImportError as exc:  # not tfsconf's interpreter
        module.fail_json(msg="tfsconf is not importable by %s: %s" % (__import__("sys").executable, exc))
    endpoint = serving.Endpoint(p["address"], p["port"])
    try:
        if p["action"] == "reload":
            serving.reload(endpoint, p["models_config"], deadline=min(p["timeout"], 120.0))
            module.exit_json(changed=True)
        if p["action"] == "phases":
            # each push waits for the versions the next one labels (TF Serving refuses a
            # label on a version that is not AVAILABLE)
            for phase in p["phases"]:
                serving.reload(endpoint, phase["models_config"], deadline=min(p["timeout"], 120.0))
                if phase.get("expect"):
                    serving.wait_available(endpoint, phase["expect"], timeout=p["timeout"])
            module.exit_json(changed=bool(p["phases"]), phases=len(p["phases"]))
        if p["action"] == "wait":
            expect = p["expect"]
            if expect is None:
                expect = serving.expectations(p["models_config"])
            available = serving.wait_available(endpoint, expect, timeout=p["timeout"])
            module.exit_json(changed=False, available=available)
        sent = []
        for item in p["smoke"]:
            count = serving.smoke_predict(
                endpoint, item["model"], int(item["version"]), __import__("pathlib").Path(item["warmup"])
            )
            sent.append({"model": item["model"], "version": item["version"], "requests": count})
        module.exit_json(changed=False, sent=sent)
    except serving.UserError as exc:
        module.fail_json(msg=str(exc))


if __name__ == "__main__":
    main()
