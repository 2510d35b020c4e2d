"""TLS rules: every TLS verdict, wherever the TLS was observed.

* the TLS rung's handshake: verify codes, alerts, what the peer sent instead of a
  ServerHello, silence, a close;
* the handshake negotiated inside PostgreSQL's protocol (SSLRequest), and a server that
  offers no TLS while ``sslmode`` requires it;
* an alert after the handshake, on the first read of the HTTP answer (TLS 1.3 servers check
  the client certificate then);
* the warnings: verification turned off, a certificate about to expire.

Decided by the observation's kind (``failure``), OpenSSL's ``verify_code`` (X509_V_ERR_*, see
openssl-verify(1)) and ``SSLError.reason``, never by message text.
"""

from __future__ import annotations

from collections.abc import Callable

from ..describe import (
    cert_name,
    chain_evidence,
    database_evidence,
    days,
    describe_cert,
    verify_evidence,
)
from ..protocols.postgres import ssl_policy
from ..report import Evidence, Fault, ReportWarning
from ..steps import TlsStep
from ._observations import Observations, fault, warning

__all__ = ["cut_handshake", "tls_fault", "tls_warnings"]

# X509_V_ERR_* codes (include/openssl/x509_vfy.h).
_UNABLE_TO_GET_ISSUER_CERT = 2
_CERT_NOT_YET_VALID = 9
_CERT_HAS_EXPIRED = 10
_DEPTH_ZERO_SELF_SIGNED_CERT = 18
_SELF_SIGNED_CERT_IN_CHAIN = 19
_UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
_UNABLE_TO_VERIFY_LEAF_SIGNATURE = 21
_INVALID_CA = 24
_CERT_UNTRUSTED = 27
_HOSTNAME_MISMATCH = 62
_EMAIL_MISMATCH = 63
_IP_ADDRESS_MISMATCH = 64

_UNTRUSTED = frozenset(
    {
        _UNABLE_TO_GET_ISSUER_CERT,
        _DEPTH_ZERO_SELF_SIGNED_CERT,
        _SELF_SIGNED_CERT_IN_CHAIN,
        _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        _UNABLE_TO_VERIFY_LEAF_SIGNATURE,
        _INVALID_CA,
        _CERT_UNTRUSTED,
    }
)

#: Alert (normalised by the probe) -> what it means for the operator.
_ALERT_TEXT: dict[str, str] = {
    "protocol_version": "no TLS version in common (e.g. a TLS 1.3-only server and a client "
    "limited to TLS 1.2, or the reverse)",
    "no_shared_cipher": "no cipher suite in common",
    "handshake_failure": "the server refused the handshake parameters (often no shared "
    "cipher or signature algorithm, or a client certificate it wanted)",
    "insufficient_security": "the server requires stronger ciphers",
    "certificate_required": "the server requires a client certificate (mTLS) and none was sent",
    "bad_certificate": "the server rejected the client certificate (or required one)",
    "unknown_ca": "the server does not trust the CA of the client certificate",
    "certificate_expired": "the server says the client certificate has expired",
    "access_denied": "the server denied access",
    "unrecognized_name": "the server does not know the name sent in SNI",
    "no_application_protocol": "no ALPN protocol in common",
    "internal_error": "the server hit an internal error during the handshake",
}

_ALERT_HINTS: dict[str, str] = {
    "protocol_version": "Compare the TLS versions both sides allow "
    "(ssl_context.minimum_version / maximum_version, the server's ssl_protocols).",
    "no_shared_cipher": "Compare the cipher suites both sides allow.",
    "handshake_failure": "Compare versions, ciphers and whether the server wants a client "
    "certificate (client_cert= / client_key=).",
    "certificate_required": "Pass client_cert= and client_key= (CLI: --client-cert, "
    "--client-key) with a certificate the server's CA issued.",
    "bad_certificate": "Check the client certificate: issued by the CA the server trusts, "
    "valid now, with the clientAuth usage.",
    "unknown_ca": "The client certificate must come from a CA the server trusts.",
    "unrecognized_name": "Check the host name in the target: the server has no certificate for it.",
}


def _expired(obs: Observations, tls: TlsStep) -> Fault:
    bad = [c for c in tls.chain if c.days_left < 0]
    cert = min(bad, key=lambda c: c.days_left) if bad else (tls.chain[0] if tls.chain else None)
    if cert is None:
        summary = f"The certificate of {obs.target.netloc} has expired."
    else:
        which = "The certificate" if cert is tls.chain[0] else "A certificate in the chain"
        summary = (
            f"{which} of {obs.target.netloc} ({cert_name(cert)}) expired "
            f"{days(cert.days_left)} ago, on {cert.not_after:%Y-%m-%d %H:%M} UTC; "
            f"issued by {cert.issuer}."
        )
    return fault(
        "tls.cert_expired",
        summary,
        [verify_evidence(tls), *chain_evidence(tls)],
        [
            "Renew the certificate on the server (and reload it), or check the server's "
            "automatic renewal (certbot, cert-manager).",
            "If the certificate looks valid, check this host's clock.",
        ],
    )


def _not_yet_valid(obs: Observations, tls: TlsStep) -> Fault:
    cert = tls.chain[0] if tls.chain else None
    when = f": it becomes valid on {cert.not_before:%Y-%m-%d %H:%M} UTC" if cert else ""
    return fault(
        "tls.cert_not_yet_valid",
        f"The certificate of {obs.target.netloc} is not valid yet{when}.",
        [verify_evidence(tls), *chain_evidence(tls)],
        ["Check this host's clock (and NTP), then the server's certificate dates."],
    )


def _untrusted(obs: Observations, tls: TlsStep) -> Fault:
    code = tls.verify_code
    chain = tls.chain
    last = chain[-1] if chain else None
    if code == _DEPTH_ZERO_SELF_SIGNED_CERT or (len(chain) == 1 and last and last.self_signed):
        kind = "self_signed"
        why = "it is self-signed"
        hints = [
            "Give the server a certificate from a CA, or trust this very certificate with "
            "ca_file= (CLI --ca-file).",
        ]
    elif code == _SELF_SIGNED_CERT_IN_CHAIN or (last is not None and last.self_signed):
        kind = "unknown_ca"
        why = f"its root CA ({last.subject if last else 'unknown'}) is not trusted here"
        hints = ["Trust that CA with ca_file= (CLI --ca-file), if it is your internal CA."]
    else:
        kind = "unknown_ca_or_incomplete_chain"
        issuer = last.issuer if last else "an unknown issuer"
        why = (
            f"no trusted CA issued {issuer}: either the server does not send the intermediate "
            f"certificate(s) (an incomplete chain), or {issuer} is not trusted here"
        )
        hints = [
            "If the issuer is an intermediate CA, configure the server to send the full chain "
            "(leaf + intermediates), e.g. nginx ssl_certificate with fullchain.pem.",
            "If it is your internal CA, pass its certificate with ca_file= (CLI --ca-file).",
        ]
    cert_text = f" ({describe_cert(chain[0])})" if chain else ""
    return fault(
        "tls.cert_untrusted",
        f"The certificate of {obs.target.netloc} is not trusted: {why}{cert_text}.",
        [
            verify_evidence(tls),
            Evidence(step="tls", observation=f"untrusted because: {kind}", data={"kind": kind}),
            *chain_evidence(tls),
        ],
        hints,
    )


def _mismatch(obs: Observations, tls: TlsStep) -> Fault:
    t = obs.target
    leaf = tls.chain[0] if tls.chain else None
    names = (leaf.dns_names + leaf.ip_addresses) if leaf else []
    held = ", ".join(names) if names else "no subjectAltName at all"
    summary = f"The certificate of {t.netloc} is not valid for {t.host}: it holds {held}."
    hints = ["Use a host name the certificate holds, or reissue the certificate with this name."]
    if t.is_ip:
        summary = (
            f"The certificate of {t.netloc} is not valid for the IP address {t.host}: an IP "
            f"target needs an IP subjectAltName, and the certificate holds {held}."
        )
        hints = [
            "Connect by a host name the certificate holds, or reissue it with an IP SAN "
            f"for {t.host}."
        ]
    return fault(
        "tls.hostname_mismatch",
        summary,
        [verify_evidence(tls), *chain_evidence(tls)],
        hints,
    )


def _alert(obs: Observations, tls: TlsStep) -> Fault:
    alert = tls.alert
    meaning = _ALERT_TEXT.get(alert or "")
    what = meaning or (f"alert {alert}" if alert else (tls.ssl_reason or "unknown reason"))
    return fault(
        "tls.handshake_failed",
        f"The TLS handshake with {obs.target.netloc} failed: {what}.",
        [
            Evidence(
                step="tls",
                observation=f"SSL error {tls.ssl_reason or tls.failure}"
                + (f" (alert {alert})" if alert else ""),
                data={"ssl_reason": tls.ssl_reason, "alert": alert},
            )
        ],
        [_ALERT_HINTS[alert]] if alert in _ALERT_HINTS else [],
    )


def _not_tls(obs: Observations, tls: TlsStep) -> Fault:
    sent = tls.peer_sent or "something else"
    hint = "The port speaks another protocol: check the port, or use the plain scheme."
    if sent.startswith("an HTTP/2") and obs.target.protocol == "grpc":
        service = f"/{obs.target.path}" if obs.target.path else ""
        hint = (
            f"The port serves cleartext HTTP/2 (gRPC without TLS): use "
            f"grpc://{obs.target.netloc}{service}, or the server's TLS port."
        )
    elif sent.startswith("an HTTP"):
        hint = (
            f"The port serves plain HTTP: use http://{obs.target.netloc}, or the server's TLS port."
        )
    return fault(
        "tls.not_tls",
        f"{obs.target.netloc} does not speak TLS: it answered the ClientHello with {sent}.",
        [
            Evidence(
                step="tls",
                observation=f"first bytes back: {sent}",
                data={"peer_bytes": tls.peer_bytes, "ssl_reason": tls.ssl_reason},
            )
        ],
        [hint],
    )


def _timeout(obs: Observations, tls: TlsStep) -> Fault:
    waited = f"within {obs.options.read_timeout:g} s (read_timeout)"
    return _unanswered(obs, waited, tls.duration_ms)


def cut_handshake(obs: Observations) -> Fault:
    """The total deadline ended the diagnosis during the handshake (classify/deadline.py)."""
    return _unanswered(obs, "before the total deadline", None)


def _unanswered(obs: Observations, waited: str, duration_ms: float | None) -> Fault:
    return fault(
        "tls.handshake_timeout",
        f"{obs.target.netloc} accepted the TCP connection but did not answer the ClientHello "
        f"{waited}.",
        [
            Evidence(
                step="tls",
                observation="connected (ESTABLISHED), ClientHello sent, no ServerHello back",
                data={"duration_ms": duration_ms},
            )
        ],
        [
            "The process behind the port may not speak TLS (it waits for the client to talk "
            "first, as plain HTTP servers and databases do), or it is stuck.",
            "A middlebox that swallows TLS (a proxy, a DPI firewall) looks the same.",
        ],
    )


def _closed(obs: Observations, tls: TlsStep) -> Fault:
    err = tls.error
    how = "reset" if err is not None and err.errno_name == "ECONNRESET" else "closed"
    return fault(
        "l7.connection_closed",
        f"{obs.target.netloc} accepted the TCP connection, then {how} it during the TLS "
        "handshake, before answering.",
        [
            Evidence(
                step="tls",
                observation=f"{how} during the handshake: {err.message if err else ''}",
                data={"errno": err.errno_name if err else None},
            )
        ],
        [
            "The server may reject this client (an allow-list, a TLS terminator with no "
            "certificate for this SNI), or may be overloaded and shedding connections.",
        ],
    )


def _error(obs: Observations, tls: TlsStep) -> Fault:
    msg = tls.reason or (tls.error.message if tls.error else "unknown")
    return fault("tls.handshake_failed", f"TLS with {obs.target.netloc} failed: {msg}.")


def _verify(obs: Observations, tls: TlsStep) -> Fault:
    code = tls.verify_code
    if code == _CERT_HAS_EXPIRED:
        return _expired(obs, tls)
    if code == _CERT_NOT_YET_VALID:
        return _not_yet_valid(obs, tls)
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH, _EMAIL_MISMATCH):
        return _mismatch(obs, tls)
    if code in _UNTRUSTED:
        return _untrusted(obs, tls)
    return fault(
        "tls.cert_untrusted",
        f"The certificate of {obs.target.netloc} did not verify: "
        f"{tls.verify_message or 'unknown reason'}.",
        [verify_evidence(tls), *chain_evidence(tls)],
    )


#: failure kind -> rule.
_RULES: dict[str, Callable[[Observations, TlsStep], Fault]] = {
    "verify": _verify,
    "alert": _alert,
    "not_tls": _not_tls,
    "timeout": _timeout,
    "closed": _closed,
    "error": _error,
}


def tls_fault(obs: Observations) -> Fault | None:
    """The ``tls.*`` fault (or ``l7.connection_closed`` during the handshake), or None."""
    tls = obs.tls
    if tls is not None and tls.status == "failed":
        return _RULES.get(tls.failure or "error", _error)(obs, tls)
    app = obs.application
    if app is None or app.status != "failed":
        return None
    if app.http is not None and app.http.failure == "tls_alert":
        return _alert_after_handshake(obs, app.http.tls_alert, "when reading the response")
    if app.grpc is not None and app.grpc.failure == "tls_alert":
        return _alert_after_handshake(obs, app.grpc.tls_alert, "during the gRPC exchange")
    db = app.database
    if db is not None and db.outcome == "tls_failed" and db.tls is None:
        return fault(
            "tls.not_tls",
            f"{obs.target.netloc}: {db.error_message or 'TLS could not be negotiated'}.",
            database_evidence(db),
            ["Check sslmode and the server's ssl setting."],
        )
    return None


def _alert_after_handshake(obs: Observations, tls_alert: str | None, when: str) -> Fault:
    alert = tls_alert or "unknown"
    meaning = _ALERT_TEXT.get(alert, f"alert {alert}")
    return fault(
        "tls.handshake_failed",
        f"{obs.target.netloc} completed the TLS handshake, then refused the connection with a "
        f"TLS alert: {meaning}.",
        [
            Evidence(
                step="application",
                observation=f"TLS alert {alert} {when} (TLS 1.3 servers check the client "
                "certificate after the handshake)",
                data={"alert": alert},
            )
        ],
        [_ALERT_HINTS[alert]] if alert in _ALERT_HINTS else [],
    )


def _unverified_by_sslmode(obs: Observations) -> bool:
    """PostgreSQL's sslmode prefer / require encrypt without verifying, as libpq does: the
    diagnosis checks what the client checks, so that is no warning (an expired or expiring
    certificate still is, below)."""
    return obs.target.protocol == "postgresql" and not ssl_policy(obs.target.params).verify


def tls_warnings(obs: Observations) -> list[ReportWarning]:
    """Verification turned off; a certificate of the chain about to expire."""
    tls = obs.tls
    if tls is None or tls.status == "skipped":
        return []
    out: list[ReportWarning] = []
    if not tls.verified and not _unverified_by_sslmode(obs):
        out.append(
            warning(
                "tls.verify_disabled",
                "Certificate verification was off for this diagnosis (verify=False / "
                "--insecure): an untrusted, expired or wrong-name certificate would pass.",
            )
        )
    limit = obs.options.expiry_warning_days
    if tls.status == "ok":
        soon = [c for c in tls.chain if c.days_left <= limit]
        if soon:
            c = min(soon, key=lambda c: c.days_left)
            state = (
                f"expired {days(c.days_left)} ago"
                if c.days_left < 0
                else f"expires in {days(c.days_left)}"
            )
            out.append(
                warning(
                    "tls.cert_expiring_soon",
                    f"The certificate {cert_name(c)} {state}, on "
                    f"{c.not_after:%Y-%m-%d %H:%M} UTC (threshold {limit:g} days).",
                )
            )
    return out
