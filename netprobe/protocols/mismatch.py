"""The one error the sans-IO database parsers raise: these bytes are not this protocol."""

from __future__ import annotations

from .sniff import describe_bytes

__all__ = ["ProtocolMismatch"]


class ProtocolMismatch(ValueError):
    """The bytes cannot be the expected protocol. ``looks_like`` says what they resemble."""

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.looks_like = describe_bytes(data[:512])
