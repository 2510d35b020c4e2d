"""The TLS rung: the handshake on the established connection, and the certificate facts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import ErrorInfo, StepBase

__all__ = ["TlsStep"]


class TlsStep(StepBase):
    """The TLS handshake run on the TCP connection the diagnosis established."""

    name: Literal["tls"] = "tls"
    server_name: str | None = None
    verified: bool = True
    error: ErrorInfo | None = None
    version: str | None = None
    cipher: str | None = None
    alpn: str | None = None
    # Filled by the TLS layer (issue 4): the presented chain, verify code, etc.
    details: dict[str, object] = Field(default_factory=dict)
