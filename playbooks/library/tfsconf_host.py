#!/usr/bin/python
"""tfsconf_host: the host side of tfsconf apply (runs on the serving host, stdlib only).

Actions (option `action`):
- preflight: read-only probes (free disk, base paths creatable, GPUs, runtime), with the
  host's values in `probe`.
- lock: takes this run's host lock (owner: operator, controller host, pid and its start
  time; a heartbeat `renewed_at` with a lease) and returns the last-applied record read
  under it. Another run's lock is refused, taken over with break_mode `dead` only when
  that run is dead (the controller proved it: `dead_runs`; or its lease ran out and the
  controller did not prove it alive: `live_runs`), or with `force`; the broken lock is
  reported. Given `probe`, it also runs the preflight under the lock it just took and
  returns the problems (`preflight`; none: the host can take its work), not a failure;
  given `staging` too (stage's release, servers and base_paths) and no problem found, it
  then stages that release as stage does (`staged`; a failure to stage is a problem).
- renew: the running apply's heartbeat (fails when the lock is no longer this run's).
- stage: writes each server's artifacts into <config_root>/<server>/releases/<release>/
  (a temporary directory renamed into place; an identical release is left alone),
  creates the model base paths, and installs the process runtime's supervisor when its
  text (`supervisor`) is given.
- switch: points <config_root>/<server>/current at a release (a new symlink renamed over
  the old one: readers see the old or the new target, never none); `release: null` removes
  `current` (a server that did not exist before).
- record: writes the last-applied record (state.json) and its copy per release, then
  removes releases beyond `keep_releases` (never one a `current` link points at, the
  previous one, or one a run holding the lock or broken out of it applies). With
  `release_lock`, it then releases this run's lock (as unlock does; `unlocked` says
  whether it did): the host's last call of the run, one module run fewer than an unlock
  of its own.
- unlock: removes the lock when this run holds it, and with it what this run's stages
  created and the host does not use (`discarded`): a release no `current` link points at
  and the record does not name, and a base path still empty (the lock's call stages
  before the rollout reaches the host, and a run that ends first leaves it as it was).
- inspect (read-only): each server's `current` target and the sha256 of its files.
Every path is prefixed by `root` (empty in production; the test bed gives each host one).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tfsconf_host_lock import renew, unlock
from ansible.module_utils.tfsconf_host_preflight import preflight
from ansible.module_utils.tfsconf_host_release import (
    inspect,
    lock_and_stage,
    record,
    stage,
    switch,
)

ACTIONS = {
    "preflight": preflight,
    "lock": lock_and_stage,
    "renew": renew,
    "stage": stage,
    "switch": switch,
    "record": record,
    "unlock": unlock,
    "inspect": inspect,
}
"""Each action's function (module, params); it ends the module (exit_json, fail_json)."""


ARGUMENT_SPEC: dict[str, dict[str, object]] = {
    "action": {
        "type": "str",
        "required": True,
        "choices": list(ACTIONS),
    },
    "root": {"type": "str", "default": ""},
    "config_root": {"type": "str", "required": True},
    "model_root": {"type": "str", "default": "/"},
    "base_paths": {"type": "list", "elements": "str", "default": []},
    "need_bytes": {"type": "int", "default": 0},
    "syncs": {"type": "list", "elements": "dict", "default": []},
    "versions_present": {"type": "list", "elements": "dict", "default": []},
    "gpus": {"type": "list", "elements": "int", "default": []},
    "runtime": {"type": "str", "default": "process"},
    "process_path": {"type": "str", "default": ""},
    "preload": {"type": "list", "elements": "str", "default": []},
    "process_env": {"type": "dict", "default": {}},
    "tfserving_version": {"type": "str", "default": ""},
    "owner": {"type": "dict", "default": {}},
    # no default: an action that checks whom the lock belongs to cannot be called
    # without saying which run it is (a record without it pruned nothing)
    "run_id": {"type": "str"},
    "break_mode": {"type": "str", "default": "none", "choices": ["none", "dead", "force"]},
    "dead_runs": {"type": "list", "elements": "str", "default": []},
    "live_runs": {"type": "list", "elements": "str", "default": []},
    "lease_seconds": {"type": "int", "default": 120},
    "release": {"type": "str"},
    "servers": {"type": "dict", "default": {}},
    "targets": {"type": "dict", "default": {}},
    "record": {"type": "dict", "default": {}},
    "kind": {"type": "str", "default": "apply"},
    "keep_releases": {"type": "int", "default": 5},
    "other_servers": {"type": "list", "elements": "str", "default": []},
    "release_lock": {"type": "bool", "default": False},
    # preflight's per-host values (PROBE_KEYS), from the controller in one dict
    "probe": {"type": "dict"},
    # lock: stage's values for this host's release (STAGING_KEYS), staged after the probe
    "staging": {"type": "dict"},
    "supervisor": {"type": "str", "default": ""},
}


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[
            ("action", name, ["run_id"]) for name in ("lock", "renew", "stage", "record", "unlock")
        ],
        supports_check_mode=True,
    )
    ACTIONS[module.params["action"]](module, module.params)


if __name__ == "__main__":
    main()
