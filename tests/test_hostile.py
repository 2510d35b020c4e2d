"""Hostile peers: every one gets a specific verdict from the rung's own bounds, with evidence.

Real loopback servers (nplab/hostile.py) stream forever, send 100 MB messages, drip a byte at
a time, trickle complete messages forever, claim huge TLS records or send endless headers;
each is diagnosed as every target kind. The assertions are about *what* the report says, and
that the rung's own budget or read cap ended the exchange: the verdict never comes from the
total deadline (no ``diagnosis.deadline`` warning, with a deadline far above read_timeout).
How long and how much memory each takes is shown by benchmarks/bench_hostile.py, not here.

Why these verdicts (what the on-call engineer should read):

* plain ``host:port`` (tcp): netprobe reads nothing from a plain TCP service (an established
  connection is the whole answer), so every peer is healthy at L4, at no cost.
* a database kind given bytes that cannot be its greeting (an oversized length field, a line
  without end, a TLS record, HTTP): ``db.protocol_mismatch``, the parser's reason in the
  evidence; a greeting that does not complete within read_timeout (drip, trickle):
  ``db.greeting_timeout``.
* http(s): a status and headers, then an endless or 100 MB body: healthy (the status is the
  health signal), the body read stops at 64 KiB; headers that never end:
  ``http.protocol_error`` ("answers malformed HTTP"); headers dripped or trickled:
  ``http.timeout`` ("only part of the response headers"); a dripping body: healthy, noted.
* https at the TLS layer: a dripped ServerHello is ``tls.handshake_timeout``; a record whose
  handshake message claims 16 MB is ``tls.handshake_failed`` with OpenSSL's reason.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
import trustme

import netprobe
from netprobe import Report
from netprobe.steps import ApplicationStep, TlsStep
from nplab.hostile import HUGE, Behaviour, Flavour, hostile_peer, target_for

READ_TIMEOUT = 1.0
INTERVAL = 0.2  # drip and trickle: well below read_timeout, so a per-read timeout never fires
DEADLINE = 8.0


@dataclass(frozen=True)
class Pki:
    server: ssl.SSLContext
    ca_file: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    path = Path(tmp_path_factory.mktemp("hostile")) / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    yield Pki(context, str(path))


def diagnose(behaviour: Behaviour, flavour: Flavour, pki: Pki) -> Report:
    with hostile_peer(behaviour, flavour, server_context=pki.server, interval=INTERVAL) as peer:
        return anyio.run(
            lambda: netprobe.diagnose(
                target_for(flavour, peer.port),
                timeout=DEADLINE,
                read_timeout=READ_TIMEOUT,
                icmp=False,
                ca_file=pki.ca_file,
            )
        )


def _evidence_text(report: Report) -> str:
    assert report.fault is not None
    return " | ".join(
        [report.fault.summary]
        + [f"{e.observation} {sorted((e.data or {}).items())}" for e in report.fault.evidence]
    )


# (behaviour, flavour) -> (fault code or None for healthy, text the summary/evidence must hold)
CASES: dict[tuple[Behaviour, Flavour], tuple[str | None, str]] = {
    ("flood", "mysql"): ("db.protocol_mismatch", "a malformed MySQL greeting"),
    ("flood", "postgresql"): ("db.protocol_mismatch", "too much without a message"),
    ("flood", "redis"): ("db.protocol_mismatch", "a Redis reply line is too long"),
    ("flood", "http"): (None, "200 OK"),
    ("flood", "https"): (None, "200 OK"),
    ("huge", "mysql"): ("db.protocol_mismatch", "cannot be 16777215 bytes long"),
    ("huge", "postgresql"): ("db.protocol_mismatch", f"cannot be {HUGE + 4} bytes long"),
    ("huge", "redis"): ("db.protocol_mismatch", f"bulk reply of {HUGE} bytes is too large"),
    ("huge", "http"): (None, "200 OK"),
    ("huge", "https"): (None, "200 OK"),
    ("drip", "mysql"): ("db.greeting_timeout", "did not answer the greeting within 1 s"),
    ("drip", "postgresql"): ("db.greeting_timeout", "did not answer the greeting within 1 s"),
    ("drip", "redis"): ("db.greeting_timeout", "did not answer the greeting within 1 s"),
    ("drip", "http"): ("http.timeout", "only part of the response headers within 1 s"),
    ("drip", "https"): ("tls.handshake_timeout", "did not answer the ClientHello within 1 s"),
    ("trickle", "postgresql"): ("db.greeting_timeout", "did not answer the greeting within 1 s"),
    ("trickle", "redis"): ("db.protocol_mismatch", "the answer to PING is not PONG"),
    ("trickle", "http"): ("http.timeout", "only part of the response headers within 1 s"),
    ("trickle", "https"): ("http.timeout", "only part of the response headers within 1 s"),
    ("tls_record", "mysql"): ("db.protocol_mismatch", "a TLS record"),
    ("tls_record", "postgresql"): ("db.protocol_mismatch", "a TLS record"),
    ("tls_record", "redis"): ("db.protocol_mismatch", "a TLS record"),
    ("tls_record", "http"): ("http.tls_required", "answered the plain request with a TLS record"),
    ("tls_record", "https"): ("tls.handshake_failed", "failed"),
    ("endless_headers", "mysql"): ("db.protocol_mismatch", "an HTTP response (HTTP/1.1 200 OK)"),
    ("endless_headers", "postgresql"): ("db.protocol_mismatch", "an HTTP response"),
    ("endless_headers", "redis"): ("db.protocol_mismatch", "an HTTP response"),
    ("endless_headers", "http"): ("http.protocol_error", "whose headers did not end within"),
    ("endless_headers", "https"): ("http.protocol_error", "whose headers did not end within"),
    ("drip_body", "http"): (None, "the body was still arriving at the read timeout"),
    ("drip_body", "https"): (None, "the body was still arriving at the read timeout"),
}


@pytest.mark.parametrize(("behaviour", "flavour"), list(CASES), ids=[f"{b}-{f}" for b, f in CASES])
def test_hostile_peer_gets_a_specific_verdict(
    behaviour: Behaviour, flavour: Flavour, pki: Pki
) -> None:
    code, why = CASES[behaviour, flavour]
    report = diagnose(behaviour, flavour, pki)
    # The rung's own budget or cap ended it, never the total deadline.
    assert "diagnosis.deadline" not in report.warning_codes(), report.warnings
    if code is None:
        assert report.ok, report.fault
        app = report.step(ApplicationStep)
        assert app is not None and app.http is not None and app.http.status == 200
        assert why in (app.reason or "")
        if behaviour in ("flood", "huge"):
            # The body read stopped at the 64 KiB cap (plus at most the last chunk read).
            assert app.http.body_bytes is not None
            assert 64 * 1024 <= app.http.body_bytes < 2 * 64 * 1024
        return
    assert report.fault is not None and report.fault.code == code, report.fault
    assert why in _evidence_text(report)


def test_tls_record_claiming_16_mb_names_openssl_reason(pki: Pki) -> None:
    report = diagnose("tls_record", "https", pki)
    tls = report.step(TlsStep)
    assert tls is not None and tls.status == "failed" and tls.failure == "alert"
    assert tls.ssl_reason and tls.peer_bytes and tls.peer_bytes.startswith("16030340")
    assert report.fault is not None and tls.ssl_reason in report.fault.summary


@pytest.mark.parametrize("behaviour", ["flood", "huge", "drip", "trickle", "endless_headers"])
def test_plain_tcp_reads_nothing(behaviour: Behaviour, pki: Pki) -> None:
    """host:port with no well-known port: no application rung, so nothing hostile is read."""
    report = diagnose(behaviour, "tcp", pki)
    assert report.ok and report.target.protocol == "tcp"
    assert report.step(ApplicationStep) is None


def test_tls_record_longer_than_tls_allows(pki: Pki) -> None:
    """A record header claiming 65535 bytes (TLS allows 2^14 + 2048): refused at the header."""
    with hostile_peer("tls_record", "http") as peer:  # plain: the record is the first byte
        report = anyio.run(
            lambda: netprobe.diagnose(
                f"https://127.0.0.1:{peer.port}/",
                timeout=DEADLINE,
                read_timeout=READ_TIMEOUT,
                icmp=False,
                ca_file=pki.ca_file,
            )
        )
    tls = report.step(TlsStep)
    assert report.fault is not None and report.fault.code == "tls.handshake_failed"
    assert tls is not None and tls.peer_bytes and tls.peer_bytes.startswith("160303ffff")
    assert tls.ssl_reason and tls.ssl_reason in report.fault.summary
