"""Model sources as seen from the machine that runs apply: the versions a source offers
(for latest/all policies), a version's size and its saved_model.pb (for warmup
generation). The hosts fetch the versions themselves (tfsconf_model_sync)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tfsconf.errors import UserError
from tfsconf.resolve import model as r
from tfsconf.secrets import read_env_secret

HTTP_VERSION_INDEX = ".tfsconf-versions.json"
"""What an http source under a latest/all policy serves at <url>/ to list its versions."""


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
