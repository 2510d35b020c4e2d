"""ICMP echo, run alongside the TCP connect (placeholder until the ICMP engine lands)."""

from __future__ import annotations

from collections.abc import Sequence

from ..steps import IcmpStep
from ._context import ProbeContext

__all__ = ["Pinger"]


class Pinger:
    """Sends echoes to every address until cancelled; ``step()`` reports what came back."""

    def __init__(self, ctx: ProbeContext, addresses: Sequence[str]) -> None:
        self._ctx = ctx
        self._addresses = list(addresses)

    async def run(self) -> None:
        return None

    def step(self) -> IcmpStep:
        return IcmpStep(status="skipped", reason="the ICMP engine is not available yet")
