"""The TCP rung: one connect per resolved address, each with its own outcome."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._base import ErrorInfo, StepBase

__all__ = ["AddressAttempt", "ConnectOutcome", "TcpStep"]

ConnectOutcome = Literal[
    "established",  # SYN, SYN+ACK, ACK
    "refused",  # RST: ECONNREFUSED
    "timeout",  # no answer to the SYN within the connect timeout
    "host_unreachable",  # EHOSTUNREACH
    "network_unreachable",  # ENETUNREACH
    "port_exhaustion",  # EADDRNOTAVAIL: no free local port
    "fd_exhaustion",  # EMFILE / ENFILE
    "denied",  # EPERM / EACCES: a local firewall (OUTPUT chain) or policy
    "reset",  # ECONNRESET: the handshake completed, then the peer reset before we used it
    "error",  # anything else, see ``error``
]


class AddressAttempt(BaseModel):
    """A connect to one address."""

    model_config = ConfigDict(frozen=True)

    address: str
    port: int
    family: Literal["ipv4", "ipv6"]
    outcome: ConnectOutcome
    connect_ms: float | None = Field(None, description="Time from connect() to its result.")
    error: ErrorInfo | None = None
    immediate: bool = Field(
        False,
        description="connect() failed at once, before any packet left: the local routing "
        "table or socket layer said no.",
    )
    local_address: str | None = Field(None, description="Our end of an established connection.")

    @property
    def endpoint(self) -> str:
        """``address:port``, the address in brackets when it is IPv6."""
        return (
            f"[{self.address}]:{self.port}"
            if self.family == "ipv6"
            else f"{self.address}:{self.port}"
        )


class TcpStep(StepBase):
    """Every resolved address was tried concurrently; ``connected_to`` is the one kept."""

    name: Literal["tcp"] = "tcp"
    timeout_s: float
    attempts: list[AddressAttempt] = Field(default_factory=list)
    connected_to: str | None = None
    canary: list[AddressAttempt] = Field(
        default_factory=list,
        description="Liveness witness: connects to other ports of an address whose SYN went "
        "unanswered (an RST or SYN+ACK proves the host alive).",
    )
    canary_enabled: bool = Field(True, description="Whether canary connects were allowed.")
