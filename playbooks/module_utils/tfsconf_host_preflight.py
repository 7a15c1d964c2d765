"""tfsconf_host's preflight action: read-only probes of a host before anything changes
(free disk for versions not published yet, base paths, GPUs, the runtime and its version)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.tfsconf_host_files import (
    Params,
    existing_parent,
    rooted,
    size_text,
)


def probe_gpus(needed: list[int]) -> str | None:
    if not needed:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False
        )
    except FileNotFoundError:
        return f"GPU(s) {sorted(needed)} needed but nvidia-smi is not installed"
    except subprocess.TimeoutExpired:
        return "nvidia-smi -L did not answer within 30 s"
    if out.returncode != 0:
        return "nvidia-smi -L failed: %s" % (out.stderr.strip() or out.returncode)
    present = set()
    for line in out.stdout.splitlines():
        head = line.split(":", 1)[0].strip()
        if head.startswith("GPU "):
            with contextlib.suppress(ValueError):
                present.add(int(head[4:]))
    missing = sorted(set(needed) - present)
    if missing:
        return "GPU index(es) {} not present (nvidia-smi -L lists {})".format(
            missing,
            sorted(present) or "none",
        )
    return None


def which(name: str, path_value: str | None) -> str | None:
    for directory in (path_value or os.environ.get("PATH", "")).split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def probe_server_version(
    runtime: str, binary: str, process_env: dict[str, Any] | None, want: str
) -> str | None:
    """model_servers/main.cc --version prints "TensorFlow ModelServer: <version>" (a release
    build adds a suffix such as -rc0+dev.sha.<sha>); its X.Y.Z must be the spec's."""
    if not want:
        return None
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (process_env or {}).items()})
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=60, check=False, env=env
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"runtime {runtime}: {binary} --version failed: {exc}"
    found = None
    for line in out.stdout.splitlines():
        if line.startswith("TensorFlow ModelServer:"):
            found = line.split(":", 1)[1].strip()
    if out.returncode != 0 or not found:
        said = (out.stdout + out.stderr).strip()[:200]
        return (
            f"runtime {runtime}: {binary} --version did not report a version "
            f"(exit {out.returncode}): {said}"
        )
    release = found.split("-", 1)[0].split("+", 1)[0]
    if release != want:
        return (
            f"runtime {runtime}: {binary} is TF Serving {found}, the spec declares "
            f"tfserving_version {want} "
            f"(flags and rules were checked against {want})"
        )
    return None


def probe_preload(root: str, libraries: list[str]) -> str | None:
    """LD_PRELOAD of a missing file is skipped by the loader with only a warning, and the
    server then runs on glibc malloc, which keeps unloaded models' memory."""
    missing = [lib for lib in libraries if not os.path.isfile(rooted(root, lib))]
    if missing:
        return "allocator library {} is not on the host (LD_PRELOAD would be ignored)".format(
            ", ".join(missing)
        )
    return None


def probe_runtime(
    runtime: str,
    process_path: str,
    want_version: str = "",
    process_env: dict[str, Any] | None = None,
) -> str | None:
    if runtime == "process":
        binary = which("tensorflow_model_server", process_path)
        if binary is None:
            return "runtime process: tensorflow_model_server is not on PATH (%s)" % (
                process_path or os.environ.get("PATH", "")
            )
        return probe_server_version(runtime, binary, process_env, want_version)
    if which("systemctl", None) is None:
        return f"runtime {runtime} needs systemd: systemctl not found"
    if runtime == "native":
        if not os.access("/usr/bin/tensorflow_model_server", os.X_OK):
            return "runtime native: /usr/bin/tensorflow_model_server is missing"
        return probe_server_version(runtime, "/usr/bin/tensorflow_model_server", None, want_version)
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
        return f"runtime docker: the docker engine does not answer: {out.stderr.strip()}"
    return None


def free_space_problems(p: Params) -> list[str]:
    """Versions not published yet need their bytes free on the filesystem they are written
    to, which is their base path's (a model may have a disk of its own), not necessarily
    model_root's. A version already there (published by an apply that failed later, or by
    hand) is left alone by the sync and needs nothing."""
    root = p["root"]
    if not p["syncs"]:  # sizes without the versions they belong to: one filesystem
        if not p["need_bytes"]:
            return []
        items = [(p["model_root"], int(p["need_bytes"]), "")]
    else:
        items = []
        for item in p["syncs"]:
            path = rooted(root, os.path.join(item["base_path"], str(item["version"])))
            if not os.path.isdir(path):
                name = "{} v{}".format(item.get("model") or item["base_path"], item["version"])
                items.append((item["base_path"], int(item.get("bytes") or 0), name))
    # per filesystem: what it must hold, the base paths and versions written there
    needs: dict[int, list[Any]] = {}
    for base, size, name in items:
        where = existing_parent(rooted(root, base))
        entry = needs.setdefault(os.stat(where).st_dev, [where, 0, [], []])
        entry[1] += size
        if base not in entry[2]:
            entry[2].append(base)
        if name:
            entry[3].append(name)
    problems = []
    for where, need, bases, names in needs.values():
        if not need:
            continue
        stat = os.statvfs(where)
        free = stat.f_bavail * stat.f_frsize
        if free < need:
            problems.append(
                f"not enough free disk under {', '.join(bases)}: {size_text(need)} needed for "
                f"new model versions ({', '.join(names) or '?'}), {size_text(free)} free"
            )
    return problems


def preflight(module: AnsibleModule, p: Params) -> None:
    problems = preflight_problems(probe_params(p))
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems)
    module.exit_json(changed=False)


PROBE_KEYS = (
    "model_root",
    "base_paths",
    "versions_present",
    "need_bytes",
    "syncs",
    "gpus",
    "runtime",
    "preload",
    "tfserving_version",
)
"""What the controller says per host in `probe` (tfsconf/apply/work.py preflight_args)."""


def probe_params(p: Params) -> Params:
    """The module's parameters with the controller's `probe` for this host laid over them."""
    probe = p.get("probe") or {}
    unknown = sorted(set(probe) - set(PROBE_KEYS))
    if unknown:
        raise ValueError("probe: unknown keys " + ", ".join(unknown))
    return {**p, **probe}


def preflight_problems(p: Params) -> list[str]:
    """Every reason this host cannot take its work (empty: it can)."""
    root = p["root"]
    problems = []
    for base in p["base_paths"]:
        path = rooted(root, base)
        if os.path.isdir(path):
            continue
        if os.path.exists(path):
            problems.append(f"base path {base} exists but is not a directory")
            continue
        parent = existing_parent(path)
        if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
            problems.append(
                f"base path {base} is missing and cannot be created ({parent} is not a writable "
                "directory): a missing base path stalls every model of the server"
            )
    for item in p["versions_present"]:
        path = rooted(root, os.path.join(item["base_path"], str(item["version"])))
        if not os.path.isdir(path):
            problems.append(
                "version {} of {} is no longer on the host".format(
                    item["version"], item["base_path"]
                )
            )
    problems.extend(free_space_problems(p))
    for message in (
        probe_gpus(p["gpus"]),
        probe_runtime(p["runtime"], p["process_path"], p["tfserving_version"], p["process_env"]),
        probe_preload(root, p["preload"]),
    ):
        if message:
            problems.append(message)
    return problems
