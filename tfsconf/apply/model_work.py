"""The model side of a host's work, computed on the machine that runs apply: the versions
a latest/all policy resolves to, the warmup files generated for new versions, the smoke
items that try them, and the sync entries handed to the hosts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tfsconf.apply.sources import SourceVersions
from tfsconf.contracts import ModelRecord, SmokeItem, Sync, SyncAuth
from tfsconf.errors import UserError
from tfsconf.resolve import model as r


class ModelWork:
    """Caches what is dear to compute (a source listing, a generated warmup file) across
    the hosts of one run."""

    def __init__(self, sources: SourceVersions, scratch: Path) -> None:
        self.sources = sources
        self.scratch = scratch
        self._versions: dict[str, list[int]] = {}
        self._warmups: dict[tuple[str, int], Path] = {}

    def resolve(self, model: r.Model) -> list[int]:
        """The versions a model's policy serves (latest/all: as its source offers now)."""
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

    def warmup(self, model: r.Model, version: int) -> Path | None:
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

    def auth(self, model: r.Model) -> SyncAuth | None:
        """How the host authenticates to the model's source: the secret is named (a key of
        `tfsconf_secrets`, handed to the rollout on its own), never included."""
        auth = model.source.auth
        if auth is None:
            return None
        self.sources.secret(model.source, f"model {model.name}: source.auth")
        return {"scheme": auth.scheme, "username": auth.username, "secret": auth.secret_env}

    def sync(self, model: r.Model, version: int, batching: str | None) -> Sync:
        warmup = self.warmup(model, version)
        return {
            "model": model.name,
            "base_path": model.base_path,
            "version": version,
            "source": {
                "kind": model.source.kind,
                "location": model.source.location,
                "checksums": model.source.checksums,
            },
            "auth": self.auth(model),
            "warmup": str(warmup) if warmup else None,
            "batching": batching,
            "bytes": self.sources.size(model.source, version),
        }

    def compat_smoke(self, model: r.Model, version: int, old_config: str | None) -> list[SmokeItem]:
        """Smoke items that send `version` the requests the versions it replaces serve now
        (their warmup): a new version that cannot answer what clients send today (a
        changed signature) fails its gate before it takes any traffic."""
        from tfsconf.apply.serving import expectations

        if old_config is None:
            return []
        old = expectations(old_config).get(model.name)
        out: list[SmokeItem] = []
        for previous in old or []:
            if previous == version:
                continue
            try:
                warmup = self.warmup(model, previous)
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

    def smoke(self, server: r.Server, syncs: list[Sync], old_config: str | None) -> list[SmokeItem]:
        """Each version synced for the server tried with its own warmup, then with the
        requests of the versions it replaces."""
        out: list[SmokeItem] = []
        for model in server.models:
            for item in syncs:
                if item["model"] == model.name and item["warmup"]:
                    out.append(
                        {"model": model.name, "version": item["version"], "warmup": item["warmup"]}
                    )
                    out.extend(self.compat_smoke(model, item["version"], old_config))
        return out


def models_of(host: r.Host) -> dict[str, r.Model]:
    """A host's models by name (servers of a host that share a model share its files)."""
    out: dict[str, r.Model] = {}
    for server in host.servers:
        for model in server.models:
            out.setdefault(model.name, model)
    return out


def resolved_of(models: Mapping[str, ModelRecord]) -> dict[str, list[int]]:
    """model -> versions, from a record's `models`."""
    return {name: list(info.get("versions", [])) for name, info in models.items()}
