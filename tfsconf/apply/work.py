"""What each host must do, from a Plan, the compiled bundle and the hosts' records.

The result is plain data (JSON-able) handed to the playbooks as `tfsconf_work`: the
playbooks decide nothing that Python can decide first, so what runs is what the plan said.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfsconf.apply.batching import per_model_files, placements
from tfsconf.apply.record import HostRecord, now, operator, release_id
from tfsconf.errors import UserError
from tfsconf.plan.model import HostPlan, Plan
from tfsconf.resolve import model as r
from tfsconf.secrets import read_env_secret

RECORD_KIND = "apply"
HTTP_VERSION_INDEX = ".tfsconf-versions.json"
"""What an http source under a latest/all policy serves at <url>/ to list its versions."""


@dataclass(frozen=True, slots=True)
class Options:
    health_timeout: float | None = None
    """Overrides the spec's rollout.health_timeout_seconds."""
    sync_retries: int = 3
    sync_bwlimit: int = 0
    """Bytes per second per model sync; 0 = unlimited."""
    http_timeout: float = 30.0


def host_files(bundle_files: Mapping[str, bytes], host: str) -> dict[str, bytes]:
    prefix = f"hosts/{host}/"
    return {p[len(prefix) :]: d for p, d in bundle_files.items() if p.startswith(prefix)}


TFSERVING_DEFAULT_GRPC_PORT = 8500
"""main.cc: --port defaults to 8500."""


def grpc_port_of(flags: str | None, server: str) -> int:
    """The gRPC port a server listens on, from its recorded server.flags (a revert and a
    rollback wait on it, so a missing record is an error, never port 0)."""
    if flags is None:
        raise UserError(
            f"server {server}: the host's record holds no server.flags, so the port to "
            "wait on is unknown"
        )
    match = re.search(r"^--port=(\d+)$", flags, re.MULTILINE)
    return int(match.group(1)) if match else TFSERVING_DEFAULT_GRPC_PORT


def reload_deadline_of(flags: str | None, load_allowance: float) -> float:
    """The reload deadline of a server, from the flags it runs with (serving.reload_deadline)."""
    from tfsconf.apply.serving import reload_deadline

    values = dict(re.findall(r"^--([a-z_]+)=(\d+)$", flags or "", re.MULTILINE))

    def number(name: str) -> int | None:
        return int(values[name]) if name in values else None

    return reload_deadline(
        file_system_poll_wait_seconds=number("file_system_poll_wait_seconds"),
        max_num_load_retries=number("max_num_load_retries"),
        load_retry_interval_micros=number("load_retry_interval_micros"),
        load_allowance=load_allowance,
    )


def config_poll_seconds_of(flags: str | None) -> int:
    """--model_config_file_poll_wait_seconds (0: reloads are RPCs sent by apply)."""
    match = re.search(r"^--model_config_file_poll_wait_seconds=(\d+)$", flags or "", re.MULTILINE)
    return int(match.group(1)) if match else 0


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends credentials to the origin they were meant for only
    (urllib would hand an Authorization header to any host a server redirects to)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme.lower(), parts.hostname, parts.port


class SourceVersions:
    """Versions a model source offers (for latest/all policies), and a version's
    saved_model.pb for warmup generation, read from the machine that runs apply.

    A source with `auth` gets its secret from the environment variable it names, read
    once here; `secrets` (variable name -> value) is what the rollout hands the hosts."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.secrets: dict[str, str] = {}
        self._opener = urllib.request.build_opener(_SameOriginAuth())

    def secret(self, source: r.Source, what: str) -> str | None:
        if source.auth is None:
            return None
        name = source.auth.secret_env
        if name not in self.secrets:
            self.secrets[name] = read_env_secret(name, what)
        return self.secrets[name]

    def _http_url(self, source: r.Source, suffix: str, op: str) -> str:
        if source.kind == "webhdfs":
            parsed = urllib.parse.urlsplit(source.location)
            path = parsed.path.rstrip("/") + suffix
            return f"http://{parsed.netloc}/webhdfs/v1{path}?op={op}"
        return source.location.rstrip("/") + suffix

    def _open(self, source: r.Source, url: str, what: str) -> Any:
        headers = {}
        secret = self.secret(source, what)
        if source.auth is not None and secret is not None:
            if source.auth.scheme == "delegation":
                url += "&delegation=" + urllib.parse.quote(secret, safe="")
            else:
                token = f"{source.auth.username or ''}:{secret}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 (http(s) only)
        return self._opener.open(request, timeout=self.timeout)

    def versions(self, source: r.Source) -> list[int]:
        if source.kind == "local":
            try:
                names = os.listdir(source.location)
            except OSError as exc:
                raise UserError(
                    f"cannot list the versions of {source.location}: {exc.strerror} (a local "
                    "source must be mounted on the machine running apply as well)"
                ) from exc
        elif source.kind == "webhdfs":
            url = self._http_url(source, "", "LISTSTATUS")
            with self._open(source, url, f"source {source.location}") as response:
                listing = json.loads(response.read())
            names = [s["pathSuffix"] for s in listing["FileStatuses"]["FileStatus"]]
        else:
            return self._http_index(source)
        return sorted(int(n) for n in names if n.isdigit())

    def _http_index(self, source: r.Source) -> list[int]:
        """An http source lists its versions in an index it serves beside them:
        `<url>/.tfsconf-versions.json` = {"versions": [positive integers]} (other keys are
        ignored), since plain HTTP has no directory listing."""
        url = source.location.rstrip("/") + "/" + HTTP_VERSION_INDEX
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
                document = json.loads(response.read(1 << 20))
        except (OSError, ValueError) as exc:
            raise UserError(
                f"cannot list the versions of {source.location}: {url}: {exc} (an http source "
                f'under a latest/all policy serves {HTTP_VERSION_INDEX}: {{"versions": [...]}})'
            ) from exc
        versions = document.get("versions") if isinstance(document, dict) else None
        if not isinstance(versions, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in versions
        ):
            raise UserError(f'{url}: expected {{"versions": [positive integers]}}')
        return sorted(set(versions))

    def saved_model_dir(self, source: r.Source, version: int, scratch: Path) -> Path:
        """A directory holding the version's saved_model.pb (the source's own for local)."""
        if source.kind == "local":
            return Path(source.location) / str(version)
        target = scratch / f"{abs(hash(source.location))}-{version}"
        target.mkdir(parents=True, exist_ok=True)
        url = self._http_url(source, f"/{version}/saved_model.pb", "OPEN")
        try:
            with (
                self._open(source, url, f"source {source.location}") as response,
                open(target / "saved_model.pb", "wb") as out,
            ):
                shutil.copyfileobj(response, out)
        except OSError as exc:
            raise UserError(f"cannot fetch saved_model.pb of version {version}: {exc}") from exc
        return target

    def size(self, source: r.Source, version: int) -> int:
        """Bytes of a version, when the source says without downloading it (else 0)."""
        if source.kind != "local":
            return 0
        root = Path(source.location) / str(version)
        total = 0
        for base, _dirs, names in os.walk(root):
            for name in names:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(base, name)).st_size
        return total


def _policy_expect(models_config: str, resolved: Mapping[str, list[int]]) -> dict[str, Any]:
    from tfsconf.apply.serving import expectations

    out: dict[str, Any] = {}
    for model, versions in expectations(models_config).items():
        out[model] = versions if versions is not None else resolved.get(model)
    return out


class WorkBuilder:
    def __init__(
        self,
        plan: Plan,
        env: r.Environment,
        bundle_files: Mapping[str, bytes],
        image_refs: Mapping[str, str],
        records: Mapping[str, HostRecord | None],
        options: Options,
        scratch: Path,
    ) -> None:
        self.plan = plan
        self.env = env
        self.files = bundle_files
        self.image_refs = image_refs
        self.records = records
        self.options = options
        self.scratch = scratch
        self.sources = SourceVersions(options.http_timeout)
        self._versions: dict[str, list[int]] = {}
        self._warmups: dict[tuple[str, int], Path] = {}

    def _host(self, name: str) -> r.Host:
        for host in self.env.hosts:
            if host.name == name:
                return host
        raise UserError(f"host {name} is not in the spec")

    def _group(self, name: str) -> r.Group:
        for group in self.env.groups:
            if group.name == name:
                return group
        raise UserError(f"group {name} is not in the spec")

    def _resolve(self, model: r.Model) -> list[int]:
        if model.policy.kind == "specific":
            return list(model.policy.versions)
        key = model.base_path
        if key not in self._versions:
            offered = self.sources.versions(model.source)
            if not offered:
                raise UserError(
                    f"model {model.name}: the source {model.source.location} has no versions"
                )
            self._versions[key] = (
                offered[-model.policy.num_versions :] if model.policy.kind == "latest" else offered
            )
        return self._versions[key]

    def _warmup(self, model: r.Model, version: int) -> Path | None:
        if model.warmup is None:
            return None
        key = (model.base_path, version)
        found = self._warmups.get(key)
        if found is not None:
            return found
        from tfsconf.warmup.generate import generate_warmup

        model_dir = self.sources.saved_model_dir(model.source, version, self.scratch / "models")
        out = self.scratch / "warmup" / f"{model.name}-{version}.tfrecord"
        out.parent.mkdir(parents=True, exist_ok=True)
        generate_warmup(
            model_dir,
            Path(model.warmup.samples),
            records=model.warmup.records,
            model_name=model.name,
            signature_name=model.signature_name,
            batch_sizes=model.warmup.batch_sizes,
            out=out,
            sample_format=model.warmup.format,
        )
        self._warmups[key] = out
        return out

    def _auth(self, model: r.Model) -> dict[str, Any] | None:
        """How the host authenticates to the model's source: the secret is named (a key of
        `tfsconf_secrets`, handed to the rollout on its own), never included."""
        auth = model.source.auth
        if auth is None:
            return None
        self.sources.secret(model.source, f"model {model.name}: source.auth")
        return {"scheme": auth.scheme, "username": auth.username, "secret": auth.secret_env}

    @property
    def secrets(self) -> dict[str, str]:
        """Environment variable name -> secret, of every source the built work syncs from."""
        return dict(self.sources.secrets)

    def _compat_smoke(
        self, model: r.Model, version: int, old_config: str | None
    ) -> list[dict[str, Any]]:
        """Smoke items that send `version` the requests the versions it replaces serve now
        (their warmup): a new version that cannot answer what clients send today (a
        changed signature) fails its gate before it takes any traffic."""
        from tfsconf.apply.serving import expectations

        if old_config is None:
            return []
        old = expectations(old_config).get(model.name)
        out = []
        for previous in old or []:
            if previous == version:
                continue
            try:
                warmup = self._warmup(model, previous)
            except (UserError, OSError):  # the source no longer has it: own warmup only
                continue
            if warmup is not None:
                out.append(
                    {
                        "model": model.name,
                        "version": version,
                        "warmup": str(warmup),
                        "requests_of": previous,
                    }
                )
        return out

    def build(self, hp: HostPlan) -> dict[str, Any]:
        host = self._host(hp.name)
        group = self._group(host.group)
        record = self.records.get(host.name)
        own = host_files(self.files, host.name)
        images = {s.image: self.image_refs[s.image] for s in host.servers if s.runtime == "docker"}
        release = release_id(own, images)
        previous_release = record.release if record else None
        previous_servers = (
            set(record.data.get("manifest", {}).get("servers", [])) if record else set()
        )
        previous_files = record.files if record else {}
        previous_models = (record.data.get("models") or {}) if record else {}
        previous_resolved = {m: list(v.get("versions", [])) for m, v in previous_models.items()}
        desired = {s.name: s for s in host.servers}

        stage: dict[str, dict[str, str]] = {}
        for server in host.servers:
            prefix = f"{server.name}/"
            stage[server.name] = {
                p[len(prefix) :]: d.decode() for p, d in own.items() if p.startswith(prefix)
            }
        removed = sorted(previous_servers - set(desired))
        targets: dict[str, str | None] = {name: release for name in desired}
        targets.update(dict.fromkeys(removed))
        rollback_targets: dict[str, str | None] = {
            name: (previous_release if name in previous_servers else None)
            for name in [*desired, *removed]
        }

        # model syncs: each (base path, version) once per host
        models_by_name: dict[str, r.Model] = {}
        for server in host.servers:
            for model in server.models:
                models_by_name.setdefault(model.name, model)
        syncs: list[dict[str, Any]] = []
        synced: dict[str, list[int]] = {}
        batching_files = per_model_files(own)
        for action in hp.actions:
            if action.kind != "sync" or action.model is None:
                continue
            model = models_by_name[action.model]
            versions = [action.version] if action.version is not None else self._resolve(model)
            for version in versions:
                warmup = self._warmup(model, version)
                synced.setdefault(model.name, []).append(version)
                syncs.append(
                    {
                        "model": model.name,
                        "base_path": model.base_path,
                        "version": version,
                        "source": {
                            "kind": model.source.kind,
                            "location": model.source.location,
                            "checksums": model.source.checksums,
                        },
                        "auth": self._auth(model),
                        "warmup": str(warmup) if warmup else None,
                        "batching": batching_files.get(model.name),
                        "bytes": self.sources.size(model.source, version),
                    }
                )
        resolved = {name: self._resolve(m) for name, m in models_by_name.items()}
        models_record = {
            name: {"base_path": m.base_path, "versions": resolved[name]}
            for name, m in sorted(models_by_name.items())
        }
        published_now = {(str(s["base_path"]), int(s["version"])) for s in syncs}

        activations: list[dict[str, Any]] = []
        planned = {sp.name: sp for sp in hp.servers}
        timeout = self.options.health_timeout or group.rollout.health_timeout_seconds
        # removed servers first: their ports and GPU memory may go to a new server
        for name in [*removed, *desired]:
            sp = planned.get(name)
            srv = desired.get(name)
            touches_models = srv is not None and any(m.name in synced for m in srv.models)
            if sp is None and not touches_models:
                continue
            kind = (sp.activation if sp is not None else None) or "none"
            if kind == "none" and not touches_models:
                continue
            old_config = previous_files.get(f"{name}/models.config")
            previous = {
                "release": previous_release if name in previous_servers else None,
                "models_config": old_config,
                "expect": _policy_expect(old_config, previous_resolved) if old_config else {},
            }
            if srv is None:  # removed: its old port, for a revert
                port = grpc_port_of(previous_files.get(f"{name}/server.flags"), name)
                activations.append(
                    {
                        "server": name,
                        "kind": "remove",
                        "address": host.address,
                        "grpc_port": port,
                        "reload_deadline": reload_deadline_of(
                            previous_files.get(f"{name}/server.flags"), timeout
                        ),
                        "config_poll_seconds": config_poll_seconds_of(
                            previous_files.get(f"{name}/server.flags")
                        ),
                        "unit": f"tfserving-{name}.service",
                        "phases": [],
                        "expect": {},
                        "smoke": [],
                        "previous": previous,
                    }
                )
                continue
            final = stage[name]["models.config"]
            phases: list[dict[str, Any]] = []
            if kind == "hot-reload":
                if sp is not None and sp.phases:
                    for phase in sp.phases:
                        expect: dict[str, list[int]] = {}
                        for model_name, version in phase.wait_for:
                            expect.setdefault(model_name, []).append(version)
                        phases.append({"models_config": phase.models_config, "expect": expect})
                else:
                    phases.append({"models_config": final, "expect": {}})
            smoke = []
            for model in srv.models:
                for item in syncs:
                    if item["model"] == model.name and item["warmup"]:
                        smoke.append(
                            {
                                "model": model.name,
                                "version": item["version"],
                                "warmup": item["warmup"],
                            }
                        )
                        smoke.extend(self._compat_smoke(model, item["version"], old_config))
            # the smoke gate: each new version is tried by number as soon as it is AVAILABLE
            # and before the next phase moves traffic to it (a label, an unload)
            for pushed in phases:
                waits: dict[str, list[int]] = pushed["expect"]
                pushed["smoke"] = [
                    item for item in smoke if item["version"] in waits.get(item["model"], [])
                ]
            gated = {(i["model"], i["version"]) for ph in phases for i in ph["smoke"]}
            smoke = [i for i in smoke if (i["model"], i["version"]) not in gated]
            activations.append(
                {
                    "server": name,
                    "kind": kind,
                    "address": host.address,
                    "grpc_port": srv.grpc_port,
                    "reload_deadline": reload_deadline_of(stage[name].get("server.flags"), timeout),
                    "config_poll_seconds": config_poll_seconds_of(stage[name].get("server.flags")),
                    "unit": f"tfserving-{name}.service",
                    "phases": phases,
                    "expect": _policy_expect(final, resolved),
                    "smoke": smoke,
                    "previous": previous,
                }
            )

        record_doc = {
            "schema_version": 1,
            "generator": "tfsconf",
            "environment": self.env.name,
            "host": host.name,
            "release": release,
            "spec_sha256": self.env.spec_sha256,
            "applied_at": now(),
            "operator": operator(),
            "manifest": {
                "address": host.address,
                "group": host.group,
                "runtime": host.runtime,
                "servers": [s.name for s in host.servers],
                "server_images": {s.name: s.image for s in host.servers if s.runtime == "docker"},
            },
            "images": images,
            "image_files": {
                name: self.files[f"images/{name}/Dockerfile"].decode() for name in images
            },
            "files": {rel: data.decode() for rel, data in sorted(own.items())},
            "models": models_record,
        }
        env_images = {i.name: i for i in self.env.images}
        return {
            "kind": RECORD_KIND,
            "release": release,
            "config_root": self.env.config_root,
            "model_root": self.env.model_root,
            "runtime": host.runtime,
            "base_paths": sorted({m.base_path for m in models_by_name.values()}),
            "need_bytes": sum(int(s["bytes"]) for s in syncs),
            "gpus": sorted({s.gpu for s in host.servers if s.gpu is not None}),
            # native/process runtimes run the host's own binary and allocator: preflight
            # checks both (in an image the Dockerfile checks them at build time)
            "preload": sorted(
                {
                    lib
                    for s in host.servers
                    if s.runtime != "docker" and (lib := self.env.image(s.image).allocator_library)
                }
            ),
            "tfserving_version": self.env.tfserving_version,
            "stage": stage,
            "targets": targets,
            "rollback_targets": rollback_targets,
            "removed_servers": removed,
            "syncs": syncs,
            "sync": {"retries": self.options.sync_retries, "bwlimit": self.options.sync_bwlimit},
            "batching": placements(
                own, models_record, previous_files, previous_models, published_now
            ),
            "batching_revert": placements(previous_files, previous_models, own, models_record),
            "images": [
                {
                    "name": name,
                    "ref": ref,
                    "registry": bool(env_images[name].registry),
                    "dockerfile": self.files[f"images/{name}/Dockerfile"].decode(),
                }
                for name, ref in sorted(images.items())
            ],
            "activations": activations,
            "record": record_doc,
            "keep_releases": group.rollout.keep_releases,
            "timeout": timeout,
        }


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tfsconf-apply-"))
