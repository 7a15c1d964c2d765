"""SSH connection sharing across the playbook runs of one tfsconf process.

Every playbook run (gather, lock, preflight, each rollout, unlock, the lease heartbeat) is
its own ansible-playbook. With a control-socket directory per run, each run opened a new
SSH connection to every host: a key exchange and a login per host and run, most of the
cost of a short run. One directory per process and inventory lets the runs share the
connections (ControlMaster=auto, ControlPersist) that the first run opened.

Only runs with the same inventory share a directory: the inventory holds every connection
setting (user, port, key, known-hosts file), so a connection is never reused by a run that
would have checked the host key differently. The directory is private (0700), lives only as
long as the process, and at exit the masters it holds are told to close.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

_DIRS: dict[str, Path] = {}
_LOCK = threading.Lock()


def control_dir(inventory_text: str) -> Path:
    """The control-socket directory for runs with this inventory (as written for Ansible)."""
    key = hashlib.sha256(inventory_text.encode()).hexdigest()
    with _LOCK:
        found = _DIRS.get(key)
        if found is None or not found.is_dir():
            # short: a socket path must fit in 108 bytes (Ansible adds a 10-character hash)
            found = Path(tempfile.mkdtemp(prefix="tfsconf-ssh-"))
            if not _DIRS:
                atexit.register(close_all)
            _DIRS[key] = found
        return found


def close_all() -> None:
    """Ask each master connection to exit, then remove the directories."""
    with _LOCK:
        dirs = list(_DIRS.values())
        _DIRS.clear()
    for directory in dirs:
        for socket in sorted(directory.glob("*")) if directory.is_dir() else []:
            # when this fails the master still ends by itself (ControlPersist)
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(
                    ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "tfsconf-master"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=5,
                    check=False,
                )
        shutil.rmtree(directory, ignore_errors=True)
