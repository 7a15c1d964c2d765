"""tfsconf_host's lock actions: take (or take over) this run's host lock and read the
record under it (and run the preflight when the controller sends the probe), renew it (the
heartbeat), release it. Every read-decide-write of the lock file happens under an flock,
so the lock is atomic on the host."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import socket
import time
from typing import Any, Iterator

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tfsconf_host_files import (
    STATE_DIR,
    Params,
    read_json,
    rooted,
    write_atomic,
)
from ansible.module_utils.tfsconf_host_preflight import preflight_problems, probe_params


def lock_age(current: dict[str, Any], path: str) -> int:
    """Seconds since the lock's owner last renewed it (host clock; a lock without a
    heartbeat counts from the file's mtime)."""
    renewed = current.get("renewed_at")
    if not isinstance(renewed, (int, float)):
        try:
            renewed = os.stat(path).st_mtime
        except OSError:
            renewed = time.time()
    return max(0, int(time.time() - renewed))


def describe_owner(current: dict[str, Any], age: int) -> str:
    owner = current.get("owner") or {}
    if not isinstance(owner, dict):  # a lock written before owners were recorded
        owner = {"operator": owner}
    return (
        f"{owner.get('operator') or '?'} (run {current.get('run_id')}, pid "
        f"{owner.get('pid', '?')} on {owner.get('controller', '?')}, since "
        f"{current.get('since')}, renewed {int(age):d} s ago)"
    )


def lock_doc(p: Params, since: str, broke: dict[str, Any] | None = None) -> bytes:
    doc = {
        "run_id": p["run_id"],
        "owner": p["owner"],
        "release": p["release"],
        "since": since,
        "renewed_at": time.time(),
        "lease_seconds": p["lease_seconds"],
        "host": socket.gethostname(),
    }
    if broke is not None:
        doc["broke"] = {"run_id": broke.get("run_id"), "release": broke.get("release")}
    return (json.dumps(doc, sort_keys=True) + "\n").encode()


def read_lock(path: str) -> dict[str, Any] | None:
    """The lock document; a file that is not a lock (cut short by a crash, edited by
    hand) reads as a lock of an unknown run: refused unless forced."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return {"run_id": None, "owner": {"operator": "an unreadable lock file"}}
    return doc


@contextlib.contextmanager
def lock_guard(p: Params) -> Iterator[None]:
    """Every read-decide-write of the lock file on this host happens under an exclusive
    flock of .tfsconf/lock.guard, so two runs taking the lock at the same moment cannot
    both see it free (the guard file stays: removing it would reopen the race)."""
    path = rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "lock.guard"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def take_lock(path: str, p: Params) -> tuple[dict[str, Any] | None, str | None]:
    """(broken lock or None, refusal or None). A lock held by another run is taken over
    only with break_mode dead (its owner is dead: the controller proved it, or the lease
    ran out) or force. Call under lock_guard; the file is replaced whole (readers outside
    the guard, such as gather, see the old or the new lock, never part of one)."""
    current = read_lock(path)
    broken = None
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if current is not None and current.get("run_id") == p["run_id"]:
        since = current.get("since", since)
    elif current is not None:
        age = lock_age(current, path)
        who = describe_owner(current, age)
        lease = current.get("lease_seconds") or p["lease_seconds"]
        run = current.get("run_id")
        dead = (
            run is not None and run not in p["live_runs"] and (run in p["dead_runs"] or age > lease)
        )
        mode = p["break_mode"]
        if mode == "none":
            return (
                None,
                f"host is locked by {who}; if that apply is dead, run again with --break-lock",
            )
        if mode == "dead" and not dead:
            return None, (
                f"host is locked by a live apply: {who} (lease {int(lease):d} s); --break-lock "
                "takes over only a dead run's lock; if you are sure it is dead, "
                "--force-break-lock"
            )
        broken = dict(current, age_seconds=age)
    write_atomic(path, lock_doc(p, since, broken))
    return broken, None


def lock_path(p: Params) -> str:
    return rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "lock"))


def lock(module: AnsibleModule, p: Params) -> None:
    """Take (or renew) this run's lock, then read the last-applied record under it."""
    module.exit_json(changed=True, ansible_facts=lock_facts(module, p))


def lock_facts(module: AnsibleModule, p: Params) -> dict[str, Any]:
    """lock's work; its output facts returned (a refusal fails the module)."""
    with lock_guard(p):
        broken, message = take_lock(lock_path(p), p)
    if message:
        module.fail_json(msg=message)
    # as the run's own output facts, from this task itself: when another host of the same
    # batch refuses, max_fail_percentage ends the play before any later task, and tfsconf
    # must still learn that this host's lock was taken (to release it)
    facts: dict[str, Any] = {
        "tfsconf_out_record": read_b64(record_path(p)),
        "tfsconf_out_broken_lock": broken,
    }
    if p.get("probe") is not None:
        # the preflight under the lock just taken, in the same call (a module run per host
        # fewer than a preflight play of its own); its problems are reported, not failed
        # on: the lock is taken either way, and the controller decides
        facts["tfsconf_out_preflight"] = preflight_problems(probe_params(p))
    return facts


def record_path(p: Params) -> str:
    return rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "state.json"))


def read_b64(path: str) -> str:
    """A state file's bytes as base64 ("" when there is none); other errors raise."""
    try:
        with open(path, "rb") as handle:
            return base64.b64encode(handle.read()).decode()
    except FileNotFoundError:
        return ""


def renew(module: AnsibleModule, p: Params) -> None:
    path = lock_path(p)
    with lock_guard(p):
        current = read_lock(path)
        if current is None or current.get("run_id") != p["run_id"]:
            holder = describe_owner(current, lock_age(current, path)) if current else "nobody"
            module.fail_json(msg=f"this run no longer holds the lock (now held by {holder})")
            return
        current["renewed_at"] = time.time()
        write_atomic(path, (json.dumps(current, sort_keys=True) + "\n").encode())
    module.exit_json(changed=False)


def unlock(module: AnsibleModule, p: Params) -> None:
    """Release this run's lock; what its stages created and it did not apply goes too."""
    path = lock_path(p)
    with lock_guard(p):
        current = read_lock(path)
        if current is None or current.get("run_id") != p["run_id"]:
            module.exit_json(changed=False)
            return
        discarded: list[str] = []
        if not module.check_mode:
            discarded = discard_unapplied(p, current)
            os.unlink(path)
    module.exit_json(changed=True, discarded=discarded)


def discard_unapplied(p: Params, held: dict[str, Any]) -> list[str]:
    """The releases this run's stages created (`staged` in its lock) and the host does not
    use, and the base paths they created that are still empty: the lock's call stages a
    release on every host that will change, before the rollout reaches it, and a run that
    stops first (a lock refused elsewhere, a failed probe, a stop, a failed host) leaves
    the host as it found it. A release the record names (the host was applied: the
    record's history included) or a `current` link points at stays; so do the base paths
    then. Called under lock_guard, while this run holds the lock. Returns what went."""
    config = rooted(p["root"], p["config_root"])
    recorded = read_json(rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "state.json")))
    recorded = recorded if isinstance(recorded, dict) else {}
    applied = {recorded.get("release")} | {
        entry.get("release") for entry in recorded.get("history") or [] if isinstance(entry, dict)
    }
    gone = []
    for server, release in held.get("staged") or []:
        target = os.path.join(config, server, "releases", release)
        current = os.path.join(config, server, "current")
        in_use = os.path.islink(current) and os.path.basename(os.readlink(current)) == release
        if release in applied or in_use or not os.path.isdir(target):
            continue
        shutil.rmtree(target, ignore_errors=True)
        gone.append(f"{server}/releases/{release}")
    if held.get("release") in applied:
        return gone
    for base in held.get("created_base_paths") or []:
        with contextlib.suppress(OSError):  # not empty (a version synced into it): stays
            os.rmdir(rooted(p["root"], base))
            gone.append(base)
    return gone
