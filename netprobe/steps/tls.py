"""The TLS rung: the handshake on the established connection, and the certificate facts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._base import ErrorInfo, StepBase

__all__ = ["CertificateInfo", "TlsFailure", "TlsStep"]

#: What went wrong, as the TLS probe observed it (classification turns it into a fault code).
TlsFailure = Literal[
    "verify",  # the chain or the name did not verify: see verify_code
    "alert",  # the peer sent an alert, or our side refused its parameters: see ssl_reason
    "not_tls",  # the first bytes back were not a TLS record: see peer_sent
    "timeout",  # no complete answer to the ClientHello within the read timeout
    "closed",  # the peer closed or reset the connection before the handshake completed
    "error",  # anything else: see error
]


class CertificateInfo(BaseModel):
    """One certificate the server presented, with what an operator checks first."""

    model_config = ConfigDict(frozen=True)

    subject: str = Field(description="RFC 4514 distinguished name.")
    common_name: str | None = None
    issuer: str = Field(description="RFC 4514 distinguished name of the issuer.")
    dns_names: list[str] = Field(default_factory=list, description="DNS subjectAltNames.")
    ip_addresses: list[str] = Field(default_factory=list, description="IP subjectAltNames.")
    not_before: datetime
    not_after: datetime
    days_left: float = Field(description="Days until not_after (negative: expired).")
    serial: str = Field(description="Serial number, hex.")
    sha256: str = Field(description="SHA-256 fingerprint of the DER encoding, hex with colons.")
    self_signed: bool = Field(description="Subject equals issuer.")
    is_ca: bool = False


class TlsStep(StepBase):
    """The TLS handshake run on the TCP connection the diagnosis established."""

    name: Literal["tls"] = "tls"
    server_name: str | None = Field(
        None, description="The SNI sent (none for IP literals, per RFC 6066 §3)."
    )
    verified: bool = Field(True, description="Whether the certificate was verified at all.")
    error: ErrorInfo | None = None
    failure: TlsFailure | None = None
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    verify_code: int | None = Field(None, description="OpenSSL X509_V_ERR_* code.")
    verify_message: str | None = None
    ssl_reason: str | None = Field(
        None, description="SSLError.reason, e.g. TLSV1_ALERT_PROTOCOL_VERSION."
    )
    alert: str | None = Field(
        None, description="The TLS alert or refusal, normalised: protocol_version, ..."
    )
    peer_sent: str | None = Field(
        None, description="What the peer sent instead of a ServerHello, in words."
    )
    peer_bytes: str | None = Field(None, description="The first bytes the peer sent, hex.")
    chain: list[CertificateInfo] = Field(
        default_factory=list, description="The presented chain, leaf first (also on failure)."
    )
