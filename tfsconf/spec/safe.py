"""Strict value types for everything that reaches a Dockerfile, unit, command line or path.

Each type is an allow-list: a value either matches a narrow pattern or is rejected with a
message saying what is allowed. Nothing is escaped or rewritten, so a value that passes is
safe to place in a shell word, a systemd ExecStart line or a file name as it is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler, WithJsonSchema
from pydantic_core import CoreSchema, core_schema


@dataclass(frozen=True, slots=True)
class _JsonPattern:
    """Says a check in the JSON Schema editors read (tfsconf schema): the value must match
    `pattern` whole. `message` is what yaml-language-server shows instead of the regex."""

    pattern: str
    message: str

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema = handler(schema)
        json_schema["pattern"] = f"^(?:{self.pattern})$"
        json_schema["patternErrorMessage"] = self.message
        return json_schema


@dataclass(frozen=True, slots=True)
class _Matches(_JsonPattern):
    """A string that must match `pattern` whole: checked here, and said in the schema."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        compiled = re.compile(self.pattern)

        def check(value: str) -> str:
            if not compiled.fullmatch(value):
                raise ValueError(self.message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))


def _matcher(pattern: str, what: str) -> _Matches:
    return _Matches(pattern, f"must be {what}")


_SEGMENT = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*")
# The same rules as one regex each, for the JSON Schema: a segment cannot start with '.',
# so '.' and '..' never match, and empty segments or a trailing / do not either.
_SEGMENTS = rf"{_SEGMENT.pattern}(?:/{_SEGMENT.pattern})*"
_ABSOLUTE_PATH = _JsonPattern(
    f"/{_SEGMENTS}",
    "must be an absolute path: /, then segments of letters, digits and . _ @ + - "
    "(no '.', '..' or empty segment, no trailing /)",
)
_RELATIVE_PATH = _JsonPattern(
    _SEGMENTS,
    "must be a relative path: segments of letters, digits and . _ @ + - "
    "(no '.', '..' or empty segment)",
)


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


def _address_pattern() -> _JsonPattern:
    """_check_address as one regex: IPv4 (four decimal parts, no leading zeros), IPv6 in
    RFC 3986's grammar with an optional zone, or a host name whose last label is not
    numeric. tests/spec/test_json_schema.py checks it against _check_address."""
    octet = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
    ipv4 = rf"{octet}(?:\.{octet}){{3}}"
    h16 = "[0-9A-Fa-f]{1,4}"
    ls32 = f"(?:{h16}:{h16}|{ipv4})"
    ipv6 = "|".join(
        [
            f"(?:{h16}:){{6}}{ls32}",
            f"::(?:{h16}:){{5}}{ls32}",
            f"(?:{h16})?::(?:{h16}:){{4}}{ls32}",
            f"(?:(?:{h16}:){{0,1}}{h16})?::(?:{h16}:){{3}}{ls32}",
            f"(?:(?:{h16}:){{0,2}}{h16})?::(?:{h16}:){{2}}{ls32}",
            f"(?:(?:{h16}:){{0,3}}{h16})?::{h16}:{ls32}",
            f"(?:(?:{h16}:){{0,4}}{h16})?::{ls32}",
            f"(?:(?:{h16}:){{0,5}}{h16})?::{h16}",
            f"(?:(?:{h16}:){{0,6}}{h16})?::",
        ]
    )
    label = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    numeric_last = "(?:[0-9]+|0[xX][0-9A-Fa-f]*)$"
    hostname = rf"(?![\s\S]{{254}})(?:{label}\.)*(?!{numeric_last}){label}"
    return _JsonPattern(f"{ipv4}|(?:{ipv6})(?:%{_ZONE.pattern})?|{hostname}", _ADDRESS)


_ADDRESS_PATTERN = _address_pattern()

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
AbsolutePath = Annotated[str, AfterValidator(_check_absolute_path), _ABSOLUTE_PATH]
RelativePath = Annotated[str, AfterValidator(_check_relative_path), _RELATIVE_PATH]
Address = Annotated[str, AfterValidator(_check_address), _ADDRESS_PATTERN]
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


@dataclass(frozen=True, slots=True)
class _JsonSchemaBuiltBy:
    """A JSON Schema built only when the schema is asked for (not at every import)."""

    build: Callable[[], dict[str, Any]]

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return self.build()


def _url_schema() -> dict[str, Any]:
    """_check_url for the JSON Schema: the URL pattern, and no secret query parameter (its
    name case-insensitive or percent-encoded, as url_secrets decodes it). A user:password@
    cannot match the pattern: '@' is in none of its parts."""
    from tfsconf.secrets import SECRET_QUERY_PARAMETERS

    def spelled(name: str) -> str:
        assert re.fullmatch("[a-z0-9_-]+", name), name  # nothing a regex must escape

        def char(ch: str) -> str:
            cases = {ch.lower(), ch.upper()}
            encoded = {f"%{ord(c):02{x}}" for c in cases for x in "xX"}
            return "(?:" + "|".join(sorted(cases) + sorted(encoded)) + ")"

        return "".join(char(ch) for ch in name)

    names = "|".join(spelled(name) for name in sorted(SECRET_QUERY_PARAMETERS))
    return {
        "type": "string",
        "pattern": f"^(?:{_URL.pattern})$",
        "patternErrorMessage": "must be an http(s):// or (s)webhdfs:// URL without spaces "
        "or quotes, and without a secret (name an environment variable in source.auth)",
        "not": {"pattern": rf"^[^?]*\?(?:[^&]*&)*(?:{names})(?:=|&|$)"},
    }


Url = Annotated[str, AfterValidator(_check_url), _JsonSchemaBuiltBy(_url_schema)]
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


SamplesPath = Annotated[
    str,
    AfterValidator(_check_samples_path),
    _JsonPattern(
        f"/?{_SEGMENTS}",
        "must be a path of segments of letters, digits and . _ @ + - "
        "(no '.', '..' or empty segment)",
    ),
]
RolloutStep = Annotated[
    object,
    AfterValidator(_check_step),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1},
                {"type": "string", "pattern": "^(?:0{0,2}[1-9]|0?[1-9][0-9]|100)%$"},
            ]
        }
    ),
]
