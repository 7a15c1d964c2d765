"""tfsconf_host's release actions: stage a release, switch `current` to it, write the
last-applied record and prune old releases (never one in use), inspect what is in use."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tfsconf_host_files import (
    STATE_DIR,
    Params,
    fsync_dir,
    read_json,
    rooted,
    write_atomic,
)
from ansible.module_utils.tfsconf_host_lock import (
    discard_unapplied,
    lock_facts,
    lock_guard,
    lock_path,
    read_b64,
    read_lock,
    record_path,
)

SUPERVISOR = "tfsconf_supervise.py"
"""The process runtime's supervisor under <config_root>/.tfsconf/bin/ (tfsconf_process
starts servers through it)."""


def same_tree(directory: str, files: dict[str, str]) -> bool:
    seen = set()
    for base, _dirs, names in os.walk(directory):
        for name in names:
            rel = os.path.relpath(os.path.join(base, name), directory)
            seen.add(rel)
            if rel not in files:
                return False
            with open(os.path.join(base, name), "rb") as handle:
                if handle.read() != files[rel].encode():
                    return False
    return seen == set(files)


def install_supervisor(module: AnsibleModule, p: Params) -> bool:
    """The process runtime's supervisor (files/tfsconf_supervise.py, its text handed in by
    the playbook) at <config_root>/.tfsconf/bin/, replaced whole when it differs."""
    path = rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "bin", SUPERVISOR))
    data = p["supervisor"].encode()
    try:
        with open(path, "rb") as handle:
            if handle.read() == data and os.stat(path).st_mode & 0o777 == 0o755:
                return False
    except FileNotFoundError:
        pass
    if not module.check_mode:
        write_atomic(path, data, mode=0o755)
    return True


STAGING_KEYS = ("release", "servers", "base_paths")
"""What the lock action's `staging` carries: stage's parameters for this host's release
(the supervisor's text travels in `supervisor`, as for stage)."""


def lock_and_stage(module: AnsibleModule, p: Params) -> None:
    """lock, then, when the controller sent `staging` and the probe found no problem, the
    release staged under the lock just taken (stage's work: nothing points at it until
    switch), in the same call: a module run per changing host fewer than a stage task in
    the rollout. A failure to stage is reported as a preflight problem, not failed on:
    the lock is taken either way, and the controller decides."""
    facts = lock_facts(module, p)
    staging = p.get("staging")
    if staging is not None and not facts.get("tfsconf_out_preflight"):
        unknown = sorted(set(staging) - set(STAGING_KEYS))
        if unknown:
            module.fail_json(msg="staging: unknown keys " + ", ".join(unknown))
        try:
            changed, _created, _previous = stage_release(module, {**p, **staging})
        except OSError as exc:
            facts["tfsconf_out_preflight"] = [f"cannot stage release {staging['release']}: {exc}"]
        else:
            facts["tfsconf_out_staged"] = {"release": staging["release"], "changed": changed}
    module.exit_json(changed=True, ansible_facts=facts)


def stage(module: AnsibleModule, p: Params) -> None:
    changed, created, previous = stage_release(module, p)
    module.exit_json(changed=changed, created_base_paths=created, previous=previous)


def note_staging(p: Params) -> None:
    """In this run's lock: the release it applies (cleanup keeps it), and what this stage
    is about to create, for unlock to take away again if the run ends without applying it
    (tfsconf_host_lock.discard_unapplied)."""
    root = p["root"]
    with lock_guard(p):
        held = read_lock(lock_path(p))
        if held is None or held.get("run_id") != p["run_id"]:
            return
        held["release"] = p["release"]
        config = rooted(root, p["config_root"])
        staged = {tuple(pair) for pair in held.get("staged", [])}
        staged.update(
            (server, p["release"])
            for server in p["servers"]
            if not os.path.isdir(os.path.join(config, server, "releases", p["release"]))
        )
        held["staged"] = sorted(list(pair) for pair in staged)
        held["created_base_paths"] = sorted(
            set(held.get("created_base_paths", []))
            | {b for b in p["base_paths"] if not os.path.isdir(rooted(root, b))}
        )
        write_atomic(lock_path(p), (json.dumps(held, sort_keys=True) + "\n").encode())


def stage_release(
    module: AnsibleModule, p: Params
) -> tuple[bool, list[str], dict[str, str | None]]:
    """Stage the release: (changed, base paths created, each server's release before)."""
    root = p["root"]
    changed = False
    if not module.check_mode:
        note_staging(p)
    created = []
    for base in p["base_paths"]:
        path = rooted(root, base)
        if not os.path.isdir(path):
            if not module.check_mode:
                os.makedirs(path, mode=0o755)
            created.append(base)
            changed = True
    for sub in ("bin", "incoming", "run", "releases"):
        path = rooted(root, os.path.join(p["config_root"], STATE_DIR, sub))
        if not os.path.isdir(path) and not module.check_mode:
            os.makedirs(path, mode=0o755)
    if p["supervisor"] and install_supervisor(module, p):
        changed = True
    previous: dict[str, str | None] = {}
    for server, files in sorted(p["servers"].items()):
        server_dir = rooted(root, os.path.join(p["config_root"], server))
        target = os.path.join(server_dir, "releases", p["release"])
        current = os.path.join(server_dir, "current")
        previous[server] = (
            os.path.basename(os.readlink(current)) if os.path.islink(current) else None
        )
        if os.path.isdir(target) and same_tree(target, files):
            continue
        changed = True
        if module.check_mode:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(target))
        for rel, text in files.items():
            path = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(text.encode())
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o755)  # noqa: S103 (the server's user reads the release)
        if os.path.isdir(target):  # same release id, other bytes: an edited release
            shutil.rmtree(target)
        os.rename(tmp, target)
        fsync_dir(os.path.dirname(target))
    return changed, created, previous


def point(current: str, release: str | None) -> bool:
    """current -> releases/<release> (or removed when release is None); True if changed."""
    want = None if release is None else os.path.join("releases", release)
    have = os.readlink(current) if os.path.islink(current) else None
    if have == want:
        return False
    if want is None:
        os.unlink(current)
    else:
        tmp = f"{current}.tmp-{os.getpid():d}"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(want, tmp)
        os.rename(tmp, current)
    fsync_dir(os.path.dirname(current))
    return True


def switch(module: AnsibleModule, p: Params) -> None:
    root = p["root"]
    changed = []
    for server, release in sorted(p["targets"].items()):
        current = rooted(root, os.path.join(p["config_root"], server, "current"))
        if release is not None and not os.path.isdir(
            os.path.join(os.path.dirname(current), "releases", release)
        ):
            module.fail_json(msg=f"server {server}: release {release} is not staged on this host")
        if module.check_mode:
            have = os.readlink(current) if os.path.islink(current) else None
            if have != (None if release is None else os.path.join("releases", release)):
                changed.append(server)
            continue
        if point(current, release):
            changed.append(server)
    module.exit_json(changed=bool(changed), switched=changed)


def record(module: AnsibleModule, p: Params) -> None:
    changed, pruned = write_record(module, p)
    unlocked = False
    if p.get("release_lock") and not module.check_mode:
        with lock_guard(p):
            path = lock_path(p)
            held = read_lock(path)
            if held is not None and held.get("run_id") == p["run_id"]:
                discard_unapplied(p, held)  # an earlier stage's release, if the records moved
                os.unlink(path)
                unlocked = True
    module.exit_json(changed=changed, pruned=pruned, unlocked=unlocked)


def write_record(module: AnsibleModule, p: Params) -> tuple[bool, list[str]]:
    """The record written (unless it says what the host has already) and old releases
    pruned: (changed, pruned)."""
    root = p["root"]
    state_dir = rooted(root, os.path.join(p["config_root"], STATE_DIR))
    state_path = os.path.join(state_dir, "state.json")
    doc = dict(p["record"])
    old = read_json(state_path)
    if old is not None and {
        k: v for k, v in old.items() if k not in ("applied_at", "operator", "history")
    } == {k: v for k, v in doc.items() if k not in ("applied_at", "operator", "history")}:
        return False, []
    history = list((old or {}).get("history", []))
    history.append(
        {
            "release": doc["release"],
            "applied_at": doc["applied_at"],
            "operator": doc["operator"],
            "spec_sha256": doc["spec_sha256"],
            "kind": p["kind"],
        }
    )
    doc["history"] = history[-100:]
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    if module.check_mode:
        return True, []
    write_atomic(os.path.join(state_dir, "releases", doc["release"] + ".json"), data)
    write_atomic(state_path, data)
    servers = doc.get("manifest", {}).get("servers", []) + list(p.get("other_servers", []))
    with lock_guard(p):
        previous = old.get("release") if old is not None else None
        pruned = prune_releases(p, state_dir, history, servers, previous)
    return True, pruned


def prune_releases(
    p: Params,
    state_dir: str,
    history: list[dict[str, Any]],
    servers: list[str],
    previous: str | None,
) -> list[str]:
    """Remove releases beyond the newest keep_releases (by the order they were applied).
    Never one that a server's `current` points at (every server directory is looked at,
    not only this record's), one the host record names, or one a run holding (or broken
    out of) the lock applies; and nothing at all when this run no longer holds the lock
    (another apply took it over and may be about to point `current` at any release).
    Runs under lock_guard: no run can take the lock while this looks."""
    held = read_lock(lock_path(p)) or {}
    if held.get("run_id") != p["run_id"]:
        return []
    newest: list[str] = []
    for entry in reversed(history):
        if entry["release"] not in newest:
            newest.append(entry["release"])
    keep = set(newest[: p["keep_releases"]]) | {previous}  # the previous one: rollback's
    keep.update(r for r in (held.get("release"), (held.get("broke") or {}).get("release")) if r)
    recorded = read_json(os.path.join(state_dir, "state.json")) or {}
    keep.add(recorded.get("release"))
    config = rooted(p["root"], p["config_root"])
    for server in sorted(os.listdir(config)) if os.path.isdir(config) else []:
        current = os.path.join(config, server, "current")
        if not server.startswith(".") and os.path.islink(current):
            keep.add(os.path.basename(os.readlink(current)))
    pruned = []
    for server in servers:
        releases = os.path.join(config, server, "releases")
        if not os.path.isdir(releases):
            continue
        for name in sorted(os.listdir(releases)):
            if name.startswith(".") or name in keep:
                continue
            shutil.rmtree(os.path.join(releases, name), ignore_errors=True)
            pruned.append(f"{server}/{name}")
    for name in sorted(os.listdir(os.path.join(state_dir, "releases"))):
        if name.endswith(".json") and name[:-5] not in keep:
            os.unlink(os.path.join(state_dir, "releases", name))
    return pruned


def inspect(module: AnsibleModule, p: Params) -> None:
    """Read-only: per server directory with a `current` link, the release it points at and
    the sha256 of every file in it (status and apply compare them with the record); and
    the last-applied record and the lock, as base64 ("" when absent). One call: every
    plan --live, status and apply starts with it on every host."""
    import hashlib

    root = p["root"]
    config = rooted(root, p["config_root"])
    servers = {}
    names = sorted(os.listdir(config)) if os.path.isdir(config) else []
    for server in names:
        current = os.path.join(config, server, "current")
        if server.startswith(".") or not os.path.islink(current):
            continue
        files = {}
        if os.path.isdir(current):
            for base, _dirs, found in os.walk(current):
                for name in found:
                    path = os.path.join(base, name)
                    digest = hashlib.sha256()
                    with open(path, "rb") as handle:
                        for chunk in iter(lambda: handle.read(1 << 20), b""):
                            digest.update(chunk)
                    files[os.path.relpath(path, current)] = digest.hexdigest()
        servers[server] = {"current": os.path.basename(os.readlink(current)), "files": files}
    try:
        record, lock = read_b64(record_path(p)), read_b64(lock_path(p))
    except OSError as exc:
        module.fail_json(msg=f"cannot read the host's state: {exc}")
    module.exit_json(changed=False, servers=servers, record=record, lock=lock)
