"""Application rules: HTTP statuses, database greetings and errors, Redis replies."""

from __future__ import annotations

from ..report import Fault, ReportWarning
from ._observations import Observations, fault
from .database import database_fault
from .grpc import grpc_application_fault
from .http import http_fault

__all__ = ["application_fault", "application_warnings"]


def application_fault(obs: Observations) -> Fault | None:
    """The fault of the application rung (database greeting/login or HTTP), or None."""
    app = obs.application
    if app is not None and app.database is not None:
        return database_fault(obs)
    if app is None or app.status != "failed":
        return None
    if app.protocol == "grpc":
        return grpc_application_fault(obs, app)
    if app.protocol == "http":
        return http_fault(obs, app)
    msg = app.error.message if app.error else (app.reason or "unknown")
    return fault(
        "l7.connection_closed",
        f"{obs.target.netloc} accepted the connection but the {app.protocol} exchange "
        f"failed: {msg}.",
    )


def application_warnings(obs: Observations) -> list[ReportWarning]:
    """Warnings of the application rung (none yet: HTTP and TLS warnings have their own rules)."""
    return []
