"""What the HTTP exchange over the diagnosis's own connection observed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HttpFailure", "HttpHop", "HttpResult"]

HttpFailure = Literal[
    "timeout",  # no response headers within the read timeout
    "closed",  # the peer closed or reset the connection before answering
    "protocol",  # the answer is not HTTP: see peer_sent
    "tls_alert",  # a TLS alert after the handshake (TLS 1.3: client certificate required)
    "error",  # anything else: see the step's error
]

#: Response headers worth reporting (lower case); the rest are left out of the report.
HEADERS_OF_INTEREST = (
    "server",
    "content-type",
    "content-length",
    "location",
    "retry-after",
    "www-authenticate",
    "via",
    "connection",
    "x-request-id",
)


class HttpHop(BaseModel):
    """One response of a redirect chain (only same-origin redirects are followed)."""

    model_config = ConfigDict(frozen=True)

    status: int
    url: str
    location: str | None = None


class HttpResult(BaseModel):
    """The request sent and the response (or its absence) that came back."""

    model_config = ConfigDict(frozen=True)

    method: str
    url: str = Field(description="The requested URL (credentials never shown).")
    status: int | None = None
    reason: str | None = Field(None, description="The reason phrase, e.g. 'Not Found'.")
    http_version: str | None = None
    headers: dict[str, str] = Field(
        default_factory=dict, description="Response headers of interest (lower-case names)."
    )
    location: str | None = None
    retry_after: str | None = Field(None, description="Retry-After as sent (seconds or date).")
    retry_after_s: float | None = Field(None, description="Retry-After in seconds, if numeric.")
    body_bytes: int | None = Field(None, description="Body bytes read (capped).")
    body_preview: str | None = Field(None, description="Start of the body, for errors.")
    expected: list[int] | None = Field(None, description="Statuses counted as healthy.")
    healthy: bool | None = None
    redirects: list[HttpHop] = Field(default_factory=list)
    failure: HttpFailure | None = None
    tls_alert: str | None = Field(None, description="A post-handshake TLS alert, normalised.")
    peer_sent: str | None = Field(None, description="What came back instead of HTTP, in words.")
    peer_bytes: str | None = Field(None, description="First bytes received, hex.")
    first_byte_ms: float | None = Field(None, description="Request sent to first byte back.")
