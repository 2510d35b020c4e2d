"""What a database probe observed: the greeting, the error sent instead, the login, timings.

Plain data: the probe records what the server said; classification decides what it means.
Never holds a credential.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .tls import TlsStep

__all__ = ["DatabaseOutcome", "DatabasePhase", "DatabaseResult"]

DatabaseOutcome = Literal[
    "ready",  # greeting / auth request / PONG / NOAUTH: the server is up and talking
    "validated",  # credentials given: logged in and the validation query answered
    "server_error",  # the server answered with an error (code / sqlstate / prefix below)
    "timeout",  # connected, but nothing (or not enough) arrived within the read timeout
    "closed",  # the server closed the connection without a complete answer
    "mismatch",  # the bytes are not this protocol (``looks_like`` says what they are)
    "tls_failed",  # the server offered TLS (PostgreSQL 'S') and the handshake failed
    "driver_error",  # the login driver failed in a way that is not a server error
    "unavailable",  # the driver of an authenticated check is not installed
]

DatabasePhase = Literal["greeting", "handshake", "login", "validation", "hold"]


class DatabaseResult(BaseModel):
    """One database conversation, as observed."""

    model_config = ConfigDict(frozen=True)

    protocol: Literal["mysql", "postgresql", "redis"]
    outcome: DatabaseOutcome
    phase: DatabasePhase = Field(
        "greeting", description="Where the conversation stopped (or ended well)."
    )
    server: str | None = Field(None, description="mysql, mariadb, postgresql or redis.")
    version: str | None = Field(None, description="Server version, when the server revealed it.")
    protocol_version: int | None = None
    connection_id: int | None = Field(None, description="MySQL thread id from the greeting.")
    auth_plugin: str | None = Field(
        None, description="MySQL auth plugin or PostgreSQL authentication method requested."
    )
    tls_supported: bool | None = Field(
        None, description="The server offers TLS (MySQL CLIENT_SSL, PostgreSQL 'S')."
    )
    tls_used: bool = False
    tls: TlsStep | None = Field(
        None, description="The TLS handshake negotiated inside the protocol (PostgreSQL)."
    )
    error_code: str | None = Field(
        None, description="MySQL error number, PostgreSQL SQLSTATE or Redis error prefix."
    )
    sqlstate: str | None = None
    error_message: str | None = None
    error_errno: str | None = Field(
        None, description="errno name when the connection broke (ECONNRESET...)."
    )
    error_fields: dict[str, str] = Field(
        default_factory=dict, description="PostgreSQL ErrorResponse fields (routine, detail...)."
    )
    probe_user: str | None = Field(None, description="User named by a credential-less probe.")
    authenticated: bool = Field(False, description="A login with the target's credentials ran.")
    login_user: str | None = None
    validation: str | None = Field(None, description="The validation query, e.g. SELECT 1.")
    looks_like: str | None = Field(None, description="What unexpected bytes look like.")
    first_bytes: str | None = Field(None, description="Hex of the first bytes received.")
    greeting_ms: float | None = Field(None, description="From connected to the first answer.")
    login_ms: float | None = None
    validation_ms: float | None = None
    closed_cleanly: bool | None = Field(
        None, description="COM_QUIT / Terminate / QUIT sent, or the server closed after an error."
    )
    notes: list[str] = Field(default_factory=list)
