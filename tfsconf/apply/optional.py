"""rollout.yml's optional tasks, left out of a run by tag when no host of it needs them.

Ansible evaluates a task's `when` in a worker it forks for every host, so a task that
every host skips still costs each host a fork (about 9 ms of controller CPU here, and a
round of the play's lockstep). A task left out with `--skip-tags` is dropped when the
play (or an include) is loaded, in the controller's main process: no fork at all. The
tasks keep their `when`, which still decides per host when the task is run.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

from tfsconf.contracts import Activation, HostWork

TAGS = frozenset(
    {
        "stage",  # stage the release (not needed where the lock's call staged it)
        "images",  # docker images present, built or pulled
        "sync",  # sync model versions
        "sync_auth",  # sync model versions that need credentials
        "batching",  # per-model batching files into versions already on the host
        "act_stop",  # stop a removed server
        "act_restart",  # (re)start a created, restarted or rebuilt server
        "act_reload",  # hot reload by RPC, with its health gate and smoke predict
        "act_gate",  # health gate and smoke predict of any other activation
    }
)
"""Every tag rollout.yml and tasks/activate.yml give an optional task (a test ties the
two): nothing on the rescue path carries one."""


def activation_tags(a: Activation) -> set[str]:
    """The tags of the tasks tasks/activate.yml runs for this activation."""
    if a["kind"] == "remove":
        return {"act_stop"}
    if a["kind"] == "hot-reload" and a["config_poll_seconds"] == 0:
        return {"act_reload"}
    if a["kind"] in ("create", "restart", "rebuild"):
        return {"act_restart", "act_gate"}
    return {"act_gate"}  # a reload by the server's own config poll; "none"


def unused_tags(
    work: Mapping[str, HostWork], hosts: Iterable[str], staged: Container[str] = ()
) -> list[str]:
    """The optional tasks' tags that none of `hosts` (the hosts a rollout run works on)
    needs, given their work and the hosts whose release the lock staged."""
    used: set[str] = set()
    for host in hosts:
        w = work[host]
        if host not in staged:
            used.add("stage")
        if w["images"]:
            used.add("images")
        for sync in w["syncs"]:
            used.add("sync_auth" if sync["auth"] else "sync")
        if w["batching"]:
            used.add("batching")
        for activation in w["activations"]:
            used |= activation_tags(activation)
    return sorted(TAGS - used)
