"""HTTP rules: what the status (or its absence) says about the service behind the port."""

from __future__ import annotations

from ..describe import response_evidence
from ..report import Evidence, Fault
from ..steps import HttpResult
from ._observations import Observations, fault
from .proxy import DEAD_BACKEND, DEAD_BACKEND_HINT

__all__ = ["cut_exchange", "http_fault"]


def _status_fault(obs: Observations, http: HttpResult) -> Fault:
    status = http.status or 0
    where = f"{http.method} {http.url}"
    ev = [response_evidence(http)]
    if 500 <= status <= 599:
        retry = ""
        if http.retry_after is not None:
            retry = (
                f"; it asks to retry after {http.retry_after_s:g} s"
                if http.retry_after_s is not None
                else f"; it asks to retry after {http.retry_after}"
            )
        hints = ["The network and TLS are fine: look at the service's own logs and health."]
        if status in (502, 504):
            hints.insert(0, "A proxy answered: the service behind it is down or slow.")
        if status == 503:
            hints.insert(0, "The service is overloaded, starting or in maintenance.")
        return fault(
            "http.server_error",
            f"{where} answered {status} {http.reason or ''}".rstrip() + retry + ".",
            ev,
            hints,
        )
    if 400 <= status <= 499:
        if status == 404:
            what, hint = "the path does not exist", "Check the health endpoint's path in the URL."
        elif status in (401, 407):
            what = "credentials are missing or wrong"
            hint = "Pass credentials (headers={'Authorization': ...} or user:pass@ in the URL)."
            auth = http.headers.get("www-authenticate")
            if auth:
                hint += f" The server asks for: {auth}."
        elif status == 403:
            what = "the credentials or this client are not allowed"
            hint = "Check the credentials' permissions and any IP allow-list on the server."
        elif status == 429:
            what = "this client is rate-limited"
            hint = "Slow down the checks" + (
                f"; retry after {http.retry_after}." if http.retry_after else "."
            )
        else:
            what = "the server rejected the request"
            hint = "Check the method, path and headers of the request."
        return fault(
            "http.client_error",
            f"{where} answered {status} {http.reason or ''}".rstrip() + f": {what}.",
            ev,
            [hint],
        )
    expected = ", ".join(str(s) for s in http.expected or [])
    return fault(
        "http.client_error" if status < 500 else "http.server_error",
        f"{where} answered {status}, not one of the expected statuses ({expected}).",
        ev,
        ["Check expect_status, or what the endpoint answers now."],
    )


def http_fault(obs: Observations) -> Fault | None:
    """The fault of a failed HTTP exchange, or None. A TLS alert on the first read of the
    answer is TLS's verdict (classify/tls.py)."""
    app = obs.application
    if app is None or app.http is None or app.status != "failed":
        return None
    t = obs.target
    http = app.http
    if http.failure is None:
        return _status_fault(obs, http)
    if http.failure == "timeout":
        # Bytes that came but never completed the headers: a slow drip (slowloris), or a
        # server that stalls mid-answer.
        partial = "only part of the " if http.peer_bytes else "no "
        waited = f"within {obs.options.read_timeout:g} s (read_timeout)"
        return _no_answer(
            obs,
            f"{_accepted(obs)} and the request, but sent {partial}response headers {waited}.",
            http,
        )
    if http.failure == "protocol":
        return fault(
            "http.protocol_error",
            f"{t.netloc} {_not_http(http.peer_sent)}: "
            f"it sent {http.peer_sent or 'something else'}.",
            [
                Evidence(
                    step="application",
                    observation=f"first bytes back: {http.peer_sent}",
                    data={"peer_bytes": http.peer_bytes},
                )
            ],
            ["Check the port: another protocol listens there."],
        )
    if http.failure == "tls_alert":
        return None
    if http.failure == "closed":
        err = app.error
        how = "reset" if err is not None and err.errno_name == "ECONNRESET" else "closed"
        silent = not http.peer_bytes
        return fault(
            "l7.connection_closed",
            f"{t.netloc} {how} the connection after the request, without an HTTP answer"
            + (f" and without a byte ({DEAD_BACKEND})." if silent else "."),
            [
                Evidence(
                    step="application",
                    observation=f"{http.method} {http.url} sent; the connection was {how}",
                    data={"error": err.message if err else None},
                )
            ],
            [
                "The service crashed on the request, or a proxy in front of it dropped it.",
                *([DEAD_BACKEND_HINT] if silent else []),
            ],
        )
    msg = app.error.message if app.error else (app.reason or "unknown")
    return fault(
        "l7.connection_closed",
        f"The HTTP exchange with {t.netloc} failed: {msg}.",
    )


def cut_exchange(obs: Observations) -> Fault:
    """The total deadline ended the diagnosis during the HTTP exchange (classify/deadline.py):
    the request may not even have gone, and no answer was recorded."""
    timeout = obs.deadline.timeout_s if obs.deadline else obs.options.timeout
    return _no_answer(
        obs,
        f"{_accepted(obs)}, but the total deadline ({timeout:g} s) ended the diagnosis "
        "before the HTTP exchange got an answer.",
        HttpResult(method=obs.options.method, url=obs.target.url),
    )


def _accepted(obs: Observations) -> str:
    t = obs.target
    return f"{t.netloc} accepted the connection{' and the TLS handshake' if t.tls else ''}"


def _no_answer(obs: Observations, summary: str, http: HttpResult) -> Fault:
    return fault(
        "http.timeout",
        summary,
        [
            Evidence(
                step="application",
                observation=f"{http.method} {http.url} sent, "
                + ("an incomplete answer" if http.peer_bytes else "no answer"),
                data={"read_timeout_s": obs.options.read_timeout}
                | ({"peer_bytes": http.peer_bytes} if http.peer_bytes else {}),
            )
        ],
        [
            "The service is stuck (a deadlock, an exhausted worker pool, a slow "
            "dependency of its own): look at its threads and its own dependencies.",
        ],
    )


def _not_http(peer_sent: str | None) -> str:
    # A status line followed by headers that never end is HTTP gone wrong, not another protocol.
    if peer_sent and peer_sent.startswith("an HTTP response"):
        return "answers malformed HTTP"
    return "does not answer HTTP"
