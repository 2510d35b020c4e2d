"""The DNS rung: what getaddrinfo said, and what the name servers said when it failed."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._base import ErrorInfo, StepBase

__all__ = ["DnsStep", "NameserverAnswer", "Rcode"]

#: What a name server said (or did not): the distinctions getaddrinfo loses.
Rcode = Literal["NOERROR", "NXDOMAIN", "NODATA", "SERVFAIL", "REFUSED", "TIMEOUT", "ERROR"]


class NameserverAnswer(BaseModel):
    """One direct query to one name server, made only when getaddrinfo failed."""

    model_config = ConfigDict(frozen=True)

    nameserver: str
    qtype: Literal["A", "AAAA"]
    rcode: Rcode
    addresses: list[str] = Field(default_factory=list)
    elapsed_ms: float | None = None
    detail: str | None = None


class DnsStep(StepBase):
    """Name resolution as the application does it (getaddrinfo), with a direct-query diagnosis."""

    name: Literal["dns"] = "dns"
    host: str
    source: Literal["literal", "getaddrinfo", "nameservers"] = "getaddrinfo"
    addresses: list[str] = Field(default_factory=list, description="Resolved addresses, in order.")
    error: ErrorInfo | None = Field(None, description="getaddrinfo's error (gaierror), if any.")
    rcode: Rcode | None = Field(None, description="The verdict of the direct queries, if made.")
    queries: list[NameserverAnswer] = Field(default_factory=list)
