"""Strict value types for everything that reaches a Dockerfile, unit, command line or path.

Each type is an allow-list: a value either matches a narrow pattern or is rejected with a
message saying what is allowed. Nothing is escaped or rewritten, so a value that passes is
safe to place in a shell word, a systemd ExecStart line or a file name as it is.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema


def _matcher(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


_SEGMENT = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*")


def _check_absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path (start with /)")
    if value != "/" and value.endswith("/"):
        raise ValueError("must not end with /")
    parts = value.split("/")[1:]
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError("must not contain empty, '.' or '..' segments")
        if not _SEGMENT.fullmatch(part):
            raise ValueError(
                "must use only letters, digits and . _ @ + - in path segments "
                "(no spaces, quotes or shell characters)"
            )
    return value


def _check_relative_path(value: str) -> str:
    if value.startswith("/"):
        raise ValueError("must be a relative path")
    for part in value.split("/"):
        if part in ("", ".", ".."):
            raise ValueError("must not contain empty, '.' or '..' segments (no climbing out)")
        if not _SEGMENT.fullmatch(part):
            raise ValueError("must use only letters, digits and . _ @ + - in path segments")
    return value


def _check_address(value: str) -> str:
    """An IP address or an RFC 1123 host name, nothing else: the address reaches the
    Ansible inventory, ssh command lines and gRPC targets as it is."""
    if "%" in value:
        # an IPv6 link-local address with a zone: the zone is an interface name or index
        # (Linux IFNAMSIZ: at most 15 characters); ipaddress alone accepts any zone text
        address, _, zone = value.partition("%")
        if not _ZONE.fullmatch(zone):
            raise ValueError(
                f"{_ADDRESS}; the IPv6 zone id after '%' must be an interface name: "
                "1 to 15 letters, digits, '_', '.' or '-'"
            )
        try:
            ipaddress.IPv6Address(address)
        except ValueError:
            raise ValueError(f"{_ADDRESS}; a zone id after '%' is for IPv6 only") from None
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        pass
    else:
        return value
    if len(value) > 253 or not _HOSTNAME.fullmatch(value):
        raise ValueError(_ADDRESS)
    last = value.rsplit(".", 1)[-1]
    if last.isdigit() or re.fullmatch(r"0[xX][0-9A-Fa-f]*", last):
        # RFC 1123 2.1: a host name never looks like a number; inet_aton would read
        # "010.1.1.1" or "0x7f.1" as some other IPv4 address
        raise ValueError(
            f"{_ADDRESS}; a host name's last label is not numeric, and an IPv4 address has "
            "four decimal parts without leading zeros"
        )
    return value


_ADDRESS = "must be an IP address or a DNS host name (RFC 1123)"
_HOSTNAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")

Name = Annotated[
    str,
    _matcher(
        r"[A-Za-z][A-Za-z0-9_-]{0,62}",
        "a name: a letter, then letters, digits, '_' or '-' (at most 63 characters)",
    ),
]
HostName = Annotated[
    str,
    _matcher(
        r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}",
        "a host name: letters, digits, '_' or '-' (at most 63 characters)",
    ),
]
LabelName = Annotated[
    str, _matcher(r"[a-zA-Z0-9_]+", "a version label matching [a-zA-Z0-9_]+ (TF Serving's rule)")
]
AbsolutePath = Annotated[str, AfterValidator(_check_absolute_path)]
RelativePath = Annotated[str, AfterValidator(_check_relative_path)]
Address = Annotated[str, AfterValidator(_check_address)]
ImageRepository = Annotated[
    str,
    _matcher(
        r"([a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*"
        r"(/[a-z0-9]+([._-][a-z0-9]+)*)*",
        "an image repository such as registry.example.com:5000/ml/tfserving (lower case)",
    ),
]
ImageReference = Annotated[
    str,
    _matcher(
        r"([a-z0-9]+([._-][a-z0-9]+)*(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+)*"
        r"(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
        r"(@sha256:[a-f0-9]{64})?",
        "an image reference such as tensorflow/serving:2.18.0-gpu (repository[:tag][@digest])",
    ),
]
ImageTag = Annotated[
    str,
    _matcher(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "an image tag: letters, digits, _ . -"),
]
AptPackage = Annotated[
    str,
    _matcher(
        r"[a-z0-9][a-z0-9+.-]+=[A-Za-z0-9.+~:-]+",
        "a pinned Debian/Ubuntu package, name=version (e.g. curl=7.81.0-1ubuntu1.20)",
    ),
]
EnvValue = Annotated[
    str,
    _matcher(
        r"[A-Za-z0-9_:,./=+-]{1,512}",
        "letters, digits and _ : , . / = + - only (no spaces, quotes or shell characters)",
    ),
]
_URL = re.compile(
    r"(https?|webhdfs|swebhdfs)://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~%/+-]*)?"
    r"(\?[A-Za-z0-9._~%=&+-]*)?"
)


def _check_url(value: str) -> str:
    from tfsconf.secrets import url_secrets

    carried = url_secrets(value)
    if carried:
        # the diagnostic shows the value masked (tfsconf.secrets.mask)
        raise ValueError(
            f"must not carry a secret ({', '.join(carried)}): name an environment variable "
            "holding it in source.auth instead (README: Credentials)"
        )
    if not _URL.fullmatch(value):
        raise ValueError("must be an http(s):// or (s)webhdfs:// URL without spaces or quotes")
    return value


Url = Annotated[str, AfterValidator(_check_url)]
EnvName = Annotated[
    str,
    _matcher(
        r"[A-Za-z_][A-Za-z0-9_]{0,127}",
        "the name of an environment variable: letters, digits and '_', not starting with a digit",
    ),
]
UserName = Annotated[
    str,
    _matcher(r"[A-Za-z0-9_][A-Za-z0-9._@+-]{0,127}", "a user name: letters, digits and . _ @ + -"),
]
GrpcChannelArgument = Annotated[
    str,
    _matcher(
        r"[a-z][a-z0-9_.]*=[A-Za-z0-9_.:-]+",
        "key=value (e.g. grpc.max_concurrent_streams=1000); an entry without '=' crashes "
        "TF Serving",
    ),
]
TfServingVersion = Annotated[
    str, _matcher(r"[0-9]+\.[0-9]+\.[0-9]+", 'a TF Serving release like "2.18.0" (quoted)')
]
Identifier = Annotated[
    str, _matcher(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "an identifier: letters, digits and '_'")
]
UrlPath = Annotated[
    str,
    _matcher(r"/[A-Za-z0-9_/.-]{0,255}", "an HTTP path starting with / (letters, digits, _ / . -)"),
]


def _check_samples_path(value: str) -> str:
    return _check_absolute_path(value) if value.startswith("/") else _check_relative_path(value)


def _check_step(value: object) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise ValueError("must be at least 1 host")
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}%", value):
        if not 1 <= int(value[:-1]) <= 100:
            raise ValueError("must be a percentage between 1% and 100%")
        return value
    raise ValueError('must be a host count (2) or a percentage ("25%")')


SamplesPath = Annotated[str, AfterValidator(_check_samples_path)]
RolloutStep = Annotated[
    object,
    AfterValidator(_check_step),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^[0-9]{1,3}%$"},
            ]
        }
    ),
]
