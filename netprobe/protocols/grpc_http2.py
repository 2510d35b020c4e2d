"""The gRPC health call over HTTP/2 as a sans-IO state machine: ``h2`` plus the gRPC parsers.

Bytes in (:meth:`HealthCall.receive`), bytes out (:meth:`HealthCall.outgoing`), observations
out (:meth:`HealthCall.observations`), no socket: ``netprobe/probes/grpc.py`` runs the I/O.
Imported at the first gRPC target only (``h2`` and ``hpack`` cost imports that other targets
never need: see ``probes/_lazy.py``).

The exchange, as a gRPC client does it (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md):

1. the client connection preface (``PRI * HTTP/2.0``, then SETTINGS), sent at once with prior
   knowledge over cleartext (RFC 9113 §3.3) or after ALPN over TLS (§3.2);
2. HEADERS ``POST /grpc.health.v1.Health/Check`` (``te: trailers``, ``content-type:
   application/grpc``, ``grpc-timeout``), and one DATA frame with the request and END_STREAM;
3. the server's preface is its SETTINGS frame (§3.4), the first thing any HTTP/2 server
   sends: bytes that do not start that way are not HTTP/2, and ``describe_bytes`` names them
   (an HTTP/1.1 status line, a TLS record); an HTTP/1.x answer's status and headers are kept;
4. response headers, the message, trailers with ``grpc-status``; or Trailers-Only. Without a
   status (RST_STREAM, GOAWAY, a proxy's 502) the status a gRPC client would synthesise is
   recorded, and said to be synthesised.
"""

from __future__ import annotations

import contextlib
import re

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack.exceptions
import hyperframe.exceptions

from .._version import __version__
from . import grpc as wire
from .sniff import describe_bytes, printable_preview

__all__ = ["GRPC_HEADERS_OF_INTEREST", "HealthCall", "progress", "timeout_reason"]

#: Response headers kept in the observation (lower case): what tells a gRPC server from a
#: proxy or a web server in front of it.
GRPC_HEADERS_OF_INTEREST = (
    "server",
    "content-type",
    "content-length",
    "via",
    "proxy-status",
    "retry-after",
    "www-authenticate",
    "grpc-encoding",
    "x-envoy-upstream-service-time",
    "x-squid-error",
    "cf-ray",
)

_PEEK = 64  # first bytes kept as evidence
_HEAD = 4096  # first bytes kept to read an HTTP/1.x answer's status line and headers
_BODY_CAP = wire.MAX_MESSAGE + 5  # one health message and its prefix; a web page's start
_RECEIVE_CAP = 256 * 1024  # bytes read at most, whatever the peer sends (an answer is small)
_PREVIEW = 200
_VALUE_CAP = 300  # characters of a header or trailer value kept
_TRAILERS_KEPT = 16
_H2_ERRORS = (
    h2.exceptions.H2Error,
    hyperframe.exceptions.HyperframeError,
    hpack.exceptions.HPACKError,
)
_HTTP1_STATUS = re.compile(rb"(HTTP/1\.[01]) ([1-9][0-9]{2})(?: [^\r\n]*)?")
#: SETTINGS identifiers h2 does not name (RFC 9113 §6.5.2 leaves the space open).
_EXTRA_SETTINGS = {0xFE03: "GRPC_ALLOW_TRUE_BINARY_METADATA"}  # grpc core's own


class HealthCall:
    """A health check over HTTP/2, sans-IO: bytes in (``receive``), bytes out (``outgoing``).

    ``done`` is set once the call has an outcome; ``observations()`` gives what was seen, as
    plain data. Any bytes at all are handled without an exception escaping. ``again()``
    starts another check on a new stream of the same connection (HTTP/2 streams are
    independent, RFC 9113 §5), as a gRPC channel reuses its connection.
    """

    def __init__(self, *, authority: str, service: str, tls: bool, timeout_s: float) -> None:
        self.authority = authority
        self.service = service
        self.tls = tls
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        # No server push (gRPC never uses it); a bounded header list, as grpcio does (8 KiB
        # suggested by PROTOCOL-HTTP2.md, 16 KiB leaves room for a proxy's headers).
        self.conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
                h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: 16 * 1024,
            },
        )
        self.conn.initiate_connection()
        self.timeout_s = timeout_s
        self.first = bytearray()
        self.http2 = False
        self.settings_acked = False
        self.server_settings: dict[str, int] = {}
        self.goaway: tuple[int, bytes] | None = None
        self.not_http2 = False
        self.calls = 0
        self._start_call()

    def _start_call(self) -> None:
        """Per-call state, and the call's HEADERS and DATA queued on a new stream."""
        self.calls += 1
        self.received = 0
        self.response: dict[str, str] | None = None
        self.trailers: dict[str, str] | None = None
        self.ended = False
        self.body = bytearray()
        self.body_bytes = 0
        self.rst: int | None = None
        self.protocol_error: str | None = None
        self.done = False
        self.stream_id = self.conn.get_next_available_stream_id()
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"https" if self.tls else b"http"),
            (b":path", wire.HEALTH_CHECK_PATH.encode()),
            (b":authority", self.authority.encode()),
            (b"grpc-timeout", wire.grpc_timeout(self.timeout_s).encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", f"netprobe/{__version__}".encode()),
        ]
        self.conn.send_headers(self.stream_id, headers)
        body = wire.frame_message(wire.encode_health_request(self.service))
        self.conn.send_data(self.stream_id, body, end_stream=True)

    @property
    def reusable(self) -> bool:
        """Whether another call may go over this connection: HTTP/2 is up, and neither side
        ended it (no GOAWAY, no connection error)."""
        return (
            self.http2
            and not self.not_http2
            and self.goaway is None
            and self.conn.state_machine.state != h2.connection.ConnectionState.CLOSED
        )

    def again(self, *, timeout_s: float) -> bool:
        """Start another health check on a new stream of the same connection (a pool's
        validation after holding it); False when the connection cannot carry one."""
        if not self.reusable:
            return False
        self.timeout_s = timeout_s
        try:
            self._start_call()
        except _H2_ERRORS:
            return False
        return True

    def outgoing(self) -> bytes:
        """Bytes h2 has queued: the preface and request first, then SETTINGS ACKs, window
        updates, PING ACKs."""
        return self.conn.data_to_send()

    def receive(self, data: bytes) -> None:
        """Feed bytes from the peer; sets ``done`` when the call has an outcome."""
        if self.done or not data:
            return
        if len(self.first) < _HEAD and self.calls == 1:
            self.first += data[: _HEAD - len(self.first)]
        self.received += len(data)
        if not self.http2 and not _starts_like_settings(bytes(self.first)):
            # RFC 9113 §3.4: "The server connection preface consists of a potentially empty
            # SETTINGS frame that MUST be the first frame the server sends."
            self.not_http2 = self.done = True
            return
        try:
            events = self.conn.receive_data(data)
        except _H2_ERRORS as exc:
            if not self.http2:
                self.not_http2 = True
            else:
                self.protocol_error = str(exc) or type(exc).__name__
            self.done = True
            return
        for event in events:
            self._event(event)
            if self.done:
                return
        if self.received >= _RECEIVE_CAP and not self.done:
            self.protocol_error = f"more than {_RECEIVE_CAP // 1024} KiB and no end of the answer"
            self.done = True

    def _event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RemoteSettingsChanged):
            self.http2 = True
            for code, change in event.changed_settings.items():
                self.server_settings[_setting_name(code)] = int(change.new_value)
        elif isinstance(event, h2.events.SettingsAcknowledged):
            self.settings_acked = True
        elif getattr(event, "stream_id", self.stream_id) != self.stream_id:
            return  # nothing else is ours (a server may not open streams toward a client)
        elif isinstance(event, h2.events.ResponseReceived):
            self.response = _headers(event.headers)
        elif isinstance(event, h2.events.TrailersReceived):
            self.trailers = _headers(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            size = len(event.data)
            self.body_bytes += size
            if len(self.body) < _BODY_CAP:
                self.body += event.data[: _BODY_CAP - len(self.body)]
            # Flow control: give the window back, or a large answer would stall the server.
            if event.flow_controlled_length:
                with contextlib.suppress(*_H2_ERRORS):
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, self.stream_id
                    )
        elif isinstance(event, h2.events.StreamEnded):
            self.ended = self.done = True
        elif isinstance(event, h2.events.StreamReset):
            self.rst = int(event.error_code or 0)
            self.done = True
        elif isinstance(event, h2.events.ConnectionTerminated) and not self.ended:
            # h2 closes the connection on GOAWAY: nothing more of this call can be read.
            self.goaway = (int(event.error_code or 0), bytes(event.additional_data or b""))
            self.done = True

    def goodbye(self) -> bytes:
        """A GOAWAY (NO_ERROR) to end the connection politely, when h2 still allows one."""
        with contextlib.suppress(*_H2_ERRORS):
            self.conn.close_connection()
        with contextlib.suppress(*_H2_ERRORS):
            return self.conn.data_to_send()
        return b""

    def observations(self, **extra: object) -> dict[str, object]:
        """The observations, as the fields of ``netprobe.probes.grpc.GrpcResult`` (``extra``:
        what the I/O loop saw: timeouts, socket errors, timings)."""
        first = bytes(self.first[:_PEEK])
        common: dict[str, object] = {
            "service": self.service,
            "authority": self.authority,
            "tls": self.tls,
            "http2": self.http2,
            "settings_acked": self.settings_acked,
            "server_settings": self.server_settings,
            "bytes_received": self.received,
            "body_bytes": self.body_bytes,
            "peer_bytes": first.hex() if first else None,
        }
        if self.goaway is not None:
            code, debug = self.goaway
            common["goaway"] = _error_code_name(code)
            common["goaway_debug"] = printable_preview(debug, 200) if debug else None
        if self.rst is not None:
            common["rst_stream"] = _error_code_name(self.rst)
        response = self.response or {}
        if self.response is not None:
            common["http_version"] = "HTTP/2"
        elif not self.http2:
            # Not HTTP/2: an HTTP/1.x server's status line and headers are still evidence
            # (which server, which status) for the report and for the proxy rules.
            version, status, response = _http1_head(bytes(self.first))
            common["http_version"] = version
            if status is not None:
                response = response | {":status": str(status)}
                body = bytes(self.first).partition(b"\r\n\r\n")[2]
                common["body_preview"] = _preview(body)
        status_text = response.get(":status", "")
        if status_text.isdigit():
            common["http_status"] = int(status_text)
        common["headers"] = {k: response[k] for k in GRPC_HEADERS_OF_INTEREST if k in response}
        common.update(extra)
        failure = extra.get("failure")
        if failure is not None:
            return common
        return common | self._outcome()

    def _outcome(self) -> dict[str, object]:
        """The call's outcome once ``done`` (or the stream ended): failure, status, health."""
        first = bytes(self.first)
        if self.not_http2:
            sent = describe_bytes(first[:_PEEK])
            return {
                "failure": "not_http2",
                "peer_sent": sent,
                "reason": f"the peer does not speak HTTP/2: it answered with {sent}",
            }
        if self.protocol_error is not None:
            return self._synthesised(
                "protocol", 13, "client", f"broken answer: {self.protocol_error}"
            ) | {"protocol_error": self.protocol_error}
        response = self.response
        if response is None or not self.ended:
            if self.rst is not None:
                code = wire.status_from_rst_stream(self.rst)
                name = _error_code_name(self.rst)
                return self._synthesised(
                    "reset_stream", code, "rst_stream", f"the server reset the call ({name})"
                )
            if self.goaway is not None:
                name = _error_code_name(self.goaway[0])
                return self._synthesised(
                    "goaway", 14, "goaway", f"the server ended the connection (GOAWAY {name})"
                )
            return {"failure": "closed", "reason": "the connection ended before the answer"}

        trailers = self.trailers
        trailers_only = trailers is None and "grpc-status" in response
        source: wire.StatusSource = "trailers_only" if trailers_only else "trailers"
        fields = response if trailers_only else (trailers or {})
        kept = {k: v for k, v in fields.items() if k.startswith("grpc-") and not k.endswith("-bin")}
        out: dict[str, object] = {
            "trailers": dict(list(kept.items())[:_TRAILERS_KEPT]),
            "trailers_only": trailers_only,
        }
        if "grpc-message" in fields:
            out["grpc_message"] = wire.decode_grpc_message(fields["grpc-message"])
        http_status = response.get(":status", "")
        if "grpc-status" not in fields:
            # PROTOCOL-HTTP2.md: "Implementations must synthesize a Status"; the mapping is
            # http-grpc-status-mapping.md. The body is what a proxy or web server said.
            code = wire.status_from_http(int(http_status)) if http_status.isdigit() else 2
            kind = response.get("content-type", "no content-type")
            return (
                out
                | self._synthesised(
                    "not_grpc",
                    code,
                    "http_status",
                    f"HTTP {http_status or '?'} ({kind}) without a gRPC status",
                )
                | {"body_preview": _preview(bytes(self.body))}
            )
        try:
            status = wire.parse_status(fields["grpc-status"])
        except wire.GrpcProtocolError as exc:
            # statuscodes.md: "Error parsing returned status" is UNKNOWN, at the client.
            return (
                out
                | self._synthesised("protocol", 2, "client", str(exc))
                | {"protocol_error": str(exc)}
            )
        out |= {
            "grpc_status": status,
            "grpc_status_name": wire.status_name(status),
            "status_from": source,
        }
        if status != 0:
            message = out.get("grpc_message")
            out["reason"] = f"gRPC status {wire.status_name(status)}" + (
                f": {message}" if message else ""
            )
            return out
        return out | self._health()

    def _health(self) -> dict[str, object]:
        """Decode the one HealthCheckResponse of an OK call.

        statuscodes.md: a response cardinality violation (no message, or two) is
        UNIMPLEMENTED at the client; a message that does not parse is INTERNAL.
        """
        body = bytes(self.body)
        if not body:
            return self._broken(12, "gRPC status OK without a response message")
        try:
            parsed = wire.parse_message(body)
            if parsed is None:
                return self._broken(13, f"the response message is cut short ({len(body)} bytes)")
            message, rest = parsed
            if rest:
                return self._broken(12, "more than one response message")
            if message.compressed:
                return self._broken(13, "a compressed message, although none was accepted")
            health = wire.decode_health_response(message.payload)
        except wire.GrpcProtocolError as exc:
            return self._broken(13, str(exc))
        name = wire.SERVING_STATUS_NAMES.get(health)
        shown = name or f"an unknown status ({health})"
        return {
            "health_status": health,
            "health_status_name": name,
            "healthy": health == 1,
            "reason": f"{'the server' if not self.service else repr(self.service)} is {shown}",
        }

    def _broken(self, code: int, what: str) -> dict[str, object]:
        return self._synthesised("protocol", code, "client", f"broken gRPC answer: {what}") | {
            "protocol_error": what
        }

    @staticmethod
    def _synthesised(
        failure: wire.GrpcFailure, code: int | None, source: wire.StatusSource, reason: str
    ) -> dict[str, object]:
        return {
            "failure": failure,
            "grpc_status": code,
            "grpc_status_name": None if code is None else wire.status_name(code),
            "status_from": None if code is None else source,
            "reason": reason,
        }


def progress(exchange: HealthCall) -> str:
    """How far the call got, for a reason line ("after the HTTP/2 SETTINGS, ...")."""
    if exchange.received == 0:
        return "without sending anything"
    if not exchange.http2:
        return f"after {exchange.received} bytes that are not an HTTP/2 preface"
    if exchange.response is None:
        return "after the HTTP/2 SETTINGS, before any response headers"
    return "after the response headers, before the gRPC status"


def timeout_reason(exchange: HealthCall, timeout: float) -> str:
    """The reason line of a call the read timeout ended."""
    within = f"within {timeout:g} s"
    if exchange.received == 0:
        return f"the server sent nothing {within}, not even the HTTP/2 SETTINGS"
    if not exchange.http2:
        return f"{exchange.received} bytes but no HTTP/2 SETTINGS {within}"
    if exchange.response is None:
        return f"HTTP/2 is up, but no response headers came {within}"
    return f"response headers came, but no gRPC status {within}"


def _http1_head(data: bytes) -> tuple[str | None, int | None, dict[str, str]]:
    """The version, status code and headers of an HTTP/1.x answer at the start of ``data``
    (RFC 9112 §4: ``HTTP/1.1 400 Bad Request``), as far as it arrived; nothing otherwise."""
    m = _HTTP1_STATUS.match(data)
    if m is None:
        return None, None, {}
    headers: dict[str, str] = {}
    for line in data[m.end() :].split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        key = name.strip().decode("latin-1").lower()
        if sep and key and key not in headers:
            headers[key] = value.strip().decode("latin-1")[:_VALUE_CAP]
    return m.group(1).decode(), int(m.group(2)), headers


def _starts_like_settings(first: bytes) -> bool:
    """Whether the first bytes can begin a SETTINGS frame (RFC 9113 §4.1, §6.5): a 24-bit
    length that is a multiple of 6, type 0x4, flags 0 (a first SETTINGS is no ACK), stream 0.
    Fewer than 9 bytes are judged by what is there."""
    if len(first) >= 3:
        length = int.from_bytes(first[:3], "big")
        if length % 6 or length > 16384:
            return False
    elif first[:1] not in (b"", b"\x00"):
        return False
    if len(first) >= 4 and first[3] != 0x04:
        return False
    if len(first) >= 5 and first[4] & 0x01:
        return False
    return not (len(first) >= 9 and int.from_bytes(first[5:9], "big") & 0x7FFFFFFF)


def _headers(raw: list[tuple[bytes, bytes]] | object) -> dict[str, str]:
    """Header pairs as text (latin-1: never fails), lower-case names, values cut; the first
    of a repeated name wins."""
    out: dict[str, str] = {}
    if not isinstance(raw, list):
        return out
    for name, value in raw:
        key = bytes(name).decode("latin-1").lower()
        if key not in out:
            out[key] = bytes(value).decode("latin-1")[:_VALUE_CAP]
    return out


def _setting_name(code: int) -> str:
    try:
        return h2.settings.SettingCodes(code).name
    except ValueError:
        return _EXTRA_SETTINGS.get(int(code), f"0x{int(code):x}")


def _error_code_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return f"0x{code:x}"


def _preview(body: bytes) -> str | None:
    if not body:
        return None
    text = body[:_PREVIEW].decode("utf-8", "replace")
    return text + ("..." if len(body) > _PREVIEW else "")
