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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..describe import (
    cert_name,
    chain_evidence,
    database_evidence,
    days,
    describe_cert,
    issuer_name,
    response_evidence,
    verify_evidence,
)
from ..protocols.postgres import ssl_policy
from ..protocols.sniff import looks_like_tls
from ..report import Evidence, Fault, ReportWarning
from ..steps import CertificateInfo, FollowUpHandshake, TlsStep
from ._observations import Observations, fault, warning

__all__ = [
    "chain_warnings",
    "client_cert_required",
    "clock_skew",
    "cut_handshake",
    "incomplete_chain",
    "tls_fault",
    "tls_range",
    "tls_required",
    "tls_warnings",
]

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

#: The issuer of a certificate was found nowhere (the server did not send it, the store
#: does not hold it).
_ISSUER_NOT_FOUND = frozenset(
    {
        _UNABLE_TO_GET_ISSUER_CERT,
        _UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        _UNABLE_TO_VERIFY_LEAF_SIGNATURE,
    }
)

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
    evidence = [verify_evidence(tls), *chain_evidence(tls)]
    if t.is_ip:
        summary = (
            f"The certificate of {t.netloc} is not valid for the IP address {t.host}: an IP "
            f"target needs an IP subjectAltName, and the certificate holds {held}."
        )
        hints = [
            "Connect by a host name the certificate holds, or reissue it with an IP SAN "
            f"for {t.host}."
        ]
        by_name = _sni_answers(tls)
        other = next((f for f in by_name if leaf is None or f.leaf.sha256 != leaf.sha256), None)
        if other is not None:
            summary += (
                f" The server chooses its certificate by SNI: an IP target sends no server "
                f"name (RFC 6066), so it got the server's default certificate; with SNI "
                f"{other.server_name} the server presents {describe_cert(other.leaf)}."
            )
            hints = [f"Connect by name: {_by_name(obs, other.server_name)}."]
        elif by_name:
            same = by_name[0].server_name
            summary += f" With SNI {same} the server presents this same certificate."
            hints = [f"Connect by a name the certificate holds: {_by_name(obs, same)}."]
        evidence += [_follow_up_evidence(f) for f in tls.follow_ups]
    return fault("tls.hostname_mismatch", summary, evidence, hints)


@dataclass(frozen=True)
class _NamedAnswer:
    server_name: str
    leaf: CertificateInfo


def _sni_answers(tls: TlsStep) -> list[_NamedAnswer]:
    """The certificates the server presented to the follow-up handshakes with a server name."""
    return [
        _NamedAnswer(f.server_name, f.leaf)
        for f in tls.follow_ups
        if f.purpose == "sni" and f.outcome == "ok" and f.leaf is not None and f.server_name
    ]


def _by_name(obs: Observations, name: str) -> str:
    t = obs.target
    if t.protocol == "http":
        return f"{t.scheme}://{name}:{t.port}{t.path or '/'}"
    return f"{name}:{t.port}"


def _follow_up_evidence(f: FollowUpHandshake) -> Evidence:
    """One follow-up handshake as evidence: what was offered, what came back."""
    sni = f"SNI {f.server_name}" if f.server_name else "no SNI"
    offered = f", {f.offered}" if f.offered else ""
    if f.outcome == "ok":
        got = f"completed: {f.version} {f.cipher or ''}".rstrip()
        if f.leaf is not None and f.purpose == "sni":
            got += f"; {describe_cert(f.leaf)}"
        if f.server_date is not None:
            got += f"; Date: {f.server_date:%Y-%m-%d %H:%M:%S} UTC"
    elif f.outcome == "alert":
        got = f"refused with the TLS alert {f.alert}"
    elif f.outcome == "not_tls":
        got = f"answered with {f.peer_sent}"
    else:
        got = f.outcome.replace("_", " ")
    return Evidence(
        step="tls",
        observation=f"follow-up handshake on a fresh connection ({sni}{offered}): {got}",
        data={
            "purpose": f.purpose,
            "address": f.address,
            "server_name": f.server_name,
            "offered": f.offered,
            "outcome": f.outcome,
            "version": f.version,
            "cipher": f.cipher,
            "alert": f.alert,
        },
    )


def _alert(obs: Observations, tls: TlsStep) -> Fault:
    alert = tls.alert
    if alert == "protocol_version":
        return _protocol_version(obs, tls)
    cipher = next((f for f in tls.follow_ups if f.purpose == "cipher"), None)
    if cipher is not None and cipher.outcome == "ok":
        return _no_shared_cipher(obs, tls, cipher)
    if alert == "unrecognized_name" and obs.target.is_ip:
        return _sni_required(obs, tls)
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
    if code in (_CERT_HAS_EXPIRED, _CERT_NOT_YET_VALID):
        skew = clock_skew(obs, tls)
        if skew is not None:
            return skew
    if code == _CERT_HAS_EXPIRED:
        return _expired(obs, tls)
    if code == _CERT_NOT_YET_VALID:
        return _not_yet_valid(obs, tls)
    if code in (_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH, _EMAIL_MISMATCH):
        return _mismatch(obs, tls)
    if code in _ISSUER_NOT_FOUND:
        incomplete = incomplete_chain(obs, tls)
        if incomplete is not None:
            return incomplete
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
    required = client_cert_required(obs)
    if required is not None:
        return required
    if tls is not None and tls.status == "failed":
        return _RULES.get(tls.failure or "error", _error)(obs, tls)
    app = obs.application
    if app is None or app.status != "failed":
        return None
    plain = tls_required(obs)
    if plain is not None:
        return plain
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
        soon = sorted(
            ((i, c) for i, c in enumerate(tls.chain) if c.days_left <= limit),
            key=lambda ic: ic[1].days_left,
        )
        if soon:
            parts = []
            for i, c in soon:
                state = (
                    f"expired {days(c.days_left)} ago"
                    if c.days_left < 0
                    else f"expires in {days(c.days_left)}"
                )
                parts.append(
                    f"{_role(tls, i)} {cert_name(c)} {state}, on {c.not_after:%Y-%m-%d %H:%M} UTC"
                )
            text = "; ".join(parts)
            out.append(
                warning(
                    "tls.cert_expiring_soon",
                    f"{text[:1].upper()}{text[1:]} (threshold {limit:g} days).",
                )
            )
        out.extend(chain_warnings(tls))
    return out


def _role(tls: TlsStep, i: int) -> str:
    """``the certificate`` (the leaf), ``the intermediate CA``, ``the root CA``, as sent."""
    cert = tls.chain[i]
    if i == 0:
        return "the certificate"
    if cert.self_signed:
        return f"the root CA (chain[{i}])"
    return f"the intermediate CA (chain[{i}])"


def _as_presented(tls: TlsStep) -> str:
    return "; ".join(
        f"[{i}] {cert_name(c)} (issued by {issuer_name(c)})" for i, c in enumerate(tls.chain)
    )


def chain_warnings(tls: TlsStep) -> list[ReportWarning]:
    """A chain sent out of order (or with certificates outside its path), and a root CA sent
    with it, each with the chain as presented. RFC 8446 §4.4.2: each certificate should
    certify the one before it; the root "MAY be omitted" (the client has it). OpenSSL and
    browsers reorder and ignore; strict or older stacks (Java before 8u261, some embedded
    TLS libraries) fail on the first, and every handshake carries the extra bytes."""
    chain = tls.chain
    out: list[ReportWarning] = []
    if len(chain) < 2:
        return out
    broken = [i for i in range(1, len(chain)) if chain[i].subject != chain[i - 1].issuer]
    if broken:
        i = broken[0]
        expected = chain[i - 1].issuer
        elsewhere = next((j for j, c in enumerate(chain) if c.subject == expected), None)
        why = (
            f"chain[{i}] should be the issuer of chain[{i - 1}] ({expected}), which comes at "
            f"chain[{elsewhere}]"
            if elsewhere is not None
            else f"chain[{i}] ({chain[i].subject}) does not issue chain[{i - 1}]: it is not "
            "part of its path"
        )
        out.append(
            warning(
                "tls.chain_misordered",
                f"The server sends its certificate chain out of order: {why}. As presented: "
                f"{_as_presented(tls)}. OpenSSL and browsers reorder it; strict clients fail.",
            )
        )
    last = chain[-1]
    if last.self_signed:
        out.append(
            warning(
                "tls.root_sent",
                f"The server sends its root CA ({cert_name(last)}) as chain[{len(chain) - 1}]: "
                "the trust anchor comes from the client's own store (RFC 8446 §4.4.2), so it "
                f"only adds bytes to every handshake. As presented: {_as_presented(tls)}.",
            )
        )
    return out


# -- Client certificates (mutual TLS) ---------------------------------------------------------

#: Alerts a server sends about the client's certificate (RFC 8446 §6.2, RFC 5246 §7.2.2): the
#: client's certificate is the only one a server judges. ``certificate_required`` is TLS
#: 1.3's "none was sent"; the others refuse the one that was.
_CLIENT_CERT_ALERTS = frozenset(
    {
        "certificate_required",
        "bad_certificate",
        "unknown_ca",
        "certificate_expired",
        "certificate_revoked",
        "certificate_unknown",
        "unsupported_certificate",
    }
)
#: What each of them says about the certificate that was sent.
_REFUSED_BECAUSE: dict[str, str] = {
    "unknown_ca": "the server does not trust the CA that issued it",
    "certificate_expired": "the server says it has expired",
    "certificate_revoked": "the server says it was revoked",
    "unsupported_certificate": "the server does not support its type",
    "bad_certificate": "the server rejected it",
    "certificate_unknown": "the server rejected it",
}
#: PostgreSQL's invalid_authorization_specification: a pg_hba.conf line with
#: ``clientcert=verify-ca|verify-full`` (or the ``cert`` method) refuses a login without an
#: acceptable client certificate with it, and a message about the certificate (auth.c:
#: "connection requires a valid client certificate", "certificate authentication failed
#: for user ..."; the same SQLSTATE without a certificate in the message is another pg_hba
#: refusal, db.access_denied). A server with lc_messages other than English reads as that.
_PG_INVALID_AUTHORIZATION = "28000"
#: nginx (ssl_verify_client on) completes the handshake and answers HTTP 400 with these
#: titles (ngx_http_special_response.c); with error_page it may show its own 495 / 496.
_NGINX_NO_CERT = "No required SSL certificate was sent"
_NGINX_CERT_ERROR = "The SSL certificate error"


@dataclass(frozen=True)
class _Refusal:
    """How the server said that it wants a (valid) client certificate."""

    how: str
    evidence: Evidence
    sent: bool | None  # what the server's own words say, when they say it
    alert: str | None = None
    weak: bool = False


def _refusal(obs: Observations) -> _Refusal | None:
    tls = obs.tls
    if tls is not None and tls.status == "failed":
        alert = tls.alert
        if tls.failure == "alert" and (
            alert in _CLIENT_CERT_ALERTS
            or (alert == "handshake_failure" and tls.client_cert_requested)
        ):
            when = "after the handshake" if tls.after_handshake else "during the handshake"
            return _Refusal(
                f"it refused the connection {when} with the TLS alert {alert}",
                Evidence(
                    step="tls",
                    observation=f"TLS alert {alert} {when}",
                    data={"alert": alert, "ssl_reason": tls.ssl_reason},
                ),
                None,
                alert,
            )
        if tls.failure == "closed" and tls.after_handshake and _asked_none_sent(tls):
            return _closed_without_alert(tls, "tls")
        return None
    app = obs.application
    if app is None or app.status != "failed":
        return None
    http = app.http
    # The first read after a TLS 1.3 handshake is the application's (an HTTP response, a gRPC
    # answer): a server that checks the client certificate refuses there.
    late_alert = (
        http.tls_alert
        if http is not None and http.failure == "tls_alert"
        else app.grpc.tls_alert
        if app.grpc is not None and app.grpc.failure == "tls_alert"
        else None
    )
    if late_alert in _CLIENT_CERT_ALERTS:
        return _Refusal(
            f"it completed the handshake, then refused the connection with the TLS alert "
            f"{late_alert} when the answer was read",
            Evidence(
                step="application",
                observation=f"TLS alert {late_alert} on the first read after the handshake "
                "(TLS 1.3 servers check the client certificate then)",
                data={"alert": late_alert},
            ),
            None,
            late_alert,
        )
    if http is not None and http.status in (400, 495, 496) and http.body_preview:
        title = next(
            (t for t in (_NGINX_NO_CERT, _NGINX_CERT_ERROR) if t in http.body_preview), None
        )
        if title is not None:
            return _Refusal(
                f"it completed the handshake, then answered HTTP {http.status} "
                f"'{title}' (nginx's words)",
                response_evidence(http),
                title == _NGINX_CERT_ERROR,
            )
    if (
        http is not None
        and http.failure == "closed"
        and not http.peer_bytes
        and tls is not None
        and _asked_none_sent(tls)
    ):
        return _closed_without_alert(tls, "application")
    db = app.database
    if (
        db is not None
        and db.sqlstate == _PG_INVALID_AUTHORIZATION
        and "certificate" in (db.error_message or "")
        and tls is not None
    ):
        return _Refusal(
            f"it completed the handshake, then refused the login with {db.sqlstate} "
            f"'{db.error_message}' (PostgreSQL's pg_hba.conf clientcert / cert method)",
            Evidence(
                step="application",
                observation=f"PostgreSQL sent error {db.sqlstate} {db.error_message} during "
                f"the {db.phase}",
                data={"sqlstate": db.sqlstate, "error_message": db.error_message},
            ),
            None,
        )
    if db is not None and db.tls_alert in _CLIENT_CERT_ALERTS:
        return _Refusal(
            f"it completed the handshake, then refused the connection with the TLS alert "
            f"{db.tls_alert} at the first read of the {db.protocol} exchange",
            Evidence(
                step="application",
                observation=f"TLS alert {db.tls_alert} during the {db.phase}",
                data={"alert": db.tls_alert},
            ),
            None,
            db.tls_alert,
        )
    return None


def _asked_none_sent(tls: TlsStep) -> bool:
    """The server asked for a client certificate and this client had none to send: a close
    right after such a handshake, without an alert, is most likely the refusal (a close after
    a certificate was sent says nothing about it)."""
    return bool(tls.client_cert_requested) and tls.client_cert_sent is False


def _closed_without_alert(tls: TlsStep, step: str) -> _Refusal:
    return _Refusal(
        "it asked for a client certificate during the handshake, then closed the connection "
        "right after it without an alert and without an answer (as grpcio does): the "
        "evidence is indirect, no alert said why",
        Evidence(
            step=step,
            observation="closed right after the handshake, no alert, no byte of an answer",
            data={"client_cert_requested": tls.client_cert_requested},
        ),
        None,
        weak=True,
    )


def client_cert_required(obs: Observations) -> Fault | None:
    """``tls.client_cert_required``: the server wants a client certificate it accepts, however
    it said so (an alert in or after the handshake, nginx's HTTP 400, a close right after a
    handshake in which it asked for one), saying whether one was sent and, when one was,
    what the server could hold against it."""
    refusal = _refusal(obs)
    if refusal is None:
        return None
    t = obs.target
    tls = obs.tls
    cert = tls.client_cert if tls is not None else None
    sent = refusal.sent
    if sent is None and tls is not None:
        sent = tls.client_cert_sent
    if sent is None and refusal.alert == "certificate_required":
        sent = False
    if sent is None and cert is not None and not refusal.weak:
        sent = True  # OpenSSL sends the configured certificate whenever it is asked for one
    if sent is None and obs.options.ssl_context is None and obs.options.client_cert is None:
        sent = False
    evidence = [refusal.evidence]
    if tls is not None:
        evidence.append(_client_cert_evidence(tls, sent))
    if sent:
        problems = [_REFUSED_BECAUSE[refusal.alert]] if refusal.alert in _REFUSED_BECAUSE else []
        if cert is not None and cert.days_left < 0:
            problems.append(f"it expired {days(cert.days_left)} ago")
        what = f" ({describe_cert(cert)})" if cert is not None else ""
        why = f": {'; '.join(problems)}" if problems else ""
        summary = (
            f"{t.netloc} requires a client certificate it accepts, and did not accept the one "
            f"sent{what}{why}; {refusal.how}."
        )
        hints = [
            "Check the client certificate: issued by a CA the server trusts (nginx "
            "ssl_client_certificate, HAProxy ca-file), valid now, with the clientAuth usage.",
        ]
    elif sent is False:
        summary = (
            f"{t.netloc} requires a client certificate (mutual TLS) and none was sent: "
            f"{refusal.how}."
        )
        hints = [
            "Pass client_cert= and client_key= (CLI --client-cert, --client-key) with a "
            "certificate issued by the CA the server trusts.",
        ]
    else:
        summary = (
            f"{t.netloc} requires a client certificate it accepts: {refusal.how}. Whether this "
            "client sent one is not known (a caller's ssl_context)."
        )
        hints = [
            "Check the certificate loaded in the ssl_context: issued by a CA the server "
            "trusts, valid now."
        ]
    if cert is not None:
        evidence.append(
            Evidence(
                step="tls",
                observation=f"client certificate configured: {describe_cert(cert)}",
                data={
                    "subject": cert.subject,
                    "issuer": cert.issuer,
                    "not_after": cert.not_after.isoformat(),
                    "days_left": cert.days_left,
                },
            )
        )
    return fault("tls.client_cert_required", summary, evidence, hints)


def _client_cert_evidence(tls: TlsStep, sent: bool | None) -> Evidence:
    asked = {True: "yes", False: "no", None: "not known"}[tls.client_cert_requested]
    answered = {True: "a certificate", False: "none", None: "not known"}[sent]
    return Evidence(
        step="tls",
        observation=f"client certificate requested by the server: {asked}; sent: {answered}",
        data={"client_cert_requested": tls.client_cert_requested, "client_cert_sent": sent},
    )


# -- Versions, suites and server names ------------------------------------------------------------


def tls_range(versions: Sequence[str]) -> str:
    """``TLS 1.2-1.3``, ``only TLS 1.0``, ``TLS 1.0, 1.2``: a set of versions, in words."""
    numbers = [_VERSION_NUMBERS[v] for v in _VERSION_NUMBERS if v in versions]
    if not numbers:
        return "no TLS version"
    if len(numbers) == 1:
        return f"only TLS {numbers[0]}"
    order = list(_VERSION_NUMBERS.values())
    if order.index(numbers[-1]) - order.index(numbers[0]) == len(numbers) - 1:
        return f"TLS {numbers[0]}-{numbers[-1]}"
    return "TLS " + ", ".join(numbers)


_VERSION_NUMBERS = {"TLSv1": "1.0", "TLSv1.1": "1.1", "TLSv1.2": "1.2", "TLSv1.3": "1.3"}


def _protocol_version(obs: Observations, tls: TlsStep) -> Fault:
    t = obs.target
    client = list(tls.client_versions)
    probes = [f for f in tls.follow_ups if f.purpose == "server_version"]
    server = [f.version for f in probes if f.outcome == "ok" and f.version]
    mine = f"this client allows {tls_range(client)}" if client else "this client's range"
    if server:
        summary = (
            f"{t.netloc} and this client have no TLS version in common: the server speaks "
            f"{tls_range(server)}; {mine}."
        )
    elif probes:
        summary = (
            f"{t.netloc} refused the handshake for its TLS version ({mine}), and completed "
            "none of TLS 1.0-1.3 offered one at a time: its range could not be learnt."
        )
    else:
        summary = f"{t.netloc} refused the handshake for its TLS version ({mine})."
    order = list(_VERSION_NUMBERS)
    hints: list[str] = []
    if server and client and order.index(server[-1]) < order.index(client[0]):
        hints = [
            "The server is older than this client accepts: enable TLS 1.2 or 1.3 on it "
            "(nginx ssl_protocols TLSv1.2 TLSv1.3; HAProxy ssl-min-ver TLSv1.2).",
            "Only as a stopgap: a client ssl_context with minimum_version "
            f"ssl.TLSVersion.{server[-1].replace('.', '_')} and ciphers 'DEFAULT:@SECLEVEL=0' "
            "talks to it (insecure).",
        ]
    elif server and client and order.index(server[0]) > order.index(client[-1]):
        hints = [
            f"This client stops at {client[-1]}: raise its maximum_version, or enable "
            f"{client[-1]} on the server."
        ]
    else:
        hints = [_ALERT_HINTS["protocol_version"]]
    evidence = [
        Evidence(
            step="tls",
            observation=f"the server refused the handshake: {tls.ssl_reason or 'protocol_version'}"
            + f"; this client offered {tls_range(client)}",
            data={
                "ssl_reason": tls.ssl_reason,
                "alert": tls.alert,
                "client_versions": ", ".join(client),
                "server_versions": ", ".join(server),
            },
        ),
        *(_follow_up_evidence(f) for f in probes),
    ]
    return fault("tls.protocol_version", summary, evidence, hints)


def _no_shared_cipher(obs: Observations, tls: TlsStep, cipher: FollowUpHandshake) -> Fault:
    t = obs.target
    return fault(
        "tls.handshake_failed",
        f"The TLS handshake with {t.netloc} failed: no cipher suite in common. When offered "
        f"every suite this OpenSSL has, the server picks {cipher.cipher} ({cipher.version}), "
        "which this client's cipher list leaves out.",
        [
            Evidence(
                step="tls",
                observation=f"the server refused the handshake: {tls.ssl_reason or tls.alert}",
                data={"ssl_reason": tls.ssl_reason, "alert": tls.alert},
            ),
            _follow_up_evidence(cipher),
        ],
        [
            "Enable a modern suite on the server (ECDHE with AES-GCM or ChaCha20-Poly1305); "
            f"{cipher.cipher} is one this client's default list leaves out.",
            "If this client must talk to the server as it is: an ssl_context whose "
            f"set_ciphers() includes {cipher.cipher}.",
        ],
    )


def _sni_required(obs: Observations, tls: TlsStep) -> Fault:
    t = obs.target
    by_name = _sni_answers(tls)
    summary = (
        f"The TLS handshake with {t.netloc} failed: the server requires a server name (SNI) "
        f"and refuses a handshake without one (alert unrecognized_name); an IP target sends "
        "none (RFC 6066)."
    )
    hints = ["Connect by the host name the server serves, not by its IP address."]
    if by_name:
        name = by_name[0].server_name
        summary += f" With SNI {name} the handshake completes."
        hints = [f"Connect by name: {_by_name(obs, name)}."]
    return fault(
        "tls.handshake_failed",
        summary,
        [
            Evidence(
                step="tls",
                observation="TLS alert unrecognized_name to a ClientHello without SNI",
                data={"alert": tls.alert, "ssl_reason": tls.ssl_reason},
            ),
            *(_follow_up_evidence(f) for f in tls.follow_ups),
        ],
        hints,
    )


# -- Plain HTTP to a TLS port ---------------------------------------------------------------------

#: nginx's answer to plain HTTP on an ``ssl`` listener (ngx_http_special_response.c).
_NGINX_PLAIN_HTTP = "The plain HTTP request was sent to HTTPS port"


def tls_required(obs: Observations) -> Fault | None:
    """``http.tls_required``: a plain ``http://`` request to a port that speaks TLS, however
    the server showed it: nginx's 400 page, a TLS record instead of an HTTP answer, or a
    close without a byte while a ClientHello on a fresh connection is answered."""
    t = obs.target
    app = obs.application
    if t.tls or app is None or app.http is None or app.status != "failed":
        return None
    http = app.http
    peer = bytes.fromhex(http.peer_bytes) if http.peer_bytes else b""
    hello = http.tls_follow_up
    if http.status == 400 and http.body_preview and _NGINX_PLAIN_HTTP in http.body_preview:
        how = f"it answered 400 '{_NGINX_PLAIN_HTTP}' (nginx's words)"
        evidence = [response_evidence(http)]
    elif http.failure == "protocol" and looks_like_tls(peer):
        how = f"it answered the plain request with {http.peer_sent or 'a TLS record'}"
        evidence = [
            Evidence(
                step="application",
                observation=f"first bytes back: {http.peer_sent}",
                data={"peer_bytes": http.peer_bytes},
            )
        ]
    elif http.failure == "closed" and hello is not None and hello.outcome in ("ok", "alert"):
        answer = (
            f"a ServerHello ({hello.version})"
            if hello.outcome == "ok"
            else f"the TLS alert {hello.alert}"
        )
        how = (
            "it closed the connection after the plain request without sending a byte, and a "
            f"TLS ClientHello on a fresh connection got {answer}"
        )
        evidence = [
            Evidence(
                step="application",
                observation=f"{http.method} {http.url} sent; closed without a byte",
                data={"error": app.error.message if app.error else None},
            ),
            _follow_up_evidence(hello),
        ]
    else:
        return None
    https = f"https://{t.netloc}{t.path or '/'}"
    return fault(
        "http.tls_required",
        f"{t.netloc} expects TLS and this request was plain HTTP: {how}. Use {https}.",
        evidence,
        [f"Use {https} (the port speaks TLS), or the server's plain-HTTP port."],
    )


# -- Incomplete chains ----------------------------------------------------------------------------


def incomplete_chain(obs: Observations, tls: TlsStep) -> Fault | None:
    """``tls.incomplete_chain``: the leaf's issuer is neither in what the server sent nor a
    trust anchor here, while the leaf names where to fetch it (AIA caIssuers, RFC 5280
    §4.2.2.1) or this host's store holds it as an intermediate: the issuer is an intermediate
    CA the server should have sent. An unknown or self-signed root stays
    ``tls.cert_untrusted``."""
    chain = tls.chain
    if not chain:
        return None
    leaf = chain[0]
    if leaf.self_signed or any(c.subject == leaf.issuer for c in chain[1:]):
        return None
    stored = tls.issuer_in_store
    urls = leaf.ca_issuers
    if not urls and (stored is None or stored.self_signed):
        return None
    t = obs.target
    sends = "sends only its own certificate" if len(chain) == 1 else "does not send the issuer"
    where = f" (the certificate names it: {urls[0]})" if urls else ""
    summary = (
        f"{t.netloc} {sends} ({cert_name(leaf)}), without the intermediate CA certificate that "
        f"issued it, {leaf.issuer}{where}: browsers fetch the missing intermediate, Python "
        "clients and most SDKs do not, so the chain does not verify here."
    )
    evidence = [verify_evidence(tls), *chain_evidence(tls)]
    if urls:
        evidence.append(
            Evidence(
                step="tls",
                observation=f"the leaf's Authority Information Access names its issuer's "
                f"certificate at {', '.join(urls)} (not fetched)",
                data={"ca_issuers": ", ".join(urls)},
            )
        )
    if stored is not None:
        evidence.append(
            Evidence(
                step="tls",
                observation=f"this host's trust store holds {stored.subject} as an intermediate "
                f"(issued by {stored.issuer}), not as a trust anchor",
                data={"subject": stored.subject, "issuer": stored.issuer},
            )
        )
    return fault(
        "tls.incomplete_chain",
        summary,
        evidence,
        [
            "Configure the server with the full chain, its certificate followed by the "
            "intermediate(s): nginx ssl_certificate fullchain.pem (not cert.pem); HAProxy crt "
            "with the chain appended; certbot and cert-manager write fullchain.pem.",
            "Check with: openssl s_client -connect HOST:PORT -showcerts (one certificate "
            "shown means the chain is missing).",
        ],
    )


# -- This host's clock ---------------------------------------------------------------------------

#: Below this, a difference between the server's Date and this host's clock is a rounding
#: (Date has a one-second resolution) or a request's own latency, not a wrong clock.
_MIN_SKEW_S = 60.0


def clock_skew(obs: Observations, tls: TlsStep) -> Fault | None:
    """``local.clock_skew``: the certificate reads as expired or not yet valid only by this
    host's clock. Proof, best first: the server's HTTP ``Date`` (read over an unverified
    follow-up handshake) differs from this host's clock and the chain is valid by it; or,
    without HTTP, every certificate of the chain the server sent starts after this host's
    now (a CA hierarchy issued entirely in the future is implausible: this host is behind)."""
    chain = tls.chain
    if not chain:
        return None
    clock = next(
        (
            f
            for f in tls.follow_ups
            if f.purpose == "server_clock" and f.server_date and f.local_time
        ),
        None,
    )
    if clock is not None and clock.server_date and clock.local_time:
        server, here = clock.server_date, clock.local_time
        skew = (here - server).total_seconds()
        if abs(skew) < _MIN_SKEW_S or not all(c.not_before <= server <= c.not_after for c in chain):
            return None
        return _skew_fault(
            obs, tls, here, server, skew, measured=True, evidence=[_follow_up_evidence(clock)]
        )
    now = tls.local_time
    if now is None or len(chain) < 2 or not all(c.not_before > now for c in chain):
        return None
    start = min(c.not_before for c in chain)
    return _skew_fault(
        obs, tls, now, start, (now - start).total_seconds(), measured=False, evidence=[]
    )


def _skew_fault(
    obs: Observations,
    tls: TlsStep,
    here: datetime,
    there: datetime,
    skew: float,
    *,
    measured: bool,
    evidence: list[Evidence],
) -> Fault:
    t = obs.target
    way = "ahead" if skew > 0 else "behind"
    amount = days(abs(skew) / 86400.0) if abs(skew) >= 3600 else f"{abs(skew) / 60:.0f} minutes"
    leaf = tls.chain[0]
    if measured:
        summary = (
            f"This host's clock is wrong, not the certificate of {t.netloc}: this host reads "
            f"{here:%Y-%m-%d %H:%M} UTC, the server's clock (its HTTP Date header) "
            f"{there:%Y-%m-%d %H:%M} UTC, {amount} {'earlier' if skew > 0 else 'later'}. By "
            f"the server's clock the certificate is valid (until {leaf.not_after:%Y-%m-%d}); "
            f"by this host's it is {_window(leaf)}."
        )
    else:
        summary = (
            f"This host's clock is at least {amount} behind: it reads {here:%Y-%m-%d %H:%M} "
            f"UTC, and every certificate {t.netloc} sends was issued later (the earliest "
            f"starts {there:%Y-%m-%d %H:%M} UTC); a server cannot present certificates that do "
            "not exist yet. No server clock was read (not HTTP): the evidence is the chain's "
            "dates."
        )
    return fault(
        "local.clock_skew",
        summary,
        [
            Evidence(
                step="local",
                observation=f"this host's clock is {'' if measured else 'at least '}{amount} "
                f"{way}: {here:%Y-%m-%d %H:%M:%S} UTC "
                f"here, {there:%Y-%m-%d %H:%M:%S} UTC "
                + ("by the server's Date header" if measured else "at the chain's earliest start"),
                data={
                    "local_time": here.isoformat(),
                    "reference_time": there.isoformat(),
                    "skew_s": round(skew, 1),
                    "reference": "server Date header" if measured else "certificate notBefore",
                },
            ),
            *evidence,
            verify_evidence(tls),
            *chain_evidence(tls),
        ],
        [
            "Fix this host's time: NTP (timedatectl status, chronyc tracking); in a container "
            "or VM, the host's clock (a restored snapshot, a dead RTC battery, a faked clock).",
            "Every TLS connection of this host fails the same way until then.",
        ],
    )


def _window(cert: CertificateInfo) -> str:
    if cert.days_left < 0:
        return f"expired ({days(cert.days_left)} ago)"
    return f"not valid yet (it starts {cert.not_before:%Y-%m-%d %H:%M} UTC)"
