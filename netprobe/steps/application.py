"""The application rung: HTTP, a database greeting, Redis PING, or nothing for plain TCP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ._base import ErrorInfo, StepBase
from .database import DatabaseResult
from .http import HttpResult

__all__ = ["ApplicationStep"]


class ApplicationStep(StepBase):
    """The protocol spoken over the established (and, for TLS targets, encrypted) connection."""

    name: Literal["application"] = "application"
    protocol: str
    error: ErrorInfo | None = None
    # Filled by the application layers (issues 4 and 5).
    details: dict[str, object] = Field(default_factory=dict)
    database: DatabaseResult | None = None
    http: HttpResult | None = None
