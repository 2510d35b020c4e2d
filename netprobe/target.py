"""The target grammar: parse a string once, validate it before any I/O, keep credentials secret.

Accepted forms (public API, see docs/targets.md):

* ``host:port``, ``ipv4:port``, ``[v6addr]:port``: a well-known port selects its protocol
  (80 http, 443 https, 3306 mysql, 5432 postgresql, 6379 redis); any other port is plain TCP.
* URLs ``http://`` and ``https://``.
* DSNs ``mysql://``, ``mariadb://``, ``postgresql://``, ``postgres://``, ``redis://``, ``rediss://``.
* ``tcp://host:port`` and ``tls://host:port``.
* ``grpc://host:port[/package.Service]`` and ``grpcs://...``: the gRPC health check
  (``grpc.health.v1.Health/Check``) of that service, or of the whole server without one.

Every problem raises :class:`InvalidTarget` (a ``ValueError``) whose message names it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote

import idna
from pydantic import Field, SecretStr, computed_field, field_serializer

from ._errors import InvalidTarget
from ._frozen import Frozen, FrozenMap
from .protocols.postgres import SSLMODES

__all__ = [
    "WELL_KNOWN_PORTS",
    "Protocol",
    "Scheme",
    "Target",
    "is_secret_param",
    "parse_target",
    "redact_query",
]

Scheme = Literal[
    "tcp",
    "tls",
    "http",
    "https",
    "mysql",
    "mariadb",
    "postgresql",
    "postgres",
    "redis",
    "rediss",
    "grpc",
    "grpcs",
]
Protocol = Literal["tcp", "http", "mysql", "postgresql", "redis", "grpc"]

_SCHEMES: dict[str, tuple[Protocol, bool, int | None]] = {
    # scheme: (application protocol, TLS from the first byte, default port)
    "tcp": ("tcp", False, None),
    "tls": ("tcp", True, None),
    "http": ("http", False, 80),
    "https": ("http", True, 443),
    "mysql": ("mysql", False, 3306),
    "mariadb": ("mysql", False, 3306),
    "postgresql": ("postgresql", False, 5432),
    "postgres": ("postgresql", False, 5432),
    "redis": ("redis", False, 6379),
    "rediss": ("redis", True, 6379),
    # gRPC has no well-known port (50051 is only the examples' habit): a port is required.
    "grpc": ("grpc", False, None),
    "grpcs": ("grpc", True, None),
}

#: A bare ``host:port`` with one of these ports is probed with that scheme.
WELL_KNOWN_PORTS: dict[int, Scheme] = {
    80: "http",
    443: "https",
    3306: "mysql",
    5432: "postgresql",
    6379: "redis",
}

_DSN_SCHEMES = frozenset({"mysql", "mariadb", "postgresql", "postgres", "redis", "rediss"})
_PG_SSLMODES = SSLMODES  # libpq's sslmode values: a typo is bad input, not "prefer"
_URL_SCHEMES = frozenset({"http", "https"})
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_SCHEME_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?$")
#: A protobuf full name (package.Service): identifiers joined by dots.
_GRPC_SERVICE_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_GRPC_SERVICE_MAX = 255
_SECRET_PARAMS = frozenset({"password", "passwd", "pass"})
# Query parameters whose value is shown as ``***``: a URL such as
# ``https://api/health?access_token=...`` or a presigned ``?X-Amz-Signature=...`` carries a
# credential as surely as ``user:password@`` does.
_SECRET_PARAM_NAMES = frozenset({"pass", "pwd", "key", "sig", "auth", "authorization", "code"})
_SECRET_PARAM_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "signature",
    "credential",
    "session",
)


def is_secret_param(name: str) -> bool:
    """Whether a query parameter's value is a credential (``token``, ``api_key``, ``sig``...).

    Args:
        name: the parameter name as written (case and ``-``/``_`` do not matter).

    Returns:
        True when the value must be shown as ``***``.
    """
    key = name.lower().replace("-", "_")
    return key in _SECRET_PARAM_NAMES or any(part in key for part in _SECRET_PARAM_PARTS)


def redact_query(text: str) -> str:
    """Replace the value of every secret-looking query parameter of a URL or path with ``***``.

    Args:
        text: a URL, or a path with its query (``/health?token=abc`` → ``/health?token=***``).

    Returns:
        The same text with only those values replaced; the rest is untouched.
    """
    head, sep, rest = text.partition("?")
    if not sep:
        return text
    query, hash_sep, fragment = rest.partition("#")
    items = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if eq and value and is_secret_param(unquote(key)):
            item = f"{key}=***"
        items.append(item)
    return f"{head}?{'&'.join(items)}{hash_sep}{fragment}"


class Target(Frozen):
    """A parsed, validated target. ``str()`` and the JSON form never show a password."""

    scheme: Scheme = Field(
        description="The scheme as written (lower-cased), or the one implied by the port."
    )
    protocol: Protocol = Field(description="The application protocol probed after TCP (and TLS).")
    tls: bool = Field(description="Whether TLS starts right after the TCP handshake.")
    host: str = Field(
        description="ASCII host name (IDNA-encoded) or IP address, IPv6 without brackets."
    )
    port: int
    is_ip: bool = Field(description="True when the host is an IP literal (no DNS lookup).")
    path: str = Field(
        "",
        description="HTTP path and query, the database name/number of a DSN, or the gRPC "
        "service whose health is checked (empty: the server's overall health).",
    )
    username: str | None = None
    password: SecretStr | None = Field(default=None, exclude=True, repr=False)
    params: FrozenMap[str, str] = Field(
        default_factory=FrozenMap, description="DSN query parameters."
    )

    @field_serializer("path")
    def _redacted_path(self, path: str) -> str:
        return redact_query(path)

    @field_serializer("params")
    def _redacted_params(self, params: Mapping[str, str]) -> dict[str, str]:
        return {k: "***" if is_secret_param(k) else v for k, v in params.items()}

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "path" and isinstance(value, str):
                value = redact_query(value)
            elif name == "params" and isinstance(value, Mapping):
                value = {k: "***" if is_secret_param(k) else v for k, v in value.items()}
            yield name, value

    @property
    def netloc(self) -> str:
        """``host:port``, the host in brackets when it is an IPv6 address."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def url(self) -> str:
        """The target as a URL, with any password replaced by ``***``."""
        return self._url(redact=True)

    def url_with_secret(self) -> str:
        """The target as a URL including the password: for drivers only, never for output."""
        return self._url(redact=False)

    def _url(self, *, redact: bool) -> str:
        auth = ""
        if self.username is not None or self.password is not None:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                secret = "***" if redact else quote(self.password.get_secret_value(), safe="")
                auth += f":{secret}"
            auth += "@"
        path = redact_query(self.path) if redact else self.path
        if self.protocol != "http" and path:
            # A DSN's database name was percent-decoded: encode it again, so that the URL
            # a report prints parses back to the same target.
            path = quote(path, safe="")
        if path and not path.startswith("/"):
            path = "/" + path
        query = ""
        if self.params:
            query = "?" + "&".join(
                f"{quote(k, safe='')}="
                + ("***" if redact and is_secret_param(k) else quote(v, safe=""))
                for k, v in self.params.items()
            )
        return f"{self.scheme}://{auth}{self.netloc}{path}{query}"

    def __str__(self) -> str:
        return self.url


def parse_target(text: str | Target) -> Target:
    """Parse and validate a target string, before any I/O.

    Raises:
        InvalidTarget: the text is not a target; the message names the problem.
    """
    if isinstance(text, Target):
        return text
    if not isinstance(text, str):
        raise InvalidTarget(f"a target must be a string, not {type(text).__name__}")
    if not text:
        raise InvalidTarget("empty target")
    cached = _PARSED.get(text)
    if cached is not None:
        return cached
    shown, hidden = _redact_for_message(text)
    try:
        target = _parse(text, shown)
    except InvalidTarget as exc:
        # Outside the redacted input, the message may quote what the parser cut a password
        # into (a port, a host): hide those pieces too.
        message = shown.join(_scrub(part, hidden) for part in str(exc).split(shown))
        cut = any(c in secret for secret in hidden for c in "/?#@")
        if message == str(exc) and (not cut or "percent-encoded" in message):
            raise
        raise InvalidTarget(
            f"{message} (a password containing '/', '?', '#' or '@' must be percent-encoded)"
        ) from None
    # A monitor diagnoses the same few targets again and again: keep the parse (a frozen
    # model; ~20 us). Never a text that may hold a secret (userinfo, a query).
    if "@" not in text and "?" not in text:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[text] = target
    return target


#: Parsed targets by their text (none holding a secret), bounded.
_PARSED: dict[str, Target] = {}
_PARSED_MAX = 256


def _parse(text: str, shown: str) -> Target:
    for ch in text:
        if ch.isspace():
            raise InvalidTarget(f"target {shown!r} contains whitespace")
        if not ch.isprintable():
            raise InvalidTarget(f"target {shown!r} contains a control character")

    if "://" in text:
        scheme_text, rest = text.split("://", 1)
        scheme = scheme_text.lower()
        if not scheme:
            raise InvalidTarget(f"missing scheme before '://' in {shown!r}")
        if scheme not in _SCHEMES:
            known = ", ".join(sorted(_SCHEMES))
            raise InvalidTarget(f"unknown scheme {scheme_text!r} in {shown!r} (known: {known})")
        return _parse_url(scheme, rest, shown)  # type: ignore[arg-type]

    m = _SCHEME_RE.match(text)
    if m and m.group(1).lower() in _SCHEMES and text[m.end() :][:1] in ("/", ""):
        raise InvalidTarget(f"malformed URL {shown!r}: expected '{m.group(1).lower()}://'")
    return _parse_bare(text, shown)


def _parse_bare(text: str, shown: str) -> Target:
    bracketed = text.startswith("[")
    if bracketed:
        host, port_text = _split_bracketed(text, shown)
    else:
        if text.count(":") > 1:
            raise InvalidTarget(f"IPv6 address in {shown!r} must be in brackets, e.g. '[::1]:5432'")
        host, sep, port_text = text.partition(":")
        if not sep:
            raise InvalidTarget(
                f"missing port in {shown!r} (give host:port, or a URL such as https://{text})"
            )
    if port_text is None:
        raise InvalidTarget(f"missing port in {shown!r} (give host:port)")
    port = _parse_port(port_text, shown, bare=True)
    host_ascii, is_ip = _validate_host(host, shown, bracketed=bracketed)
    scheme = WELL_KNOWN_PORTS.get(port, "tcp")
    protocol, tls, _ = _SCHEMES[scheme]
    return Target(
        scheme=scheme,
        protocol=protocol,
        tls=tls,
        host=host_ascii,
        port=port,
        is_ip=is_ip,
        path="/" if protocol == "http" else "",
    )


def _parse_url(scheme: Scheme, rest: str, shown: str) -> Target:
    protocol, tls, default_port = _SCHEMES[scheme]
    authority, tail = _split_authority(rest)
    tail, _, fragment = tail.partition("#")
    path, _, query = tail.partition("?")
    if scheme in _DSN_SCHEMES and (_stray_at(path, query) or "@" in fragment):
        raise InvalidTarget(
            f"unencoded '@' after the host in {shown!r} (a user name or password containing "
            "'/' or '?' must be percent-encoded; '@' in a database name is %40)"
        )

    username: str | None = None
    password: SecretStr | None = None
    if "@" in authority:
        userinfo, _, authority = authority.rpartition("@")
        if scheme not in _DSN_SCHEMES and scheme not in _URL_SCHEMES:
            raise InvalidTarget(f"credentials are not used by {scheme}:// targets, in {shown!r}")
        user, has_pw, pw = userinfo.partition(":")
        username = _decoded(unquote(user), "user name", shown) or None
        if has_pw:
            password = SecretStr(unquote(pw))

    bracketed = authority.startswith("[")
    if bracketed:
        host, port_text = _split_bracketed(authority, shown)
    else:
        if authority.count(":") > 1:
            raise InvalidTarget(
                f"IPv6 address in {shown!r} must be in brackets, e.g. '{scheme}://[::1]:5432'"
            )
        host, sep, port_text_ = authority.partition(":")
        port_text = port_text_ if sep else None
    if not host:
        raise InvalidTarget(f"empty host in {shown!r}")
    if port_text is None:
        if protocol == "grpc":
            raise InvalidTarget(
                f"missing port in {shown!r} (gRPC has no well-known port: give "
                f"{scheme}://host:port)"
            )
        if default_port is None:
            raise InvalidTarget(
                f"missing port in {shown!r} ({scheme}:// targets need an explicit port)"
            )
        port = default_port
    else:
        port = _parse_port(port_text, shown, bare=False)
    host_ascii, is_ip = _validate_host(host, shown, bracketed=bracketed)

    params: dict[str, str] = {}
    if query:
        if scheme in _DSN_SCHEMES:
            try:
                pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
            except ValueError:
                raise InvalidTarget(f"malformed query string in {shown!r}") from None
            for key, value in pairs:
                if key.lower() in _SECRET_PARAMS:
                    password = SecretStr(value)
                else:
                    _decoded(key + value, f"parameter {key!r}", shown)
                    params[key] = value
        elif scheme not in _URL_SCHEMES:
            raise InvalidTarget(f"junk after the port in {shown!r}: {scheme}:// takes no query")

    if protocol == "postgresql" and params.get("sslmode", "prefer") not in _PG_SSLMODES:
        raise InvalidTarget(
            f"sslmode {params['sslmode']!r} in {shown!r} is not one of {', '.join(_PG_SSLMODES)}"
        )
    if protocol == "http":
        path = (path or "/") + (f"?{query}" if query else "")
    elif scheme in ("tcp", "tls"):
        if path not in ("", "/"):
            raise InvalidTarget(f"junk after the port in {shown!r}: {scheme}:// takes no path")
        path = ""
    elif protocol == "grpc":
        if fragment or "#" in tail:
            raise InvalidTarget(f"junk after the service in {shown!r}: {scheme}:// takes no '#'")
        path = _grpc_service(path, shown)
    else:
        path = _decoded(unquote(path.lstrip("/")), "database name", shown)
        if "/" in path:
            raise InvalidTarget(f"database name {path!r} in {shown!r} contains '/'")
        if protocol == "redis" and path and not (path.isdigit() and path.isascii()):
            raise InvalidTarget(f"redis database {path!r} in {shown!r} is not a number")

    return Target(
        scheme=scheme,
        protocol=protocol,
        tls=tls,
        host=host_ascii,
        port=port,
        is_ip=is_ip,
        path=path,
        username=username,
        password=password,
        params=params,
    )


def _grpc_service(path: str, shown: str) -> str:
    """The health check's service from a gRPC target's path: ``/package.Service`` or nothing.

    Services are named by their protobuf full name (``grpc.health.v1.Health``,
    ``mypackage.v1.Orders``); the path is taken as written, never percent-decoded, since the
    name goes to the server as is.
    """
    service = path[1:] if path.startswith("/") else path
    if service and (len(service) > _GRPC_SERVICE_MAX or not _GRPC_SERVICE_RE.fullmatch(service)):
        shown_service = service if len(service) <= 40 else service[:40] + "..."
        raise InvalidTarget(
            f"gRPC service {shown_service!r} in {shown!r} is not a service name such as "
            "'package.Service' (letters, digits and '_', joined by dots)"
        )
    return service


def _decoded(text: str, what: str, shown: str) -> str:
    """A percent-decoded part sent to the server as is: no control character (a NUL ends a
    C string in the PostgreSQL startup message), and printable again in the report's URL."""
    if not text.isprintable():
        raise InvalidTarget(f"the {what} in {shown!r} holds a control character (percent-encoded)")
    return text


def _stray_at(path: str, query: str) -> bool:
    """An unencoded '@' in a DSN's database name or parameters: most likely a userinfo cut
    short by a '/' or '?' in the user name or password ('postgresql://app/x:pw@db'), which
    must never be taken (and printed) as a database name. ``?password=p@ss`` is fine."""
    if "@" in path:
        return True
    for item in query.split("&"):
        key, _, value = item.partition("=")
        if "@" in key or ("@" in value and unquote(key).lower() not in _SECRET_PARAMS):
            return True
    return False


def _split_bracketed(text: str, shown: str) -> tuple[str, str | None]:
    end = text.find("]")
    if end == -1:
        raise InvalidTarget(f"unclosed '[' in {shown!r}")
    inner, after = text[1:end], text[end + 1 :]
    if not inner:
        raise InvalidTarget(f"empty host in {shown!r}")
    try:
        ipaddress.IPv6Address(inner)
    except ValueError:
        raise InvalidTarget(f"{inner!r} in {shown!r} is not an IPv6 address") from None
    if not after:
        return inner, None
    if not after.startswith(":"):
        raise InvalidTarget(f"junk after ']' in {shown!r}: expected ':port'")
    return inner, after[1:]


def _parse_port(port_text: str, shown: str, *, bare: bool) -> int:
    if not port_text:
        raise InvalidTarget(f"missing port after ':' in {shown!r}")
    digits = 0
    while digits < len(port_text) and port_text[digits] in "0123456789":
        digits += 1
    if digits == 0:
        raise InvalidTarget(f"port {port_text!r} is not a number in {shown!r}")
    if digits < len(port_text):
        hint = ""
        if bare and port_text[digits] in "/?":
            hint = ": use a URL or DSN (e.g. postgresql://db:5432/app) to give a path"
        raise InvalidTarget(f"junk after the port in {shown!r}{hint}")
    if digits > 5:
        raise InvalidTarget(f"port {port_text} is out of range in {shown!r} (1-65535)")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise InvalidTarget(f"port {port} is out of range in {shown!r} (1-65535)")
    return port


def _validate_host(host: str, shown: str, *, bracketed: bool = False) -> tuple[str, bool]:
    if not host:
        raise InvalidTarget(f"empty host in {shown!r}")
    if bracketed:
        return str(ipaddress.IPv6Address(host)), True
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        if addr.version == 6:
            raise InvalidTarget(
                f"IPv6 address in {shown!r} must be in brackets, e.g. '[{host}]:443'"
            )
        return str(addr), True
    if re.fullmatch(r"[0-9.]+", host):
        raise InvalidTarget(f"{host!r} in {shown!r} is not a valid IPv4 address")
    if not host.isascii():
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidTarget(
                f"host {host!r} in {shown!r} is not a valid domain name: {exc}"
            ) from None
        if re.fullmatch(r"[0-9.]+", ascii_host):
            # Fullwidth digits map to ASCII ones ('０' -> '0', resolved as 0.0.0.0): an address
            # in disguise, which the IPv4 checks above never saw.
            raise InvalidTarget(
                f"host {host!r} in {shown!r} maps to {ascii_host!r}: write an IP address "
                "in ASCII digits"
            )
    else:
        ascii_host = host.lower()
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    if not name:
        raise InvalidTarget(f"empty host in {shown!r}")
    if len(name) > 253:
        raise InvalidTarget(f"host name in {shown!r} is longer than 253 characters")
    for label in name.split("."):
        if not label:
            raise InvalidTarget(f"host {host!r} in {shown!r} has an empty label")
        if len(label) > 63:
            raise InvalidTarget(
                f"label {label[:20]!r}... in {shown!r} is longer than 63 characters"
            )
        if not _LABEL_RE.match(label):
            bad = next((c for c in label if not (c.isalnum() or c in "-_")), None)
            if bad is not None:
                raise InvalidTarget(f"invalid character {bad!r} in host {host!r} of {shown!r}")
            raise InvalidTarget(f"label {label!r} in {shown!r} starts or ends with '-'")
    return ascii_host, False


def _redact_for_message(text: str) -> tuple[str, list[str]]:
    """Hide a password in user input before it appears in an error message.

    The password is whatever lies between the first ':' of the userinfo and the *last* '@' of
    the input, wherever the parser cuts the authority: an unencoded '/', '?', '#' or '@' in a
    password, or a malformed scheme (``postgresql:app:pw@db``, ``app:pw@db:5432``), must not
    show it. This may hide more than the password in a URL with '@' in its query; it is only
    an error message. Returns the text to show and the hidden strings.
    """
    scheme, sep, rest = text.partition("://")
    if not sep or not _SCHEME_NAME_RE.fullmatch(scheme):  # '://' later, after the password
        scheme, sep, rest = "", "", text
    hidden: list[str] = []
    userinfo, at, hostpart = rest.rpartition("@")
    if at:
        user, has_pw, password = userinfo.partition(":")
        if has_pw and password:
            hidden.append(password)
            rest = f"{user}:***@{hostpart}"
    return f"{scheme}{sep}{redact_query(rest)}", hidden


def _scrub(message: str, hidden: list[str]) -> str:
    """Hide the pieces of a password that the parser cut it into (a port, a host, a path)."""
    for secret in hidden:
        pieces = [secret, *re.split(r"[/?#@:&=\[\]]", secret)]
        for piece in sorted(pieces, key=len, reverse=True):
            if len(piece) >= 3:
                message = message.replace(piece, "***")
    return message


def _split_authority(rest: str) -> tuple[str, str]:
    """Split what follows ``scheme://`` into the authority and the rest (path, query, fragment)."""
    cut = min((i for i in (rest.find(sep) for sep in "/?#") if i != -1), default=len(rest))
    return rest[:cut], rest[cut:]
