"""The last-applied record each host keeps, and the live StateSource built from them.

TF Serving has no API that returns its config, so apply writes what it applied to
<config_root>/.tfsconf/state.json on the host (and a copy per release under
.tfsconf/releases/<release>.json, which rollback restores), as a Record
(tfsconf/contracts.py): what was applied, the host's artifacts, the images and the
model versions each release serves, and the history the host module appends.

The live source reads every host's record through Ansible (read-only) and assembles them
into the same bundle shape `plan --state` reads, so the planner cannot tell the difference.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from tfsconf.apply.ansible import DEFAULT_FORKS
from tfsconf.contracts import Manifest, ManifestHost, Record
from tfsconf.errors import UserError
from tfsconf.resolve import model as r

if TYPE_CHECKING:
    from tfsconf.plan.model import Plan
    from tfsconf.plan.state import State, StateOrigin

RECORD_SCHEMA_VERSION = 1
RECORD_GENERATOR = "tfsconf"


def operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def release_id(host_files: Mapping[str, bytes], images: Mapping[str, str]) -> str:
    """Content address of a host's release: the same artifacts give the same id, so staging
    it again is a no-op and a rollback target is named by what it contains."""
    digest = hashlib.sha256()
    for path in sorted(host_files):
        digest.update(path.encode() + b"\0" + hashlib.sha256(host_files[path]).digest())
    for name in sorted(images):
        digest.update(f"image\0{name}\0{images[name]}".encode())
    return "r-" + digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class HostRecord:
    host: str
    data: Record

    @property
    def release(self) -> str:
        return str(self.data.get("release", ""))

    @property
    def files(self) -> dict[str, str]:
        files = self.data.get("files", {})
        return dict(files) if isinstance(files, dict) else {}


def parse_record(host: str, raw: str) -> HostRecord | None:
    """A record as gather.yml returns it (base64 of state.json; "" when there is none)."""
    if not raw:
        return None
    try:
        data = json.loads(base64.b64decode(raw))
    except ValueError as exc:
        raise UserError(f"{host}: the last-applied record is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("generator") != RECORD_GENERATOR:
        raise UserError(f"{host}: the last-applied record was not written by tfsconf")
    if data.get("schema_version") != RECORD_SCHEMA_VERSION:
        raise UserError(
            f"{host}: last-applied record schema {data.get('schema_version')!r} is not "
            f"supported (this tfsconf reads {RECORD_SCHEMA_VERSION})"
        )
    return HostRecord(host, cast(Record, data))


def bundle_from_records(environment: str, records: Mapping[str, HostRecord]) -> dict[str, bytes]:
    """The records as a bundle (relative path -> bytes, manifest included)."""
    from tfsconf.compile import artifacts
    from tfsconf.compile.bundle import GENERATOR, MANIFEST, MANIFEST_SCHEMA_VERSION

    files: dict[str, bytes] = {}
    hosts: dict[str, ManifestHost] = {}
    images: dict[str, str] = {}
    for host, record in sorted(records.items()):
        hosts[host] = record.data.get("manifest") or cast(ManifestHost, {})
        for rel, text in record.files.items():
            files[artifacts.host_path(host, rel)] = str(text).encode()
        for name, ref in (record.data.get("images") or {}).items():
            images[name] = ref
            dockerfile = (record.data.get("image_files") or {}).get(name, "")
            files[artifacts.DOCKERFILE.path(image=name)] = str(dockerfile).encode()
    manifest: Manifest = {
        "generator": GENERATOR,
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "environment": environment,
        "images": dict(sorted(images.items())),
        "hosts": hosts,
        "artifacts": {
            path: hashlib.sha256(data).hexdigest() for path, data in sorted(files.items())
        },
    }
    files[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
    return files


def gather_records(
    env: r.Environment,
    inventory: Mapping[str, Any],
    *,
    hosts: list[str] | None = None,
    progress: Any = None,
    locks: dict[str, dict[str, Any]] | None = None,
    on_host: dict[str, dict[str, Any]] | None = None,
    forks: int | None = DEFAULT_FORKS,
) -> dict[str, HostRecord | None]:
    """Every host's record, read through Ansible; an unreachable host is an error. The
    hosts' locks land in `locks` when given (host -> lock document), and what each server
    runs from in `on_host` (host -> server -> {"current": release, "files": {rel: sha256}})."""
    from tfsconf.apply import ansible

    names = hosts if hosts is not None else [h.name for h in env.hosts]
    result = ansible.run(
        "gather.yml",
        inventory=inventory,
        extravars={"tfsconf_config_root": env.config_root},
        limit=names,
        progress=progress,
        forks=forks,
    )
    failed = result.failed_hosts()
    if failed:
        hosts_by_reason: dict[str, list[str]] = {}  # one line per distinct reason
        for host in failed:
            failure = result.first_failure(host)
            why = failure.message if failure else "failed"
            reason = f"{'unreachable: ' if failure and failure.unreachable else ''}{why}"
            hosts_by_reason.setdefault(reason, []).append(host)
        details = [f"{', '.join(hosts)}: {reason}" for reason, hosts in hosts_by_reason.items()]
        raise UserError(
            "cannot read the last-applied state of "
            + ", ".join(failed)
            + " (nothing was changed):\n  "
            + "\n  ".join(details)
        )
    out: dict[str, HostRecord | None] = {}
    for host in names:
        raw = str(result.results.get(host, {}).get("record", ""))
        out[host] = parse_record(host, raw)
        if on_host is not None:
            servers = result.results.get(host, {}).get("servers")
            on_host[host] = servers if isinstance(servers, dict) else {}
        if locks is not None:
            lock = parse_lock(str(result.results.get(host, {}).get("lock", "")))
            if lock is not None:
                locks[host] = lock
    return out


def parse_lock(raw: str) -> dict[str, Any] | None:
    """A host lock as gather.yml returns it (base64; "" when the host is not locked)."""
    if not raw:
        return None
    try:
        data = json.loads(base64.b64decode(raw))
    except ValueError:
        return {"run_id": "?", "unreadable": True}
    return data if isinstance(data, dict) else {"run_id": "?", "unreadable": True}


class LiveSource:
    """The hosts' last-applied records (plan --live, apply)."""

    def __init__(
        self,
        spec: Path,
        env: r.Environment,
        inventory: Mapping[str, Any],
        *,
        progress: Any = None,
        forks: int | None = DEFAULT_FORKS,
    ) -> None:
        self.spec = spec
        self.forks = forks
        self.env = env
        self.inventory = inventory
        self.progress = progress
        self.records: dict[str, HostRecord | None] = {}
        self.locks: dict[str, dict[str, Any]] = {}
        """Host locks seen when the records were read (another run's, or a dead one's)."""
        self.on_host: dict[str, dict[str, Any]] = {}
        """What each host's servers run from: their `current` release and its files' sha256."""

    def origin(self) -> StateOrigin:
        from tfsconf.plan.state import StateOrigin

        return StateOrigin("live", str(self.spec), f"{len(self.env.hosts)} host(s)")

    def load(self) -> State:
        from tfsconf.plan.state import state_from_bundle

        self.locks = {}
        self.on_host = {}
        self.records = gather_records(
            self.env,
            self.inventory,
            progress=self.progress,
            locks=self.locks,
            on_host=self.on_host,
            forks=self.forks,
        )
        present = {h: rec for h, rec in self.records.items() if rec is not None}
        files = bundle_from_records(self.env.name, present)
        return state_from_bundle(files, self.origin(), "live state")


def check_state_unchanged(
    plan: Plan, env: r.Environment, records: Mapping[str, HostRecord | None]
) -> None:
    """The hosts' records, read again under the locks, must still be the state the plan
    was made from: a plan shown before a prompt may have been overtaken by another apply."""
    from tfsconf.plan.state import StateOrigin, state_from_bundle

    present = {h: rec for h, rec in records.items() if rec is not None}
    files = bundle_from_records(env.name, present)
    now = state_from_bundle(files, StateOrigin("live"), "live state")
    if now.fingerprint != plan.state_fingerprint:
        raise UserError(
            f"stale plan for {plan.environment}: the hosts changed since the plan was shown "
            f"(state fingerprint {plan.state_fingerprint[:12]}, now {now.fingerprint[:12]}); "
            "nothing was changed",
            hint="plan again and review the new plan",
        )
