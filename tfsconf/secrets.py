"""Secrets: where tfsconf takes them from, and keeping them out of everything it prints.

A secret is never written in a spec. The spec names an environment variable instead
(`source.auth.password_env`, `source.auth.delegation_env`); apply reads it on the machine
that runs it, hands it to Ansible as unsafe data, and the one task that uses it runs with
`no_log`. Nothing else ever holds the value: not the plan, the compiled files, the host
records or any message.

A URL that carries a secret itself (`user:password@`, `?delegation=...`) is refused, and
`mask` takes such secrets out of any text tfsconf prints (diagnostics, errors, Ansible
failures), so the refusal does not print what it refuses.
"""

from __future__ import annotations

import os
import re
import urllib.parse

from tfsconf.errors import UserError

MASK = "***"

SECRET_QUERY_PARAMETERS = frozenset(
    {
        "delegation",  # WebHDFS delegation token
        "token",
        "access_token",
        "id_token",
        "refresh_token",
        "auth",
        "password",
        "passwd",
        "pwd",
        "secret",
        "client_secret",
        "api_key",
        "apikey",
        "sig",  # Azure SAS
        "signature",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
    }
)

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s@?#'\"]*@")
_QUERY_SECRET = re.compile(
    r"(?P<name>[?&;](?:"
    + "|".join(re.escape(name) for name in sorted(SECRET_QUERY_PARAMETERS))
    + r")=)[^&#\s'\"]*",
    re.IGNORECASE,
)


def mask(text: str) -> str:
    """`text` with URL credentials and secret query values replaced by ***."""
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m['name']}{MASK}", text)
    return text


def url_secrets(url: str) -> list[str]:
    """What in a URL is a secret: "user:password@" and the names of secret query
    parameters (empty when the URL carries none)."""
    found = []
    scheme_end = url.find("://")
    authority = url[scheme_end + 3 :] if scheme_end >= 0 else url
    authority = re.split(r"[/?#]", authority, maxsplit=1)[0]
    if "@" in authority:
        found.append("user:password@")
    query = url.partition("?")[2].partition("#")[0]
    for pair in re.split(r"[&;]", query):
        name = urllib.parse.unquote_plus(pair.partition("=")[0]).lower()
        if name in SECRET_QUERY_PARAMETERS:
            found.append(f"{name}=")
    return found


def read_env_secret(name: str, what: str) -> str:
    """The value of environment variable `name` on this machine; a UserError (naming the
    variable, never a value) when it is missing, empty or not one line."""
    value = os.environ.get(name)
    if not value:
        raise UserError(
            f"{what}: environment variable {name} is not set on this machine (or is empty)",
            hint=f"export {name} before running tfsconf (see README: Credentials)",
        )
    if any(ch in value for ch in "\r\n\0"):
        raise UserError(f"{what}: environment variable {name} holds a line break or NUL")
    return value
