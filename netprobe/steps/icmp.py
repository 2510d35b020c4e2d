"""The ICMP rung: echo requests to every resolved address, run alongside the TCP connect."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._base import StepBase

__all__ = ["IcmpAddressResult", "IcmpStep"]


class IcmpAddressResult(BaseModel):
    """Echoes to one address: how many came back, how fast, and any ICMP error.

    ``pending`` echoes were still awaiting their reply when the diagnosis ended (the TCP and
    application rungs were done first): they are neither answered nor lost.
    """

    model_config = ConfigDict(frozen=True)

    address: str
    sent: int = 0
    received: int = 0
    pending: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    unreachable: str | None = Field(
        None, description="Meaning of an ICMP destination-unreachable (or other error) received."
    )
    unreachable_from: str | None = Field(
        None, description="Who sent the ICMP error (a router, a firewall, or this host itself)."
    )
    immediate: bool = Field(
        False, description="The echo could not even be sent (local routing table or policy)."
    )

    @property
    def lost(self) -> int:
        """Echoes that got no reply within their own timeout (pending ones excluded)."""
        return max(0, self.sent - self.received - self.pending - (1 if self.unreachable else 0))

    @property
    def loss_pct(self) -> float | None:
        done = self.sent - self.pending
        return None if done <= 0 else 100.0 * (done - self.received) / done


class IcmpStep(StepBase):
    """``skipped`` (with the reason and the fix) when the OS allows no ICMP socket."""

    name: Literal["icmp"] = "icmp"
    engine: str | None = None
    results: list[IcmpAddressResult] = Field(default_factory=list)

    def result_for(self, address: str) -> IcmpAddressResult | None:
        for r in self.results:
            if r.address == address:
                return r
        return None
