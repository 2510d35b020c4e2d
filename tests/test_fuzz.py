"""Bad input, fuzzed: the target grammar and every sans-IO protocol parser (no I/O, no loop).

Contracts held here:

* ``parse_target(any string)`` returns a :class:`Target` or raises :class:`InvalidTarget`
  with a one-line message; nothing else, never a traceback.
* every parser in ``netprobe/protocols/`` given any bytes returns a message, ``None`` (need
  more bytes) or raises :class:`ProtocolMismatch`; the describers (``describe_bytes``,
  ``describe_chain``...) never raise at all.

The strategies mutate valid inputs (captured server bytes, built messages, valid targets,
DSNs and URLs): truncations, bit flips, length fields set huge or zero, spliced chunks, so
that the examples get past the first byte check and into the parsers' depths.

Examples per property: ``NETPROBE_FUZZ=N`` (the dedicated run, ``scripts/fuzz``: 100,000,
no deadline); default 300 to keep the normal test command fast.
"""

from __future__ import annotations

import os
import ssl
import string
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netprobe._errors import InvalidTarget
from netprobe.protocols import grpc as gr
from netprobe.protocols import mysql as my
from netprobe.protocols import postgres as pg
from netprobe.protocols import redis as rd
from netprobe.protocols import sniff, x509
from netprobe.protocols.mismatch import ProtocolMismatch
from netprobe.target import Target, parse_target

_EXAMPLES = int(os.environ.get("NETPROBE_FUZZ", "0") or 0)
settings.register_profile(
    "netprobe-fuzz",
    max_examples=_EXAMPLES or 300,
    deadline=None if _EXAMPLES else 2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
if _EXAMPLES:
    # The dedicated run: fresh examples, not a replay of the example database.
    settings.register_profile("netprobe-fuzz", settings.get_profile("netprobe-fuzz"), database=None)
FUZZ = settings.get_profile("netprobe-fuzz")

#: Examples actually run per property (read by scripts/fuzz for its table).
COUNTS: Counter[str] = Counter()

FIX = Path(__file__).parent / "fixtures" / "db"

# ---------------------------------------------------------------------------- seeds


def _fixture_seeds() -> list[bytes]:
    return [p.read_bytes() for p in sorted(FIX.glob("*.bin"))]


def _mysql_seeds() -> list[bytes]:
    greeting = (FIX / "mariadb_greeting.bin").read_bytes()
    return [
        greeting,
        (FIX / "mariadb_1040.bin").read_bytes(),
        (FIX / "mariadb_1130.bin").read_bytes(),
        my.build_handshake_response("probe", plugin="mysql_native_password"),
        my.build_quit(),
        my.build_auth_switch_response(3),
        b"\x07\x00\x00\x02\x00\x00\x00\x02\x00\x00\x00",  # OK packet
        b"\x2c\x00\x00\x02\xfecaching_sha2_password\x00" + b"s" * 20 + b"\x00",  # auth switch
        b"\x02\x00\x00\x02\x01\x04",  # more auth data
        b"\x17\x00\x00\x02\xff\x15\x04#28000Access denied for u",  # ERR 1045
    ]


def _pg_seeds() -> list[bytes]:
    return [
        b"S",
        b"N",
        (FIX / "pg_ssl_answer.bin").read_bytes(),
        (FIX / "pg_auth_sasl.bin").read_bytes(),
        (FIX / "pg_53300.bin").read_bytes(),
        (FIX / "pg_57P03.bin").read_bytes(),
        (FIX / "pg_28000_no_hba.bin").read_bytes(),
        b"R\x00\x00\x00\x08\x00\x00\x00\x00"  # AuthenticationOk
        + b"S\x00\x00\x00\x19server_version\x0016.2\x00"
        + b"K\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x02"
        + b"Z\x00\x00\x00\x05I",
        b"N\x00\x00\x00\x10SNOTICE\x00Mhi\x00\x00",
        pg.build_ssl_request(),
        pg.build_startup("probe", "app"),
    ]


def _redis_seeds() -> list[bytes]:
    return [
        (FIX / "redis_maxclients.bin").read_bytes(),
        (FIX / "redis_pong_info.bin").read_bytes(),
        b"+PONG\r\n",
        b"-NOAUTH Authentication required.\r\n",
        b":1000\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"%2\r\n+a\r\n:1\r\n+b\r\n$3\r\nxyz\r\n",
        b"*3\r\n*2\r\n~1\r\n_\r\n#t\r\n,1.5\r\n(12345678901234567890\r\n",
        b">2\r\n+push\r\n=7\r\ntxt:abc\r\n",
        b"|1\r\n+k\r\n+v\r\n+OK\r\n",
        b"!11\r\nSYNTAX oops\r\n",
        rd.build_command("PING"),
        rd.build_command("INFO", "server"),
    ]


def _grpc_seeds() -> list[bytes]:
    return [
        gr.frame_message(b"\x08\x01"),  # SERVING
        gr.frame_message(b""),  # UNKNOWN (proto3 default)
        gr.frame_message(b"\x08\x02\x1a\x03abc"),  # NOT_SERVING and an unknown field
        gr.frame_message(gr.encode_health_request("grpc.health.v1.Health")),
        gr.frame_message(b"\x08\x01", compressed=True),
        b"\x08\x96\x01\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # bare fields
        b"\x21" + bytes(8) + b"\x2d" + bytes(4),
        b"14",
        b"0",
    ]


_OTHER_SEEDS = [
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
    b"GET / HTTP/1.1\r\n",
    b"SSH-2.0-OpenSSH_9.2p1\r\n",
    b"220 mail.example ESMTP\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32),  # ClientHello start
    b"\x15\x03\x03\x00\x02\x02\x28",  # TLS alert
    b"<html><body>hi</body></html>",
    b'{"status": "ok"}',
]


def _cert_seeds() -> list[bytes]:
    import trustme

    ca = trustme.CA()
    leaf = ca.issue_cert("db.example.test", "127.0.0.1", "::1")
    ders = [ssl.PEM_cert_to_DER_cert(b.bytes().decode()) for b in leaf.cert_chain_pems]
    return [*ders, ssl.PEM_cert_to_DER_cert(ca.cert_pem.bytes().decode())]


MYSQL_SEEDS = _mysql_seeds()
PG_SEEDS = _pg_seeds()
REDIS_SEEDS = _redis_seeds()
GRPC_SEEDS = _grpc_seeds()
ALL_SEEDS = [
    *_fixture_seeds(),
    *MYSQL_SEEDS,
    *PG_SEEDS,
    *REDIS_SEEDS,
    *GRPC_SEEDS,
    *_OTHER_SEEDS,
]

# ---------------------------------------------------------------------------- mutations

_HUGE = [
    b"\xff\xff\xff",
    b"\x00\x00\x00",
    b"\x7f\xff\xff\xff",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x00\x00\x00\x03",
    b"\x00\x01\x00\x01",
    b"99999999999999999999999",
    b"-2",
    b"1025",
    b"65537",
    b"-0",
]


@st.composite
def _mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 8))
        n = len(data)
        if op == 0 and n:  # truncate
            del data[draw(st.integers(0, n - 1)) :]
        elif op == 1 and n:  # bit flip
            i = draw(st.integers(0, n - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == 2:  # a length (or count) field set huge, zero or negative
            i = draw(st.integers(0, n))
            field = draw(st.sampled_from(_HUGE))
            data[i : i + len(field)] = field
        elif op == 3:  # insert random bytes
            i = draw(st.integers(0, n))
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == 4 and n:  # delete a slice
            i = draw(st.integers(0, n - 1))
            del data[i : i + draw(st.integers(1, 16))]
        elif op == 5:  # splice another seed in (concatenated messages, or a wrong protocol)
            data += draw(st.sampled_from(ALL_SEEDS))
        elif op == 6 and n:  # one byte set to an interesting value
            data[draw(st.integers(0, n - 1))] = draw(
                st.sampled_from([0, 1, 0x0A, 0x0D, 0x7F, 0x80, 0xFE, 0xFF, 0x2A, 0x24])
            )
        elif op == 7 and n:  # repeat a slice (many messages, deep nesting)
            i = draw(st.integers(0, n - 1))
            data[i:i] = data[i : i + draw(st.integers(1, 16))] * draw(st.integers(1, 40))
        elif op == 8:  # truncate the end only (need-more paths)
            del data[max(0, n - draw(st.integers(1, 8))) :]
    return bytes(data)


def _bytes_for(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        _mutated(seeds),
        _mutated(ALL_SEEDS),
        st.binary(max_size=600),
    )


# ---------------------------------------------------------------------------- contracts


def _parses_or_mismatch(parse: Callable[[bytes], Any], data: bytes) -> None:
    """A parser's whole contract: an event and the rest, None, or ProtocolMismatch."""
    try:
        out = parse(data)
    except ProtocolMismatch as exc:
        assert isinstance(exc.looks_like, str) and exc.looks_like
        assert str(exc) and "\n" not in str(exc)
        return
    if out is None:
        return
    event, rest = out
    assert event is not None
    assert isinstance(rest, bytes) and len(rest) < len(data)
    assert data.endswith(rest)


@pytest.mark.parametrize(
    "parse",
    [my.parse_greeting, my.parse_reply],
    ids=["mysql.parse_greeting", "mysql.parse_reply"],
)
@FUZZ
@given(data=_bytes_for(MYSQL_SEEDS))
def test_mysql_parsers(parse: Callable[[bytes], Any], data: bytes) -> None:
    COUNTS[f"mysql.{parse.__name__}"] += 1
    _parses_or_mismatch(parse, data)


@FUZZ
@given(data=_bytes_for(MYSQL_SEEDS))
def test_mysql_split_packet(data: bytes) -> None:
    COUNTS["mysql.split_packet"] += 1
    try:
        out = my.split_packet(data)
    except ProtocolMismatch:
        return
    if out is not None:
        seq, payload, rest = out
        assert 0 <= seq <= 255 and 1 <= len(payload) <= my.MAX_PACKET
        assert len(payload) + len(rest) + 4 == len(data)


@pytest.mark.parametrize(
    "parse",
    [pg.parse_ssl_answer, pg.parse_message],
    ids=["postgres.parse_ssl_answer", "postgres.parse_message"],
)
@FUZZ
@given(data=_bytes_for(PG_SEEDS))
def test_postgres_parsers(parse: Callable[[bytes], Any], data: bytes) -> None:
    COUNTS[f"postgres.{parse.__name__}"] += 1
    _parses_or_mismatch(parse, data)


@FUZZ
@given(data=_bytes_for(REDIS_SEEDS))
def test_redis_parse_reply(data: bytes) -> None:
    COUNTS["redis.parse_reply"] += 1
    _parses_or_mismatch(rd.parse_reply, data)


@FUZZ
@given(data=_bytes_for(GRPC_SEEDS))
def test_grpc_parse_message(data: bytes) -> None:
    COUNTS["grpc.parse_message"] += 1
    _parses_or_mismatch(gr.parse_message, data)


@pytest.mark.parametrize(
    "decode",
    [gr.decode_health_response, gr.decode_health_request, gr.parse_status],
    ids=["grpc.decode_health_response", "grpc.decode_health_request", "grpc.parse_status"],
)
@FUZZ
@given(data=_bytes_for(GRPC_SEEDS))
def test_grpc_decoders(decode: Callable[[bytes], Any], data: bytes) -> None:
    """A value or GrpcProtocolError (a ProtocolMismatch); grpc-message never fails at all."""
    COUNTS[f"grpc.{decode.__name__}"] += 1
    payload = data[5:] if data[:1] in (b"\x00", b"\x01") else data
    try:
        decode(payload)
    except gr.GrpcProtocolError as exc:
        assert exc.looks_like and str(exc) and "\n" not in str(exc)
    assert isinstance(gr.decode_grpc_message(data), str)


@FUZZ
@given(info=st.text(max_size=300), name=st.text(max_size=20))
def test_redis_info_field(info: str, name: str) -> None:
    COUNTS["redis.info_field"] += 1
    value = rd.info_field(info, name)
    assert value is None or isinstance(value, str)


@FUZZ
@given(data=_bytes_for(ALL_SEEDS))
def test_sniff_describers(data: bytes) -> None:
    COUNTS["sniff.describe_bytes"] += 1
    text = sniff.describe_bytes(data)
    assert text and "\n" not in text and "\r" not in text
    assert isinstance(sniff.looks_like_tls(data), bool)
    preview = sniff.printable_preview(data)
    assert preview.isprintable()


CERT_SEEDS = _cert_seeds()


@FUZZ
@given(chain=st.lists(st.one_of(_mutated(CERT_SEEDS), st.binary(max_size=64)), max_size=3))
def test_x509_describe_chain(chain: list[bytes]) -> None:
    COUNTS["x509.describe_chain"] += 1
    infos = x509.describe_chain(chain)
    assert len(infos) <= len(chain)


def test_x509_seeds_parse() -> None:
    """The mutation seeds are real certificates (else the fuzzing above stays shallow)."""
    infos = x509.describe_chain(CERT_SEEDS)
    assert len(infos) == len(CERT_SEEDS)
    assert "db.example.test" in infos[0].dns_names


# ---------------------------------------------------------------------------- targets

_VALID_TARGETS = [
    "db:3306",
    "127.0.0.1:5432",
    "[::1]:6379",
    "example.com:443",
    "xn--bcher-kva.example:80",
    "bücher.example:8080",
    "tcp://10.0.0.1:22",
    "tls://mail.example:465",
    "grpc://api.internal:50051",
    "grpcs://api.example:443/grpc.health.v1.Health",
    "grpc://[::1]:9000/my_pkg.v2.Orders",
    "http://api.internal/health?verbose=1#frag",
    "https://user:p%40ss@api.example:8443/v1/ready?token=abc&x=1",
    "mysql://root:secret@db/app",
    "mariadb://db:3307",
    "postgresql://app:s3cr%2Fet@pg.internal:5432/app?sslmode=verify-full&application_name=x",
    "postgres://[2001:db8::1]/db?password=hunter2",
    "redis://:pw@cache:6379/0",
    "rediss://default:pw@cache.example:6380/3",
]

_TARGET_PIECES = [
    *"abz09.-_:/[]@?#%=&+~ \t\x00\x7f",
    "://",
    "::",
    "%2F",
    "%00",
    "%",
    "[::1]",
    "[",
    "]",
    "@@",
    ":0",
    ":65536",
    ":99999999",
    ":-1",
    "sslmode=",
    "sslmode=bogus",
    "password=",
    "xn--",
    "-",
    "a" * 64,
    ".",
    "..",
    "é",
    "\u200b",
    "\ufffd",
    "ß",
    "١٢٣",  # Arabic-Indic digits
    "１２",  # fullwidth digits
    "http://",
    "https://",
    "tcp://",
    "tls://",
    "grpc://",
    "grpcs://",
    "/pkg.Svc",
    "mysql://",
    "postgresql://",
    "redis://",
    "rediss://",
    "HTTP://",
    "ftp://",
]


@st.composite
def _mutated_target(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(_VALID_TARGETS))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 4))
        i = draw(st.integers(0, len(text)))
        if op == 0:
            text = text[:i]
        elif op == 1:
            text = text[:i] + draw(st.sampled_from(_TARGET_PIECES)) + text[i:]
        elif op == 2:
            text = text[:i] + text[i + draw(st.integers(1, 8)) :]
        elif op == 3:
            text = text[:i] + draw(st.text(max_size=6)) + text[i:]
        else:
            text = text[:i] + draw(st.sampled_from(string.printable)) + text[i + 1 :]
    return text


_TARGETS = st.one_of(
    _mutated_target(),
    st.lists(st.sampled_from(_TARGET_PIECES), max_size=20).map("".join),
    st.text(max_size=80),
)


@FUZZ
@given(text=_TARGETS)
def test_target_grammar(text: str) -> None:
    COUNTS["target.parse_target"] += 1
    try:
        t = parse_target(text)
    except InvalidTarget as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message
        return
    assert isinstance(t, Target)
    assert 1 <= t.port <= 65535 and t.host
    assert t.url and "\n" not in t.url
    # The URL a report prints re-parses to the same endpoint.
    again = parse_target(t.url)
    assert (again.protocol, again.host, again.port, again.tls) == (
        t.protocol,
        t.host,
        t.port,
        t.tls,
    )


def test_x509_certificate_with_version_3_is_skipped() -> None:
    """Found by the fuzzing: a version field of 3 (there is no X.509 v4) raised InvalidVersion,
    not ValueError, out of describe_chain (a traceback out of the TLS rung)."""
    leaf = CERT_SEEDS[0]
    assert b"\xa0\x03\x02\x01\x02" in leaf
    v4 = leaf.replace(b"\xa0\x03\x02\x01\x02", b"\xa0\x03\x02\x01\x03", 1)
    assert x509.describe_chain([v4, CERT_SEEDS[-1]])[0].is_ca
    assert len(x509.describe_chain([v4])) == 0


_PW = "PWxq9zzK"  # a password marker: never in an error message, a URL or a repr

_AROUND = st.lists(st.sampled_from([*_TARGET_PIECES, "db", "5432", "app", "u"]), max_size=6).map(
    "".join
)


@FUZZ
@given(
    scheme=st.sampled_from(["", "postgresql://", "mysql://", "redis://", "https://", "tcp://"]),
    user=_AROUND,
    after=_AROUND,
    host=st.sampled_from(["db", "db:5432", "[::1]:5432", "127.0.0.1:99999", "", "db:x"]),
    tail=_AROUND,
)
def test_target_never_shows_the_password(
    scheme: str, user: str, after: str, host: str, tail: str
) -> None:
    """``user:PASSWORD@host``, wrapped in noise: the password shows nowhere, valid or not."""
    COUNTS["target.password_hidden"] += 1
    text = f"{scheme}{user}:{_PW}{after}@{host}{tail}"
    try:
        t = parse_target(text)
    except InvalidTarget as exc:
        assert _PW not in str(exc)
        return
    if t.protocol == "http" and _PW in t.path:
        return  # 'https://api/:x@y' is a path by the URL grammar: nothing says it is a password
    for shown in (t.url, str(t), repr(t), t.model_dump_json()):
        assert _PW not in shown


@pytest.mark.parametrize("text", ["MYSQL://０", "１２７.０.０.１:80", "http://１．１/"])
def test_fullwidth_digits_are_not_a_host_name(text: str) -> None:
    """Found by the fuzzing: '０' passed IDNA as the host name '0' (getaddrinfo: 0.0.0.0),
    and the printed URL did not parse again ('0' is not a valid IPv4 address)."""
    with pytest.raises(InvalidTarget, match="ASCII digits"):
        parse_target(text)


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://db/app?sslmode=verify-full&+application_name=x",  # found by the fuzzing
        "postgresql://db/my%3Fdb?application_name=a%26b",
        "mysql://db/a%20b",
    ],
)
def test_printed_dsn_url_parses_back(text: str) -> None:
    """The URL of a report re-parses to the same target: a decoded '+' (space), '?' or '&' in
    a database name or parameter printed raw gave 'contains whitespace' or another target."""
    t = parse_target(text)
    again = parse_target(t.url)
    assert (again.path, again.params, again.netloc) == (t.path, t.params, t.netloc)


@pytest.mark.parametrize("data", [b"$--1\r\n", b"*--2\r\n", b":1\r\n*-+1\r\n"])
def test_redis_length_with_two_signs_is_a_mismatch(data: bytes) -> None:
    """Found by the fuzzing: '$--1' passed the number check and int() raised ValueError,
    which no probe catches: a peer answering PING with it made diagnose() raise."""
    _parses_or_mismatch(rd.parse_reply, data)
    with pytest.raises(ProtocolMismatch):
        rd.parse_reply(data[data.index(b"*") :] if data.startswith(b":") else data)


def test_x509_name_attribute_of_the_wrong_type_is_skipped() -> None:
    """Found by the fuzzing: an issuer attribute turned into a BIT STRING under another OID
    made cryptography raise TypeError out of describe_chain."""
    leaf = CERT_SEEDS[0]
    ou = b"\x06\x03U\x04\x0b\x0c"  # OID organizationalUnitName, then a UTF8String
    assert ou in leaf
    bad = leaf.replace(ou, b"\x06\x03\x00\x00\x00\x03", 1)
    assert x509.describe_chain([bad]) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Found by the fuzzing: a NUL in a database name passed (it would end the C string in
        # PostgreSQL's startup message) and the printed URL did not parse again.
        ("postgresql://app:pw@pg.internal:5432/%00app?sslmode=verify-full", "database name"),
        ("postgresql://ap%0Ap@db/x", "user name"),
        ("postgresql://db/x?application_name=a%00b", "parameter"),
        # Found by the fuzzing: an '@' after a '#' in a DSN left the password in a parameter.
        (f"postgresql://a?=:{_PW}#@db", "unencoded '@'"),
    ],
)
def test_dsn_parts_decoded_to_bad_text_are_bad_input(text: str, message: str) -> None:
    with pytest.raises(InvalidTarget, match=message) as info:
        parse_target(text)
    assert _PW not in str(info.value)


def test_x509_negative_serial_is_described_without_a_warning() -> None:
    """Found by the fuzzing: a serial number with its top bit set (negative, which RFC 5280
    disallows but old certificates have) made cryptography warn, an error under -W error."""
    leaf = CERT_SEEDS[0]
    at = leaf.index(b"\x02\x14", 8)  # the serial: INTEGER of 20 bytes after the version
    bad = leaf[: at + 2] + b"\x80" + leaf[at + 3 :]
    infos = x509.describe_chain([bad])
    assert len(infos) == 1 and infos[0].serial.startswith("-")
