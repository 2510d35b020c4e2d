"""A framework-agnostic ASGI health application: liveness, readiness, startup, metrics.

Mount it in FastAPI or Starlette (``app.mount("/health", health)``) or serve it alone with
any ASGI server. Routes, relative to where it is mounted:

* ``/live``: 200 while the process answers. Never looks at dependencies: a database outage
  must not make Kubernetes restart every replica.
* ``/ready`` (and ``/``): 200 when every critical dependency is healthy, 503 otherwise.
* ``/startup``: like ``/ready`` until the first time everything was ready, then 200 for good.
* ``/metrics``: Prometheus text (needs the ``prometheus`` extra).

JSON by default; an HTML page (ladder and timing waterfall) when a browser asks for
``text/html``. Nothing in a request is ever used as a target, and no response shows a
password or a URL's query string. ``show_details=False`` reduces every answer to the
overall status, for endpoints exposed to the public.

Served alone, the app runs its checker for the server's lifespan (the ASGI lifespan
protocol). Mounted in another app (which sends it no lifespan events), enter it in the host
app's lifespan: ``async with health: yield``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from types import TracebackType
from typing import Any, Self, Unpack
from urllib.parse import parse_qs

from ..options import Options, OptionsKwargs
from ..target import Target
from .checker import CheckResult, Dependency, DiagnoseFn, HealthChecker, HealthResult, public_url

__all__ = ["HealthApp", "check_json", "health_app", "result_json"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ROUTES = {
    "": "ready",
    "/ready": "ready",
    "/readyz": "ready",
    "/live": "live",
    "/livez": "live",
    "/startup": "startup",
    "/metrics": "metrics",
}


def health_app(
    dependencies: Iterable[str | Target | Dependency],
    *,
    ttl: float = 10.0,
    budget: float = 0.8,
    show_details: bool = True,
    metrics: bool = True,
    diagnose: DiagnoseFn | None = None,
    options: Options | None = None,
    **kwargs: Unpack[OptionsKwargs],
) -> HealthApp:
    """Build the health ASGI app for a fixed list of dependencies.

    Args:
        dependencies: targets or `Dependency` objects (``critical=False`` for those
            that may only degrade the status).
        ttl: seconds a result stays fresh; at most one diagnosis per dependency per ``ttl``.
        budget: the longest a request waits for fresh results, seconds; after that it gets
            the last known result marked ``"stale": true``. Keep it under the probe's
            ``timeoutSeconds`` (Kubernetes' default is 1 s).
        show_details: ``False`` answers with the overall status only (and no metrics).
        metrics: serve ``/metrics`` (Prometheus text).
        diagnose: replaces `netprobe.diagnose`, ``(target, options) -> Report``.
        options: diagnosis options for every dependency; ``**kwargs`` override fields.

    Raises:
        InvalidTarget, InvalidOption: before any I/O.
    """
    checker = HealthChecker(
        dependencies, ttl=ttl, budget=budget, diagnose=diagnose, options=options, **kwargs
    )
    return HealthApp(checker, show_details=show_details, metrics=metrics)


class HealthApp:
    """The ASGI application; ``checker`` holds the cache (see `health_app`).

    An async context manager: ``async with health:`` runs its checker (which then owns the
    diagnoses) until the block ends. The ASGI lifespan does the same when the app is served
    alone; a host app that mounts it does it in its own lifespan.
    """

    def __init__(
        self, checker: HealthChecker, *, show_details: bool = True, metrics: bool = True
    ) -> None:
        self.checker = checker
        self.show_details = show_details
        self.metrics = metrics and show_details

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        route = _ROUTES.get(_relative_path(scope).rstrip("/"))
        if route is None:
            await _send(send, scope, 404, _json({"error": "not found"}), "application/json")
            return
        if scope["method"] not in ("GET", "HEAD"):
            body = _json({"error": "method not allowed"})
            await _send(send, scope, 405, body, "application/json", [(b"allow", b"GET, HEAD")])
            return
        if route == "live":
            await _send(send, scope, 200, _json({"status": "ok"}), "application/json")
            return
        if route == "metrics":
            await self._metrics(scope, send)
            return
        if route == "startup" and self.checker.started:
            result = self.checker.snapshot()
            code = 200
        else:
            result = await self.checker.check()
            code = 200 if result.ready else 503
        if _wants_html(scope):
            # The page draws the ladder with rich: imported when a browser first asks.
            from .page import render_page

            page = render_page(
                result, show_details=self.show_details, refresh_s=self.checker.ttl, probe=route
            )
            await _send(send, scope, code, page.encode(), "text/html; charset=utf-8")
        else:
            body = _json(result_json(result, show_details=self.show_details))
            await _send(send, scope, code, body, "application/json")

    async def _metrics(self, scope: Scope, send: Send) -> None:
        if not self.metrics:
            await _send(send, scope, 404, _json({"error": "not found"}), "application/json")
            return
        try:
            from .metrics import render_metrics
        except ImportError:
            msg = _json(
                {"error": "metrics need prometheus_client: pip install 'netprobe-sdk[prometheus]'"}
            )
            await _send(send, scope, 501, msg, "application/json")
            return
        result = await self.checker.check()
        body, content_type = render_metrics(result)
        await _send(send, scope, 200, body, content_type)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "lifespan.startup":  # pragma: no cover - the ASGI spec's order
            return
        if self.checker.running:  # already run by a host app (``async with health``)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        async with self.checker:
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown: leaving the block cancels the diagnoses
        await send({"type": "lifespan.shutdown.complete"})

    async def __aenter__(self) -> Self:
        await self.checker.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self.checker.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Cancel the diagnoses in flight (see `HealthChecker.aclose`)."""
        await self.checker.aclose()


def result_json(result: HealthResult, *, show_details: bool = True) -> dict[str, Any]:
    """The JSON body of a readiness answer."""
    if not show_details:
        return {"status": result.status}
    return {
        "status": result.status,
        "stale": result.stale,
        "checks": {c.dependency.name: check_json(c) for c in result.checks},
    }


def check_json(c: CheckResult) -> dict[str, Any]:
    """One dependency's entry: ok / fault layer, code, summary / timings."""
    out: dict[str, Any] = {
        "status": c.status,
        "critical": c.dependency.critical,
        "target": public_url(c.dependency.target),
        "stale": c.stale,
        "age_s": c.age_s,
        "checked_at": c.checked_at.isoformat() if c.checked_at else None,
        "fault": None,
    }
    out["history"] = [
        {"at": h.at.isoformat(), "status": h.status, "code": h.code} for h in c.history
    ]
    r = c.report
    if r is not None:
        if r.fault is not None:
            out["fault"] = {
                "layer": r.fault.layer,
                "code": r.fault.code,
                "summary": r.fault.summary,
                "hints": list(r.fault.hints),
            }
        out["timings_ms"] = r.timings_ms.model_dump(exclude_none=True)
        out["steps"] = [
            {"name": s.name, "status": s.status, "duration_ms": s.duration_ms} for s in r.steps
        ]
        out["warnings"] = [w.code for w in r.warnings]
    if c.error is not None:
        out["error"] = c.error
    return out


def _relative_path(scope: Scope) -> str:
    path: str = scope.get("path", "") or ""
    root: str = scope.get("root_path", "") or ""
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return path


def _wants_html(scope: Scope) -> bool:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    fmt: str = query.get("format", [""])[-1]
    if fmt in ("json", "html"):
        return fmt == "html"
    for name, value in scope.get("headers", []):
        if name == b"accept":
            return b"text/html" in bytes(value)
    return False


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=str).encode()


async def _send(
    send: Send,
    scope: Scope,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
