"""Host locks for apply and rollback: every host of the environment, before anything is
read for the rollout or changed. The first host in host-name order is taken alone, then
all the others at once.

The first host decides: of two runs started together, the one that loses it holds nothing
and gives up, so exactly one proceeds. The records are read again under
the locks: what the rollout builds on cannot change until the locks are released.

A lock names its owner well enough to tell whether it is alive: operator, controller
host, pid and that process's start time (a pid can be reused), and a heartbeat the
running run renews (`renewed_at`, valid for `lease_seconds`). `--break-lock` takes over a
lock only when its owner is dead: it was started on this machine and its process is gone,
or (started elsewhere) its lease ran out. `--force-break-lock` takes over any lock.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any, Literal

from tfsconf.apply import ansible
from tfsconf.apply.record import HostRecord, operator, parse_record
from tfsconf.contracts import Probe, Staging
from tfsconf.errors import UserError
from tfsconf.resolve import model as r

BreakMode = Literal["none", "dead", "force"]
LEASE_SECONDS = 240
"""A lock not renewed for this long belongs to a dead run."""
RENEW_SECONDS = 60.0
"""The heartbeat's period. Each renewal is a playbook run over every held host (at 30
hosts about 10 core-seconds, host and controller together), so it is kept rare: an apply
that ends within a minute of taking its locks renews none. The lease is four periods, so
one failed renewal (a host briefly unreachable) plus a slow heartbeat run on a large fleet
still leave the lock alive."""


class LockRefused(UserError):
    """A host is locked by another run that is (or may be) alive."""

    def __init__(self, host: str, message: str) -> None:
        super().__init__(f"{host}: {message}")
        self.host = host
        self.reason = message


def process_start(pid: int) -> str | None:
    """The start time of a local process (clock ticks since boot), None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def this_owner() -> dict[str, Any]:
    return {
        "operator": operator(),
        "controller": socket.gethostname(),
        "pid": os.getpid(),
        "pid_start": process_start(os.getpid()),
    }


def judge_runs(locks: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    """(dead, alive): the runs holding `locks` that this controller can judge, because
    they were started here: alive while their process runs (the same pid and start time),
    dead once it is gone. Runs of other controllers are judged by their lease alone."""
    here = socket.gethostname()
    dead, alive = set(), set()
    for lock in locks.values():
        owner = lock.get("owner")
        if not isinstance(owner, dict) or owner.get("controller") != here:
            continue
        try:
            pid = int(owner.get("pid", 0))
        except (TypeError, ValueError):
            continue
        if pid <= 0:
            continue
        started = process_start(pid)
        run = str(lock.get("run_id"))
        # compared as text: the start time may come back through Ansible as a number
        if started is not None and started == str(owner.get("pid_start")):
            alive.add(run)
        else:
            dead.add(run)
    return sorted(dead), sorted(alive)


def describe_lock(lock: Mapping[str, Any]) -> str:
    owner = lock.get("owner")
    if not isinstance(owner, dict):
        owner = {"operator": owner}
    age = lock.get("age_seconds")
    return (
        f"{owner.get('operator') or '?'} (run {lock.get('run_id')}, pid {owner.get('pid', '?')} "
        f"on {owner.get('controller', '?')}, since {lock.get('since')}"
        + (f", last renewed {age} s before" if age is not None else "")
        + ")"
    )


class HostLocks:
    """This run's locks on every host of an environment; a heartbeat renews them while
    they are held. `release` is safe to call more than once."""

    def __init__(
        self,
        env: r.Environment,
        inventory: Mapping[str, Any],
        run_id: str,
        *,
        break_mode: BreakMode = "none",
        known_locks: Mapping[str, Mapping[str, Any]] | None = None,
        progress: Callable[[str, str, str], None] | None = None,
        lease_seconds: int = LEASE_SECONDS,
        renew_seconds: float = RENEW_SECONDS,
        cancel: Callable[[], bool] | None = None,
        forks: int | None = ansible.DEFAULT_FORKS,
    ) -> None:
        self.env = env
        self.forks = forks
        self.inventory = inventory
        self.run_id = run_id
        self.break_mode = break_mode
        self.known_locks = dict(known_locks or {})
        self.progress = progress
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self.cancel = cancel
        self.held: list[str] = []
        self.broken: dict[str, dict[str, Any]] = {}
        """host -> the lock this run took over (with --break-lock)."""
        self.probed: dict[str, list[str]] | None = None
        """host -> its preflight problems, when acquire probed the hosts (else None)."""
        self.staged: dict[str, bool] = {}
        """host -> whether staging its release changed it, for each host whose release
        acquire staged (its probe passed)."""
        self.lost: dict[str, str] = {}
        """host -> why the heartbeat could not renew this run's lock there."""
        self._released: set[str] = set()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _vars(self) -> dict[str, Any]:
        return {
            "tfsconf_config_root": self.env.config_root,
            "tfsconf_run_id": self.run_id,
        }

    def acquire(
        self,
        probes: Mapping[str, Probe] | None = None,
        stagings: Mapping[str, Staging] | None = None,
    ) -> dict[str, HostRecord | None]:
        """Lock every host (the first by name alone, then the rest; any refusal releases
        what was taken) and return each host's record as read under its lock. The hosts in
        `probes` also run their preflight under the lock: `probed` then holds each one's
        problems (an empty list: it passed). Those of them in `stagings` whose probe passed
        then have that release staged in the same call (`staged`)."""
        names = sorted(h.name for h in self.env.hosts)
        probes = dict(probes or {})
        stagings = {n: s for n, s in (stagings or {}).items() if n in probes}
        dead, alive = judge_runs(self.known_locks)
        result = ansible.run(
            "lock.yml",
            inventory=self.inventory,
            extravars={
                **self._vars(),
                "tfsconf_owner": this_owner(),
                "tfsconf_break_mode": self.break_mode,
                "tfsconf_dead_runs": dead,
                "tfsconf_live_runs": alive,
                "tfsconf_lease_seconds": self.lease_seconds,
                "tfsconf_probes": probes,
                "tfsconf_stagings": stagings,
            },
            limit=names,
            progress=self.progress,
            forks=self.forks,
            cancel=self.cancel,
        )
        self.held = [n for n in names if "record" in result.results.get(n, {})]
        for name in self.held:
            broken = result.results[name].get("broken_lock")
            if isinstance(broken, dict) and broken:
                self.broken[name] = broken
        refused = [n for n in names if n not in self.held]
        if refused:
            self.release()
            first = next((n for n in names if result.first_failure(n) is not None), refused[0])
            failure = result.first_failure(first)
            why = failure.message if failure is not None else f"not locked ({result.status})"
            if failure is not None and failure.unreachable:
                why = f"unreachable: {why}"
            raise LockRefused(first, why)
        found = {n: result.results[n].get("preflight") for n in probes}
        if all(isinstance(problems, list) for problems in found.values()):
            self.probed = {n: [str(p) for p in problems or ()] for n, problems in found.items()}
        for name, staging in stagings.items():
            staged = result.results[name].get("staged")
            if isinstance(staged, dict) and staged.get("release") == staging["release"]:
                self.staged[name] = bool(staged.get("changed"))
        self._heartbeat = threading.Thread(target=self._renew, name="tfsconf-lease", daemon=True)
        self._heartbeat.start()
        return {n: parse_record(n, str(result.results[n].get("record", ""))) for n in names}

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_seconds):
            try:
                result = ansible.run(
                    "lease.yml",
                    inventory=self.inventory,
                    extravars=self._vars(),
                    limit=list(self.held),
                    progress=None,
                    forks=self.forks,
                )
            except UserError as exc:  # the controller could not run the heartbeat at all
                self.lost["*"] = str(exc)
                continue
            for name in result.failed_hosts():
                failure = result.first_failure(name)
                self.lost[name] = failure.message if failure else "not renewed"

    def lost_notes(self) -> list[str]:
        """What the operator should know about locks the heartbeat could not renew: another
        run may have taken such a host over (and changed it) while this one ran."""
        notes = []
        for host, why in sorted(self.lost.items()):
            if host == "*":
                notes.append(f"the lock heartbeat could not run: {why}")
            else:
                notes.append(
                    f"{host}: this run's lock could not be renewed ({why}); another run may "
                    "have changed the host since: `tfsconf status` shows what it runs"
                )
        return notes

    def released_by_rollout(self, hosts: list[str]) -> None:
        """The last rollout run released these hosts' locks itself (rollout.yml's unlock
        play): `release` leaves them out. A heartbeat that raced that play found no lock
        of this run there: not a lost lock."""
        self.held = [h for h in self.held if h not in hosts]
        self._released.update(hosts)

    def release(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=120)
            self._heartbeat = None
        for host in self._released:
            self.lost.pop(host, None)
        if not self.held:
            return
        held, self.held = self.held, []
        ansible.run(
            "unlock.yml",
            inventory=self.inventory,
            extravars=self._vars(),
            limit=held,
            progress=None,
            forks=self.forks,
        )
