"""gRPC health rules: what the health check's answer (or its absence) says, over GrpcResult.

Pure: ``grpc_fault(obs)`` reads the observation of ``netprobe/probes/grpc.py``
(``ApplicationStep.grpc``) and returns a :class:`Fault` or ``None`` (healthy). By the time it
runs, TCP (and TLS) worked: every verdict here is layer l7. A status the server sent decides
first; a status synthesised for an answer without one (a proxy's 502, a web server's 404)
is said to be synthesised, and the HTTP evidence (``:status``, ``server``, ``via``,
``proxy-status``, the body's start) is kept for the proxy rules.
"""

from __future__ import annotations

from ..options import Options
from ..report import Evidence, Fault, JsonScalar
from ..steps import GrpcResult
from ..target import Target
from ._observations import Observations, fault
from .proxy import DEAD_BACKEND, DEAD_BACKEND_HINT

__all__ = ["cut_call", "grpc_fault"]

#: gRPC status -> what it usually means for a health check, and where to look next.
_STATUS_HINTS: dict[str, str] = {
    "UNAVAILABLE": "The server (or a proxy in front of it) cannot serve now: shutting down, "
    "overloaded, or a proxy without a healthy upstream.",
    "UNAUTHENTICATED": "The server wants credentials even for the health check: exempt the "
    "health service from authentication, or check the server's interceptors.",
    "PERMISSION_DENIED": "The server (or a gateway) refuses this client the health check: "
    "check its authorisation rules and interceptors.",
    "RESOURCE_EXHAUSTED": "The server is out of a resource or rate-limits this client.",
    "INTERNAL": "The server's health handler failed: look at the server's own logs.",
    "UNKNOWN": "The server's health handler raised an error: look at the server's own logs.",
    "CANCELLED": "The server cancelled the call: it is shutting down or overloaded.",
}

_TIMEOUT_HINT = (
    "The server is stuck (an exhausted worker pool, a health handler waiting on a slow "
    "dependency of its own): look at its threads and its own dependencies."
)


def grpc_fault(obs: Observations) -> Fault | None:
    """The fault of a failed gRPC health check (``ApplicationStep.grpc``), or None.

    A TLS alert on the first read is TLS's verdict (classify/tls.py); an answer from a proxy
    about its upstream (a 502 without grpc-status) is the proxy rules' (classify/proxy.py),
    which run before this one.
    """
    app = obs.application
    if app is None or app.grpc is None or app.status != "failed":
        return None
    result = app.grpc
    if result.healthy or result.failure == "tls_alert":
        return None
    target, options = obs.target, obs.options
    if result.failure is None:
        return _status_fault(target, result)
    if result.failure == "timeout":
        return _timeout_fault(target, options, result)
    if result.failure == "not_http2":
        return _not_http2_fault(target, result)
    if result.failure == "not_grpc":
        return _not_grpc_fault(target, result)
    if result.failure == "closed":
        return _closed_fault(target, options, result)
    return _broken_fault(target, result)


def cut_call(obs: Observations) -> Fault:
    """The total deadline ended the diagnosis during the health check (classify/deadline.py)."""
    t = obs.target
    timeout = obs.deadline.timeout_s if obs.deadline else obs.options.timeout
    return fault(
        "grpc.timeout",
        f"{_accepted(t)}, but the total deadline ({timeout:g} s) ended the diagnosis before "
        "the gRPC health check got an answer.",
        [],
        [_TIMEOUT_HINT],
    )


def _who(result: GrpcResult) -> str:
    return f"service '{result.service}'" if result.service else "the server as a whole"


def _call(result: GrpcResult) -> str:
    return f"{result.method} ({_who(result)})"


def _evidence(result: GrpcResult, observation: str, **data: JsonScalar) -> Evidence:
    shown: dict[str, JsonScalar] = {
        "http_version": result.http_version,
        "http_status": result.http_status,
        "grpc_status": result.grpc_status,
        "grpc_status_name": result.grpc_status_name,
        "status_from": result.status_from,
        "grpc_message": result.grpc_message,
        "alpn": result.alpn,
        **{f"header_{k.replace('-', '_')}": v for k, v in result.headers.items()},
    }
    shown |= data
    return Evidence(
        step="application",
        observation=observation,
        data={k: v for k, v in shown.items() if v is not None},
    )


def _status_line(result: GrpcResult) -> str:
    name = result.grpc_status_name or "?"
    line = f"grpc-status {result.grpc_status} {name}"
    if result.grpc_message:
        line += f", grpc-message {result.grpc_message!r}"
    if result.status_from == "trailers_only":
        line += " (Trailers-Only)"
    server = result.headers.get("server")
    if server:
        line += f"; server: {server}"
    return line


def _status_fault(target: Target, result: GrpcResult) -> Fault:
    """The server answered with its own status (and, for OK, a health status)."""
    where = target.netloc
    name = result.grpc_status_name
    ev = [_evidence(result, f"{_call(result)} -> {_status_line(result)}")]
    if result.grpc_status == 0:
        health = result.health_status_name or f"an unknown status ({result.health_status})"
        ev = [
            _evidence(
                result,
                f"{_call(result)} -> grpc-status 0 OK, HealthCheckResponse.status {health}",
                health_status=result.health_status,
                health_status_name=result.health_status_name,
            )
        ]
        if result.health_status == 3:  # SERVICE_UNKNOWN (meant for Watch; some send it)
            return _unknown_service(where, result, ev)
        if result.health_status == 0:
            meaning = "its health is not known: a server still starting, or one that never set it"
        elif result.health_status == 2:
            meaning = "it reports itself unhealthy"
        else:
            meaning = "a status this client does not know, so not SERVING"
        return fault(
            "grpc.not_serving",
            f"{where} answers the gRPC health check, and {_who(result)} is {health}: {meaning}.",
            ev,
            [
                "The network, TLS and the gRPC server process are fine: the server itself "
                "says it should not get traffic. Look at its logs and at the dependencies its "
                "health depends on.",
                "A server that is starting or shutting down (grpcio: "
                "enter_graceful_shutdown) answers NOT_SERVING too.",
            ],
        )
    if name == "NOT_FOUND":
        return _unknown_service(where, result, ev)
    if name == "UNIMPLEMENTED":
        said = f" ({result.grpc_message})" if result.grpc_message else ""
        return fault(
            "grpc.no_health_service",
            f"{where} speaks gRPC, but does not expose the standard health service "
            f"grpc.health.v1.Health: Check answered UNIMPLEMENTED{said}.",
            ev,
            [
                "Register the health service in the server (grpcio-health-checking, grpc-go's "
                "health package, grpc-java's HealthStatusManager), or check that this port is "
                "the gRPC server meant (a gRPC proxy may route only some services).",
            ],
        )
    if name == "DEADLINE_EXCEEDED":
        return fault(
            "grpc.timeout",
            f"{where} gave up on the gRPC health check itself: DEADLINE_EXCEEDED after the "
            f"{result.timeout_s or 0:g} s deadline sent with it (grpc-timeout).",
            ev,
            [_TIMEOUT_HINT],
        )
    said = f": {result.grpc_message}" if result.grpc_message else ""
    hints = [_STATUS_HINTS[name]] if name in _STATUS_HINTS else []
    return fault(
        "grpc.error",
        f"{where}'s gRPC health check failed with status {name} ({result.grpc_status}){said}.",
        ev,
        [*hints, "The network and TLS are fine: the gRPC server answered with this status."],
    )


def _unknown_service(where: str, result: GrpcResult, ev: list[Evidence]) -> Fault:
    said = result.health_status_name if result.grpc_status == 0 else result.grpc_status_name
    if result.service:
        summary = (
            f"{where} runs the gRPC health service, but it does not know service "
            f"'{result.service}' ({said})."
        )
        hint = (
            "Check the service name in the target (grpc://host:port/package.Service): it must "
            "be the name the server registered with its health service, case and all."
        )
    else:
        summary = (
            f"{where} runs the gRPC health service, but has no health status for the server as "
            f"a whole (the empty service name: {said})."
        )
        hint = (
            "Ask for a service by name (grpc://host:port/package.Service), or have the server "
            "set the overall status (grpcio: health_servicer.set('', SERVING))."
        )
    return fault("grpc.unknown_service", summary, ev, [hint])


def _accepted(target: Target) -> str:
    tls = " and the TLS handshake" if target.tls else ""
    return f"{target.netloc} accepted the connection{tls}"


def _timeout_fault(target: Target, options: Options, result: GrpcResult) -> Fault:
    cut = result.timeout_s is not None and result.timeout_s < options.read_timeout
    waited = (
        "before the total deadline" if cut else f"within {options.read_timeout:g} s (read_timeout)"
    )
    if result.bytes_received == 0:
        what = (
            f"but sent nothing {waited}, not even the HTTP/2 SETTINGS every HTTP/2 server "
            "sends first"
        )
        hints = [
            "A gRPC server answers the HTTP/2 preface at once: this process is stuck, or this "
            "port belongs to something that waits for the client (not HTTP/2).",
        ]
    elif not result.http2:
        what = f"and sent {result.bytes_received} bytes, but no HTTP/2 SETTINGS {waited}"
        hints = ["Check the port: the peer does not speak HTTP/2 first."]
    elif result.http_status is None:
        what = f"and HTTP/2 is up, but the health check got no response headers {waited}"
        hints = [_TIMEOUT_HINT]
    else:
        what = f"and the response headers came, but no gRPC status {waited}"
        hints = [_TIMEOUT_HINT]
    return fault(
        "grpc.timeout",
        f"{_accepted(target)} {what}.",
        [
            _evidence(
                result,
                f"{_call(result)} sent; "
                + ("no answer" if result.bytes_received == 0 else "an incomplete answer"),
                read_timeout_s=options.read_timeout,
                bytes_received=result.bytes_received,
                http2=result.http2,
            )
        ],
        hints,
    )


def _alpn_note(result: GrpcResult) -> str:
    if result.tls and result.alpn != "h2":
        agreed = f"ALPN chose {result.alpn}" if result.alpn else "no ALPN protocol was agreed"
        return f" (the TLS server did not agree to HTTP/2: {agreed})"
    return ""


def _not_http2_fault(target: Target, result: GrpcResult) -> Fault:
    sent = result.peer_sent or "something else"
    server = result.headers.get("server")
    by = f" ({server})" if server else ""
    if result.http_version is not None and result.http_status is not None:
        what = (
            f"an {result.http_version} server{by} answered {result.http_status}: it does not "
            "speak HTTP/2"
        )
        hint = (
            "gRPC needs HTTP/2 end to end: check that this is the gRPC server's port, or that "
            "the proxy in front of it speaks HTTP/2 to clients and passes gRPC on (nginx: "
            "'http2' on the listener and grpc_pass)."
        )
    elif sent.startswith("a TLS"):
        what = f"the port speaks TLS ({sent.removeprefix('a ')})"
        hint = f"Use grpcs://{target.netloc}" + (f"/{target.path}" if target.path else "") + "."
    else:
        what = f"the peer does not speak HTTP/2: it sent {sent}"
        hint = "Check the port: another protocol listens there."
    return fault(
        "grpc.not_grpc",
        f"{target.netloc} is not a gRPC server: {what}{_alpn_note(result)}.",
        [
            _evidence(
                result,
                f"HTTP/2 preface and {_call(result)} sent; first bytes back: {sent}",
                peer_bytes=result.peer_bytes,
                body_preview=result.body_preview,
            )
        ],
        [hint],
    )


def _not_grpc_fault(target: Target, result: GrpcResult) -> Fault:
    status = result.http_status
    kind = result.headers.get("content-type", "no content-type")
    server = result.headers.get("server")
    by = f" ({server})" if server else ""
    synth = result.grpc_status_name or "UNKNOWN"
    ev = [
        _evidence(
            result,
            f"{_call(result)} -> HTTP/2 {status} ({kind}) without grpc-status; a gRPC client "
            f"sees {synth}",
            body_preview=result.body_preview,
        )
    ]
    if status in (401, 403, 429, 502, 503, 504):
        if status in (401, 403):
            what = (
                f"an HTTP/2 gateway{by} refused the call with HTTP {status} before any gRPC "
                "server saw it"
            )
            hint = "Check the gateway's authentication and access rules for this client."
        else:
            what = (
                f"an HTTP/2 proxy or load balancer{by} answered HTTP {status} without a gRPC "
                "status: it could not get an answer from the gRPC server behind it"
            )
            hint = (
                "Look at the proxy's upstream (its own logs say which): the gRPC server "
                "behind it is down, refusing or slow."
            )
        return fault(
            "grpc.error",
            f"{target.netloc}: {what} (a gRPC client sees {synth}).",
            ev,
            [hint],
        )
    return fault(
        "grpc.not_grpc",
        f"{target.netloc} speaks HTTP/2 but not gRPC: an HTTP/2 server{by} answered the health "
        f"check with HTTP {status} ({kind}) and no gRPC status.",
        ev,
        [
            "Check the port and the proxy's routes: a web server, or an HTTP/2 proxy that does "
            "not route /grpc.health.v1.Health/ to the gRPC server, answered.",
        ],
    )


def _closed_fault(target: Target, options: Options, result: GrpcResult) -> Fault:
    err = result.error
    how = "reset" if err is not None and err.errno_name == "ECONNRESET" else "closed"
    if result.bytes_received == 0:
        when = f"without sending anything ({DEAD_BACKEND})"
        hints = [DEAD_BACKEND_HINT]
        if how == "closed" and not target.tls:
            # grpcio (C core) closes a cleartext connection to its TLS port without a word.
            hints.insert(
                0,
                "A TLS-only gRPC server closes a cleartext connection like this: if the server "
                f"uses TLS, use grpcs://{target.netloc}.",
            )
        elif how == "closed" and options.client_cert is None and options.ssl_context is None:
            # grpcio requiring a client certificate completes the TLS 1.3 handshake, then
            # closes without an alert when none came.
            hints.insert(
                0,
                "A gRPC server that requires a client certificate (mTLS) closes like this "
                "after the handshake when none was sent: pass client_cert= and client_key= "
                "(CLI: --client-cert, --client-key).",
            )
    elif not result.http2:
        when = "after bytes that are not an HTTP/2 preface"
        hints = ["Check the port: the peer does not speak HTTP/2."]
    elif result.http_status is None:
        when = "after the HTTP/2 SETTINGS, before answering the health check"
        hints = ["The server crashed on the call, or a proxy in front of it dropped it."]
    else:
        when = "after the response headers, before the gRPC status"
        hints = ["The server crashed on the call, or a proxy in front of it dropped it."]
    return fault(
        "l7.connection_closed",
        f"{target.netloc} {how} the connection {when}: no gRPC answer.",
        [
            _evidence(
                result,
                f"HTTP/2 preface and {_call(result)} sent; the connection was {how}",
                error=err.message if err else None,
                bytes_received=result.bytes_received,
            )
        ],
        hints,
    )


def _broken_fault(target: Target, result: GrpcResult) -> Fault:
    """RST_STREAM, GOAWAY, or broken HTTP/2 or gRPC: the status a gRPC client would see."""
    synth = result.grpc_status_name or "no status"
    if result.failure == "reset_stream":
        what = f"reset the health check's stream (RST_STREAM {result.rst_stream})"
        hint = (
            "The server refused new calls: overloaded or shutting down."
            if result.rst_stream == "REFUSED_STREAM"
            else "The server (or a proxy) aborted the call: look at its logs."
        )
    elif result.failure == "goaway":
        debug = f": {result.goaway_debug}" if result.goaway_debug else ""
        what = f"ended the HTTP/2 connection before answering (GOAWAY {result.goaway}{debug})"
        hint = (
            "The server is shutting down (a graceful GOAWAY)."
            if result.goaway == "NO_ERROR"
            else "The server rejected the connection or the call: its GOAWAY debug data and "
            "logs say why."
        )
    else:
        what = f"sent a broken answer ({result.protocol_error})"
        hint = "The server or a proxy in front of it breaks HTTP/2 or gRPC: look at its version."
    return fault(
        "grpc.error",
        f"{target.netloc} {what}: a gRPC client sees {synth}.",
        [
            _evidence(
                result,
                f"{_call(result)} sent; {result.reason}",
                rst_stream=result.rst_stream,
                goaway=result.goaway,
                goaway_debug=result.goaway_debug,
                protocol_error=result.protocol_error,
            )
        ],
        [hint],
    )
