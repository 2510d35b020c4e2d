"""TLS on the established connection (placeholder until the TLS layer lands)."""

from __future__ import annotations

from anyio.abc import ByteStream

from ..steps import TlsStep
from ._context import ProbeContext

__all__ = ["start_tls"]


async def start_tls(ctx: ProbeContext, stream: ByteStream) -> tuple[TlsStep, ByteStream | None]:
    """Run the handshake over ``stream``; return the step and the TLS stream (None on failure)."""
    return TlsStep(status="skipped", reason="TLS is not implemented yet"), None
