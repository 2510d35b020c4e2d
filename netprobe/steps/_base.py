"""Shared pieces of the per-layer step models: plain data, never live exception objects."""

from __future__ import annotations

import errno as errno_mod
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["ErrorInfo", "StepBase", "StepStatus"]

StepStatus = Literal["ok", "failed", "skipped"]


class ErrorInfo(BaseModel):
    """An exception, reduced to data: its type, errno (number and name) and message."""

    model_config = ConfigDict(frozen=True)

    type: str
    errno: int | None = None
    errno_name: str | None = None
    message: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Plain data (type, errno, message) of an exception: reports never hold live exceptions."""
        err = getattr(exc, "errno", None)
        err = err if isinstance(err, int) else None
        message = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return cls(
            type=type(exc).__name__,
            errno=err,
            errno_name=errno_mod.errorcode.get(err) if err is not None else None,
            message=str(message),
        )


class StepBase(BaseModel):
    """One rung of the ladder: did it work, and if not, why was it not ok."""

    model_config = ConfigDict(frozen=True)

    status: StepStatus
    reason: str | None = None
    duration_ms: float | None = None
