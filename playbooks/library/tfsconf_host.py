#!/usr/bin/python3
"""tfsconf_host: the host side of tfsconf apply (runs on the serving host, stdlib only).

Actions (option `action`):
- preflight: read-only probes (free disk, base paths creatable, GPUs, runtime).
- lock: takes this run's host lock (owner: operator, controller host, pid and its start
  time; a heartbeat `renewed_at` with a lease) and returns the last-applied record read
  under it. Another run's lock is refused, taken over with break_mode `dead` only when
  that run is dead (the controller proved it: `dead_runs`; or its lease ran out and the
  controller did not prove it alive: `live_runs`), or with `force`; the broken lock is
  reported.
- renew: the running apply's heartbeat (fails when the lock is no longer this run's).
- stage: writes each server's artifacts into <config_root>/<server>/releases/<release>/
  (a temporary directory renamed into place; an identical release is left alone) and
  creates the model base paths.
- switch: points <config_root>/<server>/current at a release (a new symlink renamed over
  the old one: readers see the old or the new target, never none); `release: null` removes
  `current` (a server that did not exist before).
- record: writes the last-applied record (state.json) and its copy per release, then
  removes releases beyond `keep_releases` (never one a `current` link points at, the
  previous one, or one a run holding the lock or broken out of it applies).
- unlock: removes the lock when this run holds it.
- inspect (read-only): each server's `current` target and the sha256 of its files.
Every path is prefixed by `root` (empty in production; the test bed gives each host one).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

STATE_DIR = ".tfsconf"


def rooted(root, path):
    return root.rstrip("/") + path if root else path


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data, mode=0o644):
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def read_json(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError:
        return None


def existing_parent(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


# --- preflight ------------------------------------------------------------------------


def probe_gpus(needed):
    if not needed:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        return "GPU(s) %s needed but nvidia-smi is not installed" % sorted(needed)
    except subprocess.TimeoutExpired:
        return "nvidia-smi -L did not answer within 30 s"
    if out.returncode != 0:
        return "nvidia-smi -L failed: %s" % (out.stderr.strip() or out.returncode)
    present = set()
    for line in out.stdout.splitlines():
        head = line.split(":", 1)[0].strip()
        if head.startswith("GPU "):
            try:
                present.add(int(head[4:]))
            except ValueError:
                pass
    missing = sorted(set(needed) - present)
    if missing:
        return "GPU index(es) %s not present (nvidia-smi -L lists %s)" % (
            missing,
            sorted(present) or "none",
        )
    return None


def which(name, path_value):
    for directory in (path_value or os.environ.get("PATH", "")).split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def probe_server_version(runtime, binary, process_env, want):
    """model_servers/main.cc --version prints "TensorFlow ModelServer: <version>" (a release
    build adds a suffix such as -rc0+dev.sha.<sha>); its X.Y.Z must be the spec's."""
    if not want:
        return None
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (process_env or {}).items()})
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60,
                             check=False, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return "runtime %s: %s --version failed: %s" % (runtime, binary, exc)
    found = None
    for line in out.stdout.splitlines():
        if line.startswith("TensorFlow ModelServer:"):
            found = line.split(":", 1)[1].strip()
    if out.returncode != 0 or not found:
        return "runtime %s: %s --version did not report a version (exit %s): %s" % (
            runtime, binary, out.returncode, (out.stdout + out.stderr).strip()[:200])
    release = found.split("-", 1)[0].split("+", 1)[0]
    if release != want:
        return ("runtime %s: %s is TF Serving %s, the spec declares tfserving_version %s "
                "(flags and rules were checked against %s)" % (runtime, binary, found, want, want))
    return None


def probe_preload(root, libraries):
    """LD_PRELOAD of a missing file is skipped by the loader with only a warning, and the
    server then runs on glibc malloc, which keeps unloaded models' memory."""
    missing = [lib for lib in libraries if not os.path.isfile(rooted(root, lib))]
    if missing:
        return "allocator library %s is not on the host (LD_PRELOAD would be ignored)" % (
            ", ".join(missing))
    return None


def probe_runtime(runtime, process_path, want_version="", process_env=None):
    if runtime == "process":
        binary = which("tensorflow_model_server", process_path)
        if binary is None:
            return "runtime process: tensorflow_model_server is not on PATH (%s)" % (
                process_path or os.environ.get("PATH", "")
            )
        return probe_server_version(runtime, binary, process_env, want_version)
    if which("systemctl", None) is None:
        return "runtime %s needs systemd: systemctl not found" % runtime
    if runtime == "native":
        if not os.access("/usr/bin/tensorflow_model_server", os.X_OK):
            return "runtime native: /usr/bin/tensorflow_model_server is missing"
        return probe_server_version(runtime, "/usr/bin/tensorflow_model_server", None,
                                    want_version)
    if which("docker", None) is None:
        return "runtime docker: the docker CLI is not installed"
    out = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if out.returncode != 0:
        return "runtime docker: the docker engine does not answer: %s" % out.stderr.strip()
    return None


def lock_age(current, path):
    """Seconds since the lock's owner last renewed it (host clock; a lock without a
    heartbeat counts from the file's mtime)."""
    renewed = current.get("renewed_at")
    if not isinstance(renewed, (int, float)):
        try:
            renewed = os.stat(path).st_mtime
        except OSError:
            renewed = time.time()
    return max(0, int(time.time() - renewed))


def describe_owner(current, age):
    owner = current.get("owner") or {}
    if not isinstance(owner, dict):  # a lock written before owners were recorded
        owner = {"operator": owner}
    return "%s (run %s, pid %s on %s, since %s, renewed %d s ago)" % (
        owner.get("operator") or "?",
        current.get("run_id"),
        owner.get("pid", "?"),
        owner.get("controller", "?"),
        current.get("since"),
        age,
    )


def lock_doc(p, since, broke=None):
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


def read_lock(path):
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
def lock_guard(p):
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


def take_lock(path, p):
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
        dead = run is not None and run not in p["live_runs"] and (
            run in p["dead_runs"] or age > lease
        )
        mode = p["break_mode"]
        if mode == "none":
            return None, "host is locked by %s; if that apply is dead, run again with " \
                "--break-lock" % who
        if mode == "dead" and not dead:
            return None, (
                "host is locked by a live apply: %s (lease %d s); --break-lock takes over "
                "only a dead run's lock; if you are sure it is dead, --force-break-lock"
                % (who, lease)
            )
        broken = dict(current, age_seconds=age)
    write_atomic(path, lock_doc(p, since, broken))
    return broken, None


def lock_path(p):
    return rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "lock"))


def lock(module, p):
    """Take (or renew) this run's lock, then read the last-applied record under it."""
    with lock_guard(p):
        broken, message = take_lock(lock_path(p), p)
    if message:
        module.fail_json(msg=message)
    state = rooted(p["root"], os.path.join(p["config_root"], STATE_DIR, "state.json"))
    try:
        with open(state, "rb") as handle:
            record = base64.b64encode(handle.read()).decode()
    except FileNotFoundError:
        record = ""
    module.exit_json(changed=True, broken_lock=broken, record=record)


def renew(module, p):
    path = lock_path(p)
    with lock_guard(p):
        current = read_lock(path)
        if current is None or current.get("run_id") != p["run_id"]:
            holder = describe_owner(current, lock_age(current, path)) if current else "nobody"
            module.fail_json(msg="this run no longer holds the lock (now held by %s)" % holder)
        current["renewed_at"] = time.time()
        write_atomic(path, (json.dumps(current, sort_keys=True) + "\n").encode())
    module.exit_json(changed=False)


def size_text(n):
    return "%d MiB" % (n >> 20) if n >= 1 << 20 else "%d KiB" % -(-n >> 10)


def preflight(module, p):
    root = p["root"]
    problems = []
    for base in p["base_paths"]:
        path = rooted(root, base)
        if os.path.isdir(path):
            continue
        if os.path.exists(path):
            problems.append("base path %s exists but is not a directory" % base)
            continue
        parent = existing_parent(path)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            problems.append(
                "base path %s is missing and cannot be created (%s is not a writable "
                "directory): a missing base path stalls every model of the server" % (base, parent)
            )
    for item in p["versions_present"]:
        path = rooted(root, os.path.join(item["base_path"], str(item["version"])))
        if not os.path.isdir(path):
            problems.append(
                "version %s of %s is no longer on the host" % (item["version"], item["base_path"])
            )
    need = p["need_bytes"]
    missing = []
    if p["syncs"]:
        # only versions not published yet take space (one published by an apply that
        # failed later, or by hand, is left alone by the sync)
        need = 0
        for item in p["syncs"]:
            path = rooted(root, os.path.join(item["base_path"], str(item["version"])))
            if not os.path.isdir(path):
                need += int(item.get("bytes") or 0)
                missing.append("%s v%s" % (item.get("model") or item["base_path"], item["version"]))
    free = None
    if need:
        where = existing_parent(rooted(root, p["model_root"]))
        stat = os.statvfs(where)
        free = stat.f_bavail * stat.f_frsize
        if free < need:
            problems.append(
                "not enough free disk under %s: %s needed for new model versions (%s), %s free"
                % (p["model_root"], size_text(need), ", ".join(missing) or "?", size_text(free))
            )
    for message in (
        probe_gpus(p["gpus"]),
        probe_runtime(p["runtime"], p["process_path"], p["tfserving_version"], p["process_env"]),
        probe_preload(root, p["preload"]),
    ):
        if message:
            problems.append(message)
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems)
    module.exit_json(changed=False, free_bytes=free)


# --- stage / switch -------------------------------------------------------------------


def same_tree(directory, files):
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


def stage(module, p):
    root = p["root"]
    changed = False
    if not module.check_mode:
        with lock_guard(p):
            held = read_lock(lock_path(p))
            if held is not None and held.get("run_id") == p["run_id"]:
                held["release"] = p["release"]  # what this run applies: cleanup keeps it
                write_atomic(lock_path(p), (json.dumps(held, sort_keys=True) + "\n").encode())
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
    previous = {}
    for server, files in sorted(p["servers"].items()):
        server_dir = rooted(root, os.path.join(p["config_root"], server))
        target = os.path.join(server_dir, "releases", p["release"])
        current = os.path.join(server_dir, "current")
        previous[server] = os.path.basename(os.readlink(current)) if os.path.islink(current) else None
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
        os.chmod(tmp, 0o755)
        if os.path.isdir(target):  # same release id, other bytes: an edited release
            shutil.rmtree(target)
        os.rename(tmp, target)
        fsync_dir(os.path.dirname(target))
    module.exit_json(changed=changed, created_base_paths=created, previous=previous)


def point(current, release):
    """current -> releases/<release> (or removed when release is None); True if changed."""
    want = None if release is None else os.path.join("releases", release)
    have = os.readlink(current) if os.path.islink(current) else None
    if have == want:
        return False
    if want is None:
        os.unlink(current)
    else:
        tmp = "%s.tmp-%d" % (current, os.getpid())
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(want, tmp)
        os.rename(tmp, current)
    fsync_dir(os.path.dirname(current))
    return True


def switch(module, p):
    root = p["root"]
    changed = []
    for server, release in sorted(p["targets"].items()):
        current = rooted(root, os.path.join(p["config_root"], server, "current"))
        if release is not None and not os.path.isdir(
            os.path.join(os.path.dirname(current), "releases", release)
        ):
            module.fail_json(msg="server %s: release %s is not staged on this host" % (server, release))
        if module.check_mode:
            have = os.readlink(current) if os.path.islink(current) else None
            if have != (None if release is None else os.path.join("releases", release)):
                changed.append(server)
            continue
        if point(current, release):
            changed.append(server)
    module.exit_json(changed=bool(changed), switched=changed)


# --- record / unlock ------------------------------------------------------------------


def record(module, p):
    root = p["root"]
    state_dir = rooted(root, os.path.join(p["config_root"], STATE_DIR))
    state_path = os.path.join(state_dir, "state.json")
    doc = dict(p["record"])
    old = read_json(state_path)
    if old is not None and {k: v for k, v in old.items() if k not in ("applied_at", "operator",
            "history")} == {k: v for k, v in doc.items() if k not in ("applied_at", "operator",
            "history")}:
        module.exit_json(changed=False, pruned=[])
    history = list((old or {}).get("history", []))
    history.append(
        {"release": doc["release"], "applied_at": doc["applied_at"], "operator": doc["operator"],
         "spec_sha256": doc["spec_sha256"], "kind": p["kind"]}
    )
    doc["history"] = history[-100:]
    data = (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()
    if module.check_mode:
        module.exit_json(changed=True, pruned=[])
    write_atomic(os.path.join(state_dir, "releases", doc["release"] + ".json"), data)
    write_atomic(state_path, data)
    servers = doc.get("manifest", {}).get("servers", []) + list(p.get("other_servers", []))
    with lock_guard(p):
        previous = old.get("release") if old is not None else None
        pruned = prune_releases(p, state_dir, history, servers, previous)
    module.exit_json(changed=True, pruned=pruned)


def prune_releases(p, state_dir, history, servers, previous):
    """Remove releases beyond the newest keep_releases (by the order they were applied).
    Never one that a server's `current` points at (every server directory is looked at,
    not only this record's), one the host record names, or one a run holding (or broken
    out of) the lock applies; and nothing at all when this run no longer holds the lock
    (another apply took it over and may be about to point `current` at any release).
    Runs under lock_guard: no run can take the lock while this looks."""
    held = read_lock(lock_path(p)) or {}
    if held.get("run_id") != p["run_id"]:
        return []
    keep = []
    for entry in reversed(history):
        if entry["release"] not in keep:
            keep.append(entry["release"])
    keep = set(keep[: p["keep_releases"]]) | {previous}  # the previous one: rollback's
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
            pruned.append("%s/%s" % (server, name))
    for name in sorted(os.listdir(os.path.join(state_dir, "releases"))):
        if name.endswith(".json") and name[:-5] not in keep:
            os.unlink(os.path.join(state_dir, "releases", name))
    return pruned


def inspect(module, p):
    """Read-only: per server directory with a `current` link, the release it points at and
    the sha256 of every file in it (status and apply compare them with the record)."""
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
    module.exit_json(changed=False, servers=servers)


def unlock(module, p):
    path = lock_path(p)
    with lock_guard(p):
        current = read_lock(path)
        if current is None or current.get("run_id") != p["run_id"]:
            module.exit_json(changed=False)
        if not module.check_mode:
            os.unlink(path)
    module.exit_json(changed=True)


def main():
    module = AnsibleModule(
        argument_spec={
            "action": {
                "type": "str",
                "required": True,
                "choices": [
                    "preflight", "lock", "renew", "stage", "switch", "record", "unlock", "inspect"
                ],
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
            "run_id": {"type": "str", "default": ""},
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
        },
        supports_check_mode=True,
    )
    action = module.params["action"]
    {"preflight": preflight, "lock": lock, "renew": renew, "stage": stage, "switch": switch,
     "record": record, "unlock": unlock, "inspect": inspect}[action](module, module.params)


if __name__ == "__main__":
    main()
