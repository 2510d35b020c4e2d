"""The ICMP rung: echo requests to every resolved address, run alongside the TCP connect."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ._base import StepBase

__all__ = ["IcmpAddressResult", "IcmpStep"]


class IcmpAddressResult(BaseModel):
    """Echoes to one address: how many came back, how fast, and any ICMP error."""

    model_config = ConfigDict(frozen=True)

    address: str
    sent: int = 0
    received: int = 0
    rtt_min_ms: float | None = None
    rtt_avg_ms: float | None = None
    rtt_max_ms: float | None = None
    unreachable: str | None = Field(
        None, description="Meaning of an ICMP destination-unreachable (or other error) received."
    )

    @property
    def loss_pct(self) -> float:
        return 100.0 if self.sent == 0 else 100.0 * (self.sent - self.received) / self.sent


class IcmpStep(StepBase):
    """``skipped`` (with the reason and the fix) when the OS allows no ICMP socket."""

    name: Literal["icmp"] = "icmp"
    engine: str | None = None
    results: list[IcmpAddressResult] = Field(default_factory=list)
