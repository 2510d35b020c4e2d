"""Options of a diagnosis: every default has a reason (docs/defaults.md); all are overridable."""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)

from ._errors import InvalidOption
from ._pemfiles import check_ca_file, check_client_pair

__all__ = [
    "WIDER_KEYWORDS",
    "Options",
    "OptionsKwargs",
    "RungOptionsKwargs",
    "make_options",
    "parse_nameserver",
]

_HEADER_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class Options(BaseModel):
    """How a diagnosis runs. Pass any field as a keyword to ``diagnose()``."""

    # allow_inf_nan=False: timeout=nan passed every bound check and then broke the deadline maths.
    model_config = ConfigDict(
        frozen=True, extra="forbid", arbitrary_types_allowed=True, allow_inf_nan=False
    )

    # Time. The total deadline bounds the whole diagnosis; each rung has its own budget too.
    timeout: float = Field(10.0, gt=0, le=3600, description="Total deadline of one diagnosis (s).")
    connect_timeout: float = Field(
        3.0,
        gt=0,
        le=600,
        description="Per-address TCP connect timeout (s): lets the first SYN "
        "retransmission (at 1 s) happen and still fails fast.",
    )
    dns_timeout: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Budget for name resolution (s). When getaddrinfo fails, the direct "
        "queries that find out why get another budget of the same length (a silent resolver "
        "takes twice this; the total deadline bounds both).",
    )
    read_timeout: float = Field(
        3.0,
        gt=0,
        le=600,
        description="How long to wait for the peer to answer at L7 "
        "(TLS handshake, HTTP response headers, database greeting) (s).",
    )
    nameservers: tuple[str, ...] | None = Field(
        None,
        description="Name servers to ask directly when getaddrinfo fails "
        "(default: those of /etc/resolv.conf). 'host' or 'host:port'.",
    )
    resolver_walk: bool = Field(
        True,
        description="Replay the system resolver's search walk and ask every configured name "
        "server (direct queries beside the other rungs) when resolv.conf's search list takes "
        "part or names several servers.",
    )

    # ICMP and the liveness witness (L3).
    icmp: bool = Field(True, description="Send ICMP echoes alongside the TCP connect.")
    icmp_count: int = Field(3, ge=1, le=20, description="Echo requests per address.")
    icmp_engine: Literal["builtin", "aioping"] = Field(
        "builtin",
        description="The ICMP engine: netprobe's own, or aioping (GPLv2, asyncio only).",
    )
    canary: bool = Field(
        True,
        description="When the SYN goes unanswered, connect to a port that is almost "
        "certainly closed: an RST proves the host is alive.",
    )

    # Where the SYN dies: a TCP trace to the real port after an L3/L4 failure.
    trace: bool = Field(
        True,
        description="When the connect fails at L3/L4 (or its SYN is unanswered after 1 s), "
        "trace the path to the real port with TTL-limited SYNs (no raw socket).",
    )
    trace_max_hops: int = Field(
        12, ge=1, le=64, description="Hops the trace probes at most (one SYN each, sent together)."
    )
    trace_timeout: float = Field(
        1.5,
        gt=0,
        le=60,
        description="How long the trace waits for its hops to answer (s); cut to the total "
        "deadline.",
    )

    # TLS.
    verify: bool = Field(True, description="Verify the server certificate.")
    ca_file: str | None = Field(None, description="CA bundle (PEM) to verify against.")
    ssl_context: ssl.SSLContext | None = Field(None, description="A ready SSL context to use.")
    client_cert: str | None = Field(None, description="Client certificate (PEM) for mTLS.")
    client_key: str | None = Field(None, description="Key of the client certificate (PEM).")
    expiry_warning_days: float = Field(14, ge=0, description="Warn when a cert expires within.")

    # HTTP.
    method: str = Field("GET", description="HTTP method of the request.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP request headers (their values never appear in a report or a log).",
    )
    expect_status: tuple[int, ...] | None = Field(
        None, description="Statuses that count as healthy (default: 2xx and 3xx)."
    )
    follow_redirects: bool = Field(
        False, description="Follow redirects to the same origin (at most 5)."
    )

    # The way to HTTP targets: a forward proxy, as the application goes (netprobe/proxies.py).
    proxy: str | None = Field(
        None,
        description="The HTTP proxy http(s):// targets go through, http://[user:pass@]host:port "
        "('none': direct). Default: HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and NO_PROXY from "
        "the environment, with httpx's rules.",
    )
    trust_env: bool = Field(
        True,
        description="Follow the proxy environment variables (HTTP_PROXY, HTTPS_PROXY, "
        "ALL_PROXY, NO_PROXY) for http(s):// targets, as httpx does by default.",
    )

    # Databases.
    probe_user: str = Field(
        "netprobe_probe",
        min_length=1,
        description="User named in credential-less database probes; it need not exist.",
    )

    @field_validator("nameservers", mode="before")
    @classmethod
    def _one_nameserver(cls, v: Any) -> Any:
        return (v,) if isinstance(v, str) else v

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None:
            for ns in v:
                parse_nameserver(ns)
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v: str) -> str:
        if not v.isalpha():
            raise ValueError(f"HTTP method {v!r} is not a token")
        return v.upper()

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        # A malformed header is bad input, not an HTTP verdict (httpx would refuse it mid-way
        # and the report would blame the server). Values are never echoed: they may be secrets.
        for name, value in v.items():
            if not _HEADER_NAME_RE.fullmatch(name):
                raise ValueError(f"HTTP header name {name!r} is not a token")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"HTTP header {name!r} has a line break or NUL in its value")
        return v

    @field_serializer("headers", when_used="json")
    def _hidden_header_values(self, headers: dict[str, str]) -> dict[str, str]:
        return _hide_values(headers)

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Header values are often credentials (Authorization, Cookie, X-Api-Key): repr(),
        # str() and the JSON form show the names only. model_dump() keeps them (make_options).
        for name, value in super().__repr_args__():
            yield name, _hide_values(value) if name == "headers" else value

    @field_validator("ca_file", "client_cert", "client_key")
    @classmethod
    def _pem_file(cls, v: str | None, info: ValidationInfo) -> str | None:
        # A missing file is bad input (InvalidOption before any I/O), not a TLS verdict.
        if v is not None and not os.path.isfile(v):
            raise ValueError(f"{info.field_name} {v!r} is not a readable file")
        if info.field_name == "client_key" and v is not None and not info.data.get("client_cert"):
            raise ValueError("client_key needs client_cert")
        return v

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, v: str | None) -> str | None:
        if v is None or v.strip().lower() == "none":
            return v
        scheme, sep, rest = v.strip().partition("://")
        if not sep or scheme.lower() != "http" or not rest.split("@")[-1].split("/")[0]:
            raise ValueError(
                "must be 'http://[user:pass@]host:port' or 'none' (SOCKS and TLS to the proxy "
                "are not supported)"
            )
        return v

    @model_validator(mode="after")
    def _tls_files(self) -> Options:
        # Loaded as the TLS rung will load them (netprobe/_pemfiles.py): a certificate file
        # without its key, a key of another certificate, a file that is not PEM are bad input.
        if self.ca_file is not None:
            check_ca_file(self.ca_file)
        if self.client_cert is not None:
            check_client_pair(self.client_cert, self.client_key)
        return self

    @field_validator("expect_status")
    @classmethod
    def _statuses(cls, v: tuple[int, ...] | None) -> tuple[int, ...] | None:
        for status in v or ():
            if not 100 <= status <= 599:
                raise ValueError(f"HTTP status {status} is not in 100-599")
        return v


class RungOptionsKwargs(TypedDict, total=False):
    """:class:`OptionsKwargs` without ``timeout``: the keywords of ``wait_until_ready()``,
    whose own ``timeout`` is its overall deadline (each attempt's total deadline is
    ``options.timeout``)."""

    connect_timeout: float
    dns_timeout: float
    read_timeout: float
    nameservers: Sequence[str] | str | None
    resolver_walk: bool
    icmp: bool
    icmp_count: int
    icmp_engine: Literal["builtin", "aioping"]
    canary: bool
    trace: bool
    trace_max_hops: int
    trace_timeout: float
    verify: bool
    ca_file: str | None
    ssl_context: ssl.SSLContext | None
    client_cert: str | None
    client_key: str | None
    expiry_warning_days: float
    method: str
    headers: Mapping[str, str]
    expect_status: Sequence[int] | None
    follow_redirects: bool
    proxy: str | None
    trust_env: bool
    probe_user: str


class OptionsKwargs(RungOptionsKwargs, total=False):
    """The keyword options of ``diagnose()``, ``diagnose_many()`` and ``probe_pool()``: every
    :class:`Options` field, with the types a caller may pass (a list where the field keeps a
    tuple). Typed with PEP 692's ``Unpack``, so that a misspelt option (``timout=5``) or a
    wrong type fails type checking, not only at run time (``InvalidOption``).
    ``tests/test_options.py`` keeps it equal to :class:`Options`."""

    timeout: float


#: Fields whose keyword accepts more than the field keeps (the validators convert).
WIDER_KEYWORDS: dict[str, object] = {
    "nameservers": Sequence[str] | str | None,
    "headers": Mapping[str, str],
    "expect_status": Sequence[int] | None,
}


def parse_nameserver(text: str) -> tuple[str, int]:
    """``'1.2.3.4'``, ``'1.2.3.4:5353'``, ``'::1'`` or ``'[::1]:5353'`` to (address, port)."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise ValueError(f"name server {text!r} is not 'address' or 'address:port'")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise ValueError(f"name server {text!r} is not 'address' or 'address:port'")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"name server {text!r} must be an IP address") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"name server port {port} is out of range")
    return host, port


def _hide_values(headers: dict[str, str]) -> dict[str, str]:
    return {name: "***" for name in headers}


def make_options(options: Options | None = None, **overrides: Any) -> Options:
    """Merge keyword overrides into ``options``; any mistake becomes a one-line InvalidOption."""
    base = options.model_dump() if options is not None else {}
    if options is not None:
        base["ssl_context"] = options.ssl_context
    base.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Options(**base)
    except ValidationError as exc:
        raise InvalidOption(_one_line(exc)) from None


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    if not err["loc"] and err["msg"].startswith("Value error, option "):
        return err["msg"][len("Value error, ") :]  # a check of several fields names its own
    loc = ".".join(str(p) for p in err["loc"]) or "options"
    if err["type"] == "extra_forbidden":
        known = ", ".join(sorted(Options.model_fields))
        return f"unknown option {loc!r} (known: {known})"
    msg = _plain_words(err["msg"])
    if msg.startswith("Value error, "):
        # Our own validators name the offending value already (and often the option: once
        # is enough, "option 'ca_file': '/x' is not a readable file").
        text = msg[len("Value error, ") :]
        return f"option {loc!r}: {text.removeprefix(loc + ' ')}"
    if loc.startswith("headers"):
        return f"option {loc!r}: {msg}"  # a header value may be a credential
    shown = repr(err.get("input"))
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"option {loc!r}: {msg} (got {shown})"


#: pydantic's phrasing -> the words of an error message a person reads.
_PLAIN = (
    ("Input should be greater than or equal to ", "must be at least "),
    ("Input should be less than or equal to ", "must be at most "),
    ("Input should be a valid number, unable to parse string as a number", "must be a number"),
    (
        "Input should be a valid integer, unable to parse string as an integer",
        "must be a whole number",
    ),
    ("Input should be a valid integer", "must be a whole number"),
    ("Input should be a valid boolean, unable to interpret input", "must be true or false"),
    ("Input should be a valid boolean", "must be true or false"),
    ("Input should be a valid string", "must be text"),
    ("Input should be a valid tuple", "must be a list"),
    ("Input should be a valid dictionary", "must be a mapping"),
    ("Input should be a finite number", "must be a finite number"),
    ("String should have at least 1 character", "must not be empty"),
    ("Input should be ", "must be "),
    ("String should have ", "must have "),
)


def _plain_words(msg: str) -> str:
    for pydantic_words, ours in _PLAIN:
        if msg.startswith(pydantic_words):
            return ours + msg[len(pydantic_words) :]
    return msg
