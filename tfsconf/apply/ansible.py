"""The one adapter between tfsconf and Ansible: every playbook run goes through `run`.

Each run gets a fresh private_data_dir: ansible-runner writes env/extravars and
env/cmdline there, and a later run in the same directory would silently read them back.
Variables go in as an extravars file (never on a command line, where `ps` shows them),
results come back from the runner's events as typed values. The inventory and the
variables are written by tfsconf.apply.unsafe: Ansible never templates any of their values.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfsconf.apply import sshmux, unsafe
from tfsconf.errors import UserError
from tfsconf.secrets import mask


def playbooks_dir() -> Path:
    """playbooks/ of a source checkout, or the copy a wheel ships as tfsconf/_playbooks."""
    package = Path(__file__).resolve().parent.parent
    shipped = package / "_playbooks"
    return shipped if shipped.is_dir() else package.parent / "playbooks"


@dataclass(frozen=True, slots=True)
class TaskFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass(frozen=True, slots=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failures: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0


@dataclass(slots=True)
class RunResult:
    playbook: str
    status: str
    rc: int
    stats: dict[str, HostStats] = field(default_factory=dict)
    failures: list[TaskFailure] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per host: values the playbook published with `set_fact: tfsconf_out_<key>`."""

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.stats.values())

    def failed_hosts(self) -> list[str]:
        return sorted(h for h, s in self.stats.items() if s.failures or s.unreachable)

    def first_failure(self, host: str) -> TaskFailure | None:
        for failure in self.failures:
            if failure.host == host:
                return failure
        return None


Progress = Callable[[str, str, str], None]
"""(host, task name, outcome) for each finished task; host is "" for play starts."""

DEFAULT_FORKS: int | None = None
"""Hosts a run works on at once unless the caller asks (--forks): None is one per host."""
_OUT_PREFIX = "tfsconf_out_"
MAX_FORKS = 50
"""Hosts one playbook works on at once: each fork is a process on the controller."""
# Settings with no environment variable. The strategy polls its workers' results every
# internal_poll_interval: Ansible's 1 ms default costs a fifth of the controller's CPU while
# tasks wait on hosts; 10 ms is still far below any task's length.
_CONFIG = "[defaults]\ninternal_poll_interval = 0.01\n"
_SECRETS_FILE = "secrets.json"


def _message(res: Mapping[str, Any]) -> str:
    return mask(_raw_message(res))


def _raw_message(res: Mapping[str, Any]) -> str:
    parts = []
    msg = res.get("msg")
    if msg:
        parts.append(str(msg))
    stderr = res.get("stderr")
    if stderr and str(stderr).strip():
        parts.append(str(stderr).strip().splitlines()[-1])
    if res.get("results") and (not parts or str(msg).startswith("One or more items failed")):
        # a loop: Ansible's own message says nothing; the first failed item has the cause
        for item in res["results"]:
            if isinstance(item, dict) and item.get("failed"):
                label = item.get("_ansible_item_label")
                label = label if isinstance(label, str) else ""
                return (f"{label}: " if label else "") + _raw_message(item)
    return "; ".join(parts) or "failed"


def run(
    playbook: str,
    *,
    inventory: Mapping[str, Any],
    extravars: Mapping[str, Any],
    limit: Sequence[str] | None = None,
    check: bool = False,
    progress: Progress | None = None,
    forks: int | None = None,
    keep_dir: Path | None = None,
    secrets: Mapping[str, Any] | None = None,
    cancel: Callable[[], bool] | None = None,
    skip_tags: Sequence[str] = (),
) -> RunResult:
    """Run playbooks/<playbook> and return what happened per host; never raises for a
    failed host (the caller decides), only for a run that could not start. `secrets` are
    extra variables kept apart: their file is the one thing a kept (TFSCONF_KEEP_ANSIBLE_DIR)
    copy of the run leaves out. `forks` defaults to one per host of the run, at most
    MAX_FORKS. `skip_tags`: tasks left out of this run (tfsconf.apply.optional)."""
    # long: one linear sequence (lay out the private data dir, write inventory and
    #   variables, start ansible-runner, collect per-host results, clean up) under one
    #   try/finally that must own the temporary directory.
    import ansible_runner

    book = playbooks_dir() / playbook
    if not book.is_file():
        raise UserError(f"playbook {book} is missing from this installation")
    data_dir = Path(tempfile.mkdtemp(prefix="tfsconf-ansible-"))
    debug_dir = os.environ.get("TFSCONF_KEEP_ANSIBLE_DIR")  # for debugging a playbook run
    if keep_dir is None and debug_dir:
        keep_dir = Path(debug_dir) / f"{playbook}-{data_dir.name}"
    result = RunResult(playbook=playbook, status="unstarted", rc=-1)
    try:
        (data_dir / "project").symlink_to(playbooks_dir())
        (data_dir / "inventory").mkdir()
        (data_dir / "ansible.cfg").write_text(_CONFIG)
        hosts_file = data_dir / "inventory" / "hosts.json"
        inventory_text = unsafe.inventory(inventory)
        hosts_file.write_text(inventory_text)
        os.chmod(data_dir, 0o700)

        def on_event(event: dict[str, Any]) -> bool:
            _collect(event, result, progress)
            return True

        # variables in a file: a command line has a 128 KiB limit per argument and shows in ps
        _write_guard(data_dir)
        variables = data_dir / "vars.json"
        variables.touch(0o600)
        variables.write_text(unsafe.variables(extravars))
        if forks is None:
            forks = max(1, min(len(limit) if limit else _host_count(inventory), MAX_FORKS))
        cmdline = ["--forks", str(forks), "-e", f"@{variables}"]
        if secrets:
            secret_file = data_dir / _SECRETS_FILE
            secret_file.touch(0o600)
            secret_file.write_text(unsafe.variables(secrets))
            cmdline += ["-e", f"@{secret_file}"]
        if check:
            cmdline.append("--check")
        if skip_tags:
            cmdline += ["--skip-tags", ",".join(skip_tags)]
        runner = ansible_runner.run(
            private_data_dir=str(data_dir),
            playbook=playbook,
            inventory=str(hosts_file),
            limit=",".join(limit) if limit else None,
            cmdline=" ".join(cmdline),
            quiet=True,
            suppress_env_files=True,
            event_handler=on_event,
            # control sockets shared by this process's runs with the same inventory (one
            # connection per host, not one per run); a run with other connection settings
            # never reuses them (tfsconf.apply.sshmux)
            envvars={
                **_hidden(inventory),
                **_environment(),
                "ANSIBLE_SSH_CONTROL_PATH_DIR": str(sshmux.control_dir(inventory_text)),
                "ANSIBLE_CONFIG": str(data_dir / "ansible.cfg"),
                "TFSCONF_CONTROLLER_PID": str(os.getpid()),
                # ansible-playbook under a guard that dies with this process (below)
                "PATH": os.pathsep.join([str(data_dir / "bin"), _environment()["PATH"]]),
            },
            settings={"suppress_ansible_output": True},
            # never ansible-runner's own SIGINT/SIGTERM handler (it kills the playbook in the
            # middle of a task): the caller decides what a signal does
            cancel_callback=cancel or (lambda: False),
        )
        result.status = str(runner.status)
        result.rc = int(runner.rc if runner.rc is not None else -1)
        stats = runner.stats or {}
        hosts: set[str] = set()
        for key in ("ok", "changed", "failures", "dark", "skipped", "rescued"):
            hosts.update((stats.get(key) or {}).keys())
        for host in hosts:
            result.stats[host] = HostStats(
                ok=(stats.get("ok") or {}).get(host, 0),
                changed=(stats.get("changed") or {}).get(host, 0),
                failures=(stats.get("failures") or {}).get(host, 0),
                unreachable=(stats.get("dark") or {}).get(host, 0),
                skipped=(stats.get("skipped") or {}).get(host, 0),
                rescued=(stats.get("rescued") or {}).get(host, 0),
            )
        if result.status in ("failed", "timeout", "canceled") and not result.stats:
            raise UserError(f"ansible-playbook {playbook} {_ended(result.rc)}: {_tail(data_dir)}")
        return result
    finally:
        if keep_dir is not None:
            shutil.copytree(
                data_dir,
                keep_dir,
                symlinks=True,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(_SECRETS_FILE),
            )
        shutil.rmtree(data_dir, ignore_errors=True)


_GUARD = """#!{python}
# ansible-playbook for one tfsconf run: it runs as a child of this guard, and when the
# tfsconf process that started it dies (even by SIGKILL, through PR_SET_PDEATHSIG) the
# guard kills the playbook's whole process group and removes the run's private directory.
import ctypes, os, shutil, signal, subprocess, sys

CONTROLLER, DATA, REAL = {controller}, {data!r}, {real!r}


def members():
    me, out = os.getpid(), []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                with open("/proc/%s/stat" % name) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == me:  # process group: the guard leads it
                out.append(int(name))
    return out


def stop(signum, frame):
    for _ in range(50):
        found = members()
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if os.getppid() != CONTROLLER:
        shutil.rmtree(DATA, ignore_errors=True)
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, stop)
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
if os.getppid() != CONTROLLER:
    stop(signal.SIGTERM, None)
child = subprocess.Popen([REAL, *sys.argv[1:]])
code = child.wait()
sys.exit(code if code >= 0 else 128 - code)
"""


def _write_guard(data_dir: Path) -> None:
    """data_dir/bin/ansible-playbook: the real one under a guard that never outlives this
    process (a killed tfsconf must not leave a playbook changing hosts behind it)."""
    guard = data_dir / "bin" / "ansible-playbook"
    guard.parent.mkdir()
    guard.write_text(
        _GUARD.format(
            python=sys.executable,
            controller=os.getpid(),
            data=str(data_dir),
            real=_ansible_playbook(),
        )
    )
    guard.chmod(0o700)


def _host_count(inventory: Mapping[str, Any]) -> int:
    hosts = inventory.get("all", {}).get("hosts", {}) if isinstance(inventory, Mapping) else {}
    return len(hosts) if isinstance(hosts, Mapping) and hosts else 10


def _ended(rc: int) -> str:
    """How a playbook that left no statistics ended (the guard exits 128 + signal)."""
    if rc > 128:
        try:
            name = signal.Signals(rc - 128).name
        except ValueError:
            name = f"signal {rc - 128}"
        return f"was killed by {name}"
    return "did not run" if rc < 0 else f"ended with rc {rc} before finishing"


def _tail(data_dir: Path) -> str:
    stdout = data_dir / "artifacts"
    texts = sorted(stdout.glob("*/stdout"))
    if not texts:
        return "no output"
    lines = [line for line in texts[-1].read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-5:])


def _ansible_playbook() -> str:
    """ansible-playbook of tfsconf's own environment (a venv need not be on PATH)."""
    beside = Path(sys.executable).parent / "ansible-playbook"
    found = str(beside) if beside.is_file() else shutil.which("ansible-playbook")
    if found is None:
        raise UserError("ansible-playbook is not installed (ansible-core is a dependency)")
    return found


def _hidden(inventory: Mapping[str, Any]) -> dict[str, str]:
    """The variables holding secrets, blanked: ansible-runner starts from this process's
    environment and writes all of it into artifacts/<run>/command."""
    from tfsconf.apply.inventory import Inventory

    names = inventory.hidden_env if isinstance(inventory, Inventory) else frozenset()
    return dict.fromkeys(sorted(names), "")


def _environment() -> dict[str, str]:
    here = playbooks_dir()
    path = os.pathsep.join([os.path.dirname(_ansible_playbook()), os.environ.get("PATH", "")])
    return {
        "PATH": path,
        # modules and the controller-side python: tfsconf's own interpreter
        "ANSIBLE_LIBRARY": str(here / "library"),
        "ANSIBLE_ACTION_PLUGINS": str(here / "action_plugins"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "True",
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=30s",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_TIMEOUT": "10",
        "TFSCONF_CONTROLLER_PYTHON": sys.executable,
    }


def _collect(event: dict[str, Any], result: RunResult, progress: Progress | None) -> None:
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    host = str(data.get("host") or "")
    task = str(data.get("task") or "")
    if kind == "playbook_on_play_start" and progress is not None:
        progress("", str(data.get("play") or ""), "play")
        return
    if kind == "runner_on_start":  # a host starts a task: who is doing what, if it dies
        if progress is not None:
            progress(host, task, "started")
        return
    if kind not in (
        "runner_on_ok",
        "runner_on_failed",
        "runner_on_unreachable",
        "runner_on_skipped",
    ):
        return
    res = data.get("res") or {}
    if kind == "runner_on_ok":
        facts = res.get("ansible_facts") or {}
        for key, value in facts.items():
            if key.startswith(_OUT_PREFIX):
                shown = mask(value) if isinstance(value, str) else value
                result.results.setdefault(host, {})[key[len(_OUT_PREFIX) :]] = shown
        outcome = "changed" if res.get("changed") else "ok"
    elif kind == "runner_on_skipped":
        outcome = "skipped"
    else:
        unreachable = kind == "runner_on_unreachable"
        ignored = bool(data.get("ignore_errors"))
        outcome = "unreachable" if unreachable else ("ignored" if ignored else "failed")
        if not ignored:
            message = _message(res)
            result.failures.append(TaskFailure(host, task, message, unreachable))
            outcome = f"{outcome}: {message}"
    if progress is not None:
        progress(host, task, outcome)
