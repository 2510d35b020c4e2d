"""The target grammar: table-driven cases and hypothesis properties (no I/O, no event loop)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netprobe import InvalidTarget, Target, parse_target
from netprobe.target import redact_query

VALID = [
    # text, scheme, protocol, tls, host, port, path
    ("db.internal:3306", "mysql", "mysql", False, "db.internal", 3306, ""),
    ("10.0.0.5:5432", "postgresql", "postgresql", False, "10.0.0.5", 5432, ""),
    ("cache:6379", "redis", "redis", False, "cache", 6379, ""),
    ("web:80", "http", "http", False, "web", 80, "/"),
    ("web:443", "https", "http", True, "web", 443, "/"),
    ("queue:5672", "tcp", "tcp", False, "queue", 5672, ""),
    ("[::1]:5432", "postgresql", "postgresql", False, "::1", 5432, ""),
    ("[2001:db8::1]:8080", "tcp", "tcp", False, "2001:db8::1", 8080, ""),
    ("http://api/health", "http", "http", False, "api", 80, "/health"),
    (
        "https://api.example.com/health?deep=1",
        "https",
        "http",
        True,
        "api.example.com",
        443,
        "/health?deep=1",
    ),
    ("https://api:8443", "https", "http", True, "api", 8443, "/"),
    ("HTTPS://API.Example.COM/", "https", "http", True, "api.example.com", 443, "/"),
    ("mysql://db", "mysql", "mysql", False, "db", 3306, ""),
    ("mariadb://db:3307/app", "mariadb", "mysql", False, "db", 3307, "app"),
    ("postgresql://app:s3cret@db/app", "postgresql", "postgresql", False, "db", 5432, "app"),
    ("postgres://db:6432", "postgres", "postgresql", False, "db", 6432, ""),
    ("redis://cache/2", "redis", "redis", False, "cache", 6379, "2"),
    ("rediss://cache:6380", "rediss", "redis", True, "cache", 6380, ""),
    ("tcp://queue:5672", "tcp", "tcp", False, "queue", 5672, ""),
    ("tls://ldap:636", "tls", "tcp", True, "ldap", 636, ""),
    ("tcp://[::1]:22", "tcp", "tcp", False, "::1", 22, ""),
    ("bücher.example:443", "https", "http", True, "xn--bcher-kva.example", 443, "/"),
    ("db_1:3306", "mysql", "mysql", False, "db_1", 3306, ""),
    ("fqdn.example.:80", "http", "http", False, "fqdn.example.", 80, "/"),
    ("localhost:1", "tcp", "tcp", False, "localhost", 1, ""),
    ("h:65535", "tcp", "tcp", False, "h", 65535, ""),
    ("grpc://api:50051", "grpc", "grpc", False, "api", 50051, ""),
    ("grpc://api:50051/", "grpc", "grpc", False, "api", 50051, ""),
    ("grpcs://api.example:443", "grpcs", "grpc", True, "api.example", 443, ""),
    (
        "grpc://10.0.0.7:9000/grpc.health.v1.Health",
        "grpc",
        "grpc",
        False,
        "10.0.0.7",
        9000,
        "grpc.health.v1.Health",
    ),
    ("GRPCS://[::1]:8443/orders_v2.Orders", "grpcs", "grpc", True, "::1", 8443, "orders_v2.Orders"),
    ("grpc://h:1/Greeter", "grpc", "grpc", False, "h", 1, "Greeter"),
]


@pytest.mark.parametrize(("text", "scheme", "protocol", "tls", "host", "port", "path"), VALID)
def test_valid_targets(
    text: str, scheme: str, protocol: str, tls: bool, host: str, port: int, path: str
) -> None:
    t = parse_target(text)
    assert (t.scheme, t.protocol, t.tls, t.host, t.port, t.path) == (
        scheme,
        protocol,
        tls,
        host,
        port,
        path,
    )


INVALID = [
    # text, a fragment the message must contain
    ("", "empty target"),
    ("db:99999", "port 99999 is out of range in 'db:99999'"),
    ("db:0", "port 0 is out of range"),
    ("db:65536", "out of range"),
    ("db:123456789", "out of range"),
    ("mongo://db:27017", "unknown scheme 'mongo'"),
    ("ftp://files", "unknown scheme 'ftp'"),
    ("db", "missing port in 'db'"),
    ("10.0.0.1", "missing port"),
    ("db:", "missing port after ':'"),
    ("tcp://db", "missing port"),
    ("tls://db", "missing port"),
    (":80", "empty host"),
    ("http://:80/", "empty host"),
    ("http:///path", "empty host"),
    ("postgresql://user@/app", "empty host"),
    ("db :80", "whitespace"),
    (" db:80", "whitespace"),
    ("db:80 ", "whitespace"),
    ("db:\t80", "whitespace"),
    ("db\x00:80", "control character"),
    ("db:80x", "junk after the port"),
    ("db:80/path", "junk after the port"),
    ("db:80?x=1", "junk after the port"),
    ("tcp://db:80/path", "junk after the port"),
    ("tcp://db:80?x=1", "junk after the port"),
    ("db:abc", "port 'abc' is not a number"),
    ("db:-1", "is not a number"),
    ("db:+80", "is not a number"),
    ("::1:80", "must be in brackets"),
    ("2001:db8::1", "must be in brackets"),
    ("http://::1/", "must be in brackets"),
    ("[::1:80", "unclosed '['"),
    ("[zz::1]:80", "is not an IPv6 address"),
    ("[]:80", "empty host"),
    ("[::1]80", "junk after ']'"),
    ("300.1.1.1:80", "not a valid IPv4 address"),
    ("1.2.3:80", "not a valid IPv4 address"),
    ("db..internal:80", "empty label"),
    (".db:80", "empty label"),
    ("-db:80", "starts or ends with '-'"),
    ("db-:80", "starts or ends with '-'"),
    ("d%b:80", "invalid character '%'"),
    ("d*b:80", "invalid character '*'"),
    ("a" * 64 + ":80", "longer than 63"),
    (".".join(["a" * 60] * 5) + ":80", "longer than 253"),
    ("http:/db", "expected 'http://'"),
    ("://db:80", "missing scheme"),
    ("tcp://user:pw@db:80", "credentials are not used"),
    ("redis://cache/abc", "is not a number"),
    ("postgresql://db/a/b", "contains '/'"),
    ("\u2764.example:80", "not a valid domain name"),
    ("\u0661a.example:80", "not a valid domain name"),
    ("grpc://api", "gRPC has no well-known port: give grpc://host:port"),
    ("grpcs://api/pkg.Svc", "missing port in 'grpcs://api/pkg.Svc'"),
    ("grpc://api:99999", "out of range"),
    ("grpc://api:50051/pkg/Svc", "gRPC service 'pkg/Svc'"),
    ("grpc://api:50051/pkg..Svc", "is not a service name such as 'package.Service'"),
    ("grpc://api:50051/.pkg.Svc", "is not a service name"),
    ("grpc://api:50051/pkg.Svc.", "is not a service name"),
    ("grpc://api:50051/1pkg.Svc", "is not a service name"),
    ("grpc://api:50051/my-service", "is not a service name"),
    ("grpc://api:50051/pkg.Sv%63", "is not a service name"),
    ("grpc://api:50051/p\u00e9.Svc", "is not a service name"),
    ("grpc://api:50051/" + "a" * 300, "'aaaa"),
    ("grpc://api:50051/pkg.Svc?timeout=1", "grpc:// takes no query"),
    ("grpc://api:50051/pkg.Svc#x", "grpc:// takes no '#'"),
    ("grpc://user:pw@api:50051", "credentials are not used by grpc://"),
    ("grpc:/api:50051", "expected 'grpc://'"),
]


@pytest.mark.parametrize(("text", "fragment"), INVALID)
def test_invalid_targets_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(InvalidTarget) as info:
        parse_target(text)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_at_least_forty_malformed_cases() -> None:
    assert len(INVALID) >= 40


def test_invalid_target_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parse_target("db:99999")


def test_non_string_is_rejected() -> None:
    with pytest.raises(InvalidTarget, match="must be a string"):
        parse_target(3306)  # type: ignore[arg-type]


SECRET = "s3cr3t-Pa55"


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://app:{SECRET}@db/app",
        f"mysql://root:{SECRET}@db:3306/",
        f"redis://:{SECRET}@cache:6379/0",
        f"postgresql://app@db/app?password={SECRET}",
        f"https://user:{SECRET}@api/health",
    ],
)
def test_password_never_shown(text: str) -> None:
    t = parse_target(text)
    assert t.password is not None and t.password.get_secret_value() == SECRET
    for shown in (repr(t), str(t), t.url, t.model_dump_json(), str(t.model_dump())):
        assert SECRET not in shown
    assert SECRET in t.url_with_secret()


def test_password_not_in_error_messages() -> None:
    with pytest.raises(InvalidTarget) as info:
        parse_target(f"postgresql://app:{SECRET}@db:99999/app")
    assert SECRET not in str(info.value)
    with pytest.raises(InvalidTarget) as info:
        parse_target(f"mongo://app:{SECRET}@db/app")
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        f"https://api/health?access_token={SECRET}&verbose=1",
        f"https://api/health?api_key={SECRET}",
        f"http://api:8080/object?X-Amz-Signature={SECRET}&X-Amz-Expires=60",
        f"https://api/health?token={SECRET}#frag",
        f"postgresql://db/app?sslpassword={SECRET}&sslmode=require",
    ],
)
def test_secret_query_parameters_never_shown(text: str) -> None:
    """A token in a URL's query is as much a credential as user:password@."""
    t = parse_target(text)
    for shown in (repr(t), str(t), t.url, t.model_dump_json(), str(t.model_dump())):
        assert SECRET not in shown
        assert "***" in shown
    assert SECRET in t.url_with_secret()


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/h?token=abc&x=1", "/h?token=***&x=1"),
        ("/h?X-Amz-Signature=abc&X-Amz-Expires=60", "/h?X-Amz-Signature=***&X-Amz-Expires=60"),
        ("/h?page=2&sort=asc", "/h?page=2&sort=asc"),
        ("/h?key=&flag", "/h?key=&flag"),
        ("/h", "/h"),
        ("https://a/b?client_secret=s#f", "https://a/b?client_secret=***#f"),
    ],
)
def test_redact_query(text: str, shown: str) -> None:
    assert redact_query(text) == shown


def test_secret_query_not_in_error_messages() -> None:
    with pytest.raises(InvalidTarget) as info:
        parse_target(f"https://api:99999/h?access_token={SECRET}")
    assert SECRET not in str(info.value)


def test_redacted_url_round_trips_structure() -> None:
    t = parse_target(f"postgresql://app:{SECRET}@db/app?sslmode=require")
    assert t.url == "postgresql://app:***@db:5432/app?sslmode=require"
    assert t.params == {"sslmode": "require"}


def test_target_passes_through() -> None:
    t = parse_target("db:3306")
    assert parse_target(t) is t
    assert isinstance(t, Target)


@settings(max_examples=500)
@given(st.text(max_size=60))
def test_any_string_parses_or_raises_invalid_target(text: str) -> None:
    try:
        t = parse_target(text)
    except InvalidTarget as exc:
        assert str(exc)
        assert "\n" not in str(exc)
    else:
        assert 1 <= t.port <= 65535
        assert t.host


_alphabet = st.sampled_from(
    [
        *"abcdz09.-_:/[]@?#%=&",
        *["http://", "https://", "tcp://", "mysql://", "redis://", "grpc://", "grpcs://", "::"],
    ]
)


@settings(max_examples=500)
@given(st.lists(_alphabet, max_size=20).map("".join))
def test_url_like_strings_parse_or_raise_invalid_target(text: str) -> None:
    with contextlib.suppress(InvalidTarget):
        parse_target(text)


@given(
    st.sampled_from(["grpc", "grpcs"]),
    st.from_regex(
        r"[A-Za-z_][A-Za-z0-9_]{0,12}(\.[A-Za-z_][A-Za-z0-9_]{0,12}){0,4}", fullmatch=True
    ),
    st.integers(1, 65535),
)
def test_grpc_service_round_trip(scheme: str, service: str, port: int) -> None:
    t = parse_target(f"{scheme}://svc.internal:{port}/{service}")
    assert (t.protocol, t.tls, t.port, t.path) == ("grpc", scheme == "grpcs", port, service)
    assert t.url == f"{scheme}://svc.internal:{port}/{service}"
    assert parse_target(t.url) == t


@given(st.text(min_size=1, max_size=30))
def test_grpc_service_is_a_dotted_name_or_invalid_target(service: str) -> None:
    try:
        t = parse_target(f"grpc://svc.internal:50051/{service}")
    except InvalidTarget as exc:
        assert "\n" not in str(exc)
        return
    assert t.path == "" or all(
        part
        and not part[0].isdigit()
        and all(c.isascii() and (c.isalnum() or c == "_") for c in part)
        for part in t.path.split(".")
    )


@given(
    st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,10}){0,3}", fullmatch=True),
    st.integers(1, 65535),
)
def test_host_port_round_trip(host: str, port: int) -> None:
    t = parse_target(f"{host}:{port}")
    assert (t.host, t.port) == (host, port)
    assert parse_target(t.url).netloc == t.netloc
