"""The captures of real server software (tests/fixtures/realservers/, made by its
capture_realservers.py) are complete, and hold the facts the rules are written from: a
re-capture that changes one of them fails here, and the rule writers look again.

Pure: no server runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from netprobe.protocols import postgres as pg

HERE = Path(__file__).resolve().parent / "fixtures" / "realservers"
META = {"README.md", "FINDINGS.md", "capture_realservers.py", "provenance.json",
        "observed.json", "netprobe-today.json"}  # fmt: skip


def fixture(rel: str) -> bytes:
    return (HERE / rel).read_bytes()


def test_every_capture_has_its_provenance() -> None:
    files = {
        str(p.relative_to(HERE))
        for p in HERE.rglob("*")
        if p.is_file() and p.name not in META and "__pycache__" not in p.parts
    }
    provenance = json.loads(fixture("provenance.json"))
    assert files == set(provenance)
    readme = fixture("README.md").decode()
    assert all(f"`{name}`" in readme for name in files)
    assert all("(captured 20" in line for line in provenance.values())


def test_nginx_client_certificate_required_is_an_http_400_after_a_complete_handshake() -> None:
    for case in ("mtls_no_cert_tls13", "mtls_no_cert_tls12"):
        answer = fixture(f"nginx/{case}.http")
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert b"<title>400 No required SSL certificate was sent</title>" in answer
    other = fixture("nginx/mtls_other_ca_tls13.http")
    assert b"<title>400 The SSL certificate error</title>" in other
    plain = fixture("nginx/plain_http_to_tls_port.http")
    assert b"400 The plain HTTP request was sent to HTTPS port" in plain


def test_haproxy_verify_required_alerts() -> None:
    # TLS 1.2: a plaintext fatal alert (RFC 5246 7.2) closes the handshake itself.
    assert fixture("haproxy/mtls_no_cert_tls12.bin").endswith(b"\x15\x03\x03\x00\x02\x02\x28")
    assert fixture("haproxy/mtls_other_ca_tls12.bin").endswith(b"\x15\x03\x03\x00\x02\x02\x30")
    # TLS 1.3: the alert is encrypted and comes after the server's Finished, so it is
    # read as an application_data record (type 23) after the handshake.
    assert fixture("haproxy/mtls_no_cert_tls13.bin")[-24:-19] == b"\x17\x03\x03\x00\x13"
    observed = json.loads(fixture("observed.json"))
    assert observed["haproxy.mtls_no_cert_tls13"]["error_at"] == "read"
    assert "CERTIFICATE_REQUIRED" in observed["haproxy.mtls_no_cert_tls13"]["error"]
    assert observed["haproxy.mtls_no_cert_tls12"]["error_at"] == "handshake"


def test_proxy_answers_name_themselves() -> None:
    assert b"No server is available to handle this request." in fixture(
        "haproxy/http_all_down.http"
    )
    for case, status in (("refused", b"502 Bad Gateway"), ("silent", b"504 Gateway Time-out"),
                         ("slow", b"504 Gateway Time-out"),
                         ("tls_untrusted", b"502 Bad Gateway")):  # fmt: skip
        answer = fixture(f"nginx/proxy_{case}.http")
        assert answer.startswith(b"HTTP/1.1 " + status) and b"Server: nginx/" in answer
    squid = {
        "denied": b"X-Squid-Error: ERR_ACCESS_DENIED 0",
        "connect_fail": b"X-Squid-Error: ERR_CONNECT_FAIL 111",
        "auth_required": b"X-Squid-Error: ERR_CACHE_ACCESS_DENIED 0",
        "connect_method_refused": b"X-Squid-Error: ERR_CONNECT_FAIL 111",
        # Squid 5.7 reports a name that does not resolve as a read error, not ERR_DNS_FAIL.
        "dns_fail_nxdomain": b"X-Squid-Error: ERR_READ_ERROR 0",
    }
    for case, header in squid.items():
        assert header in fixture(f"squid/{case}.http"), case


@pytest.mark.parametrize(
    ("case", "sqlstate", "words"),
    [("max_client_conn", "08P01", "no more connections allowed (max_client_conn)"),
     ("unknown_database", "08P01", "no such database: nodb"),
     ("server_down_trust", "08P01", "query_wait_timeout")],
)  # fmt: skip
def test_pgbouncer_errors_parse_as_postgresql_error_responses(
    case: str, sqlstate: str, words: str
) -> None:
    parsed = pg.parse_message(fixture(f"pgbouncer/{case}.bin"))
    assert parsed is not None
    message, _ = parsed
    assert isinstance(message, pg.ErrorResponse)
    assert (message.sqlstate, message.message) == (sqlstate, words)


def test_pgbouncer_reports_its_servers_version() -> None:
    data = fixture("pgbouncer/login_trust_ok.bin")
    params = {}
    while data:
        parsed = pg.parse_message(data)
        assert parsed is not None
        message, data = parsed
        if isinstance(message, pg.ParameterStatus):
            params[message.name] = message.value
    # PgBouncer relays the server's parameters: its own name appears nowhere in them.
    assert params["server_version"].startswith("15.")
    assert not any("bouncer" in v.lower() for v in params.values())


def test_dns_answers() -> None:
    def answer(rel: str) -> dns.message.Message:
        return dns.message.from_wire(fixture(rel))

    assert answer("bind/refused_acl.dns").rcode() == dns.rcode.REFUSED
    assert answer("dnsmasq/refused_no_upstream.dns").rcode() == dns.rcode.REFUSED
    assert answer("bind/silent_forwarder.dns").rcode() == dns.rcode.SERVFAIL
    bind_dangling = answer("bind/dangling_cname.dns")
    assert bind_dangling.rcode() == dns.rcode.NXDOMAIN
    assert [rr.rdtype for rr in bind_dangling.answer] == [dns.rdatatype.CNAME]
    # dnsmasq answers NOERROR with the CNAME alone (looks like NODATA, not NXDOMAIN).
    dnsmasq_dangling = answer("dnsmasq/dangling_cname.dns")
    assert dnsmasq_dangling.rcode() == dns.rcode.NOERROR
    assert [rr.rdtype for rr in dnsmasq_dangling.answer] == [dns.rdatatype.CNAME]
