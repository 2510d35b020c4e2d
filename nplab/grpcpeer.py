"""Real gRPC servers (grpcio, the reference implementation) for the gRPC health probe's tests.

The servers run in a child process (``python -m nplab.grpcpeer SPEC``), so that grpcio's
threads and its C core never live in the test process; :class:`GrpcPeers` starts it, reads
the ports it bound (loopback only) and stops it. Each server in the spec is one of:

* ``health``: the standard ``grpc_health.v1.health.HealthServicer`` with the given statuses
  (``{"": "SERVING", "pkg.Down": "NOT_SERVING"}``); optionally over TLS (``cert``, ``key``),
  requiring a client certificate from the CA in ``client_ca``;
* ``no_health``: a gRPC server with another service only (the health method: UNIMPLEMENTED);
* ``error``: ``Health/Check`` ends with a given status code and message;
* ``slow``: ``Health/Check`` answers SERVING after ``delay`` seconds.

:class:`H2Peer` answers what grpcio never sends but proxies and broken servers do, with the
``h2`` library on the server side (real HTTP/2 over a real loopback socket): RST_STREAM,
GOAWAY, malformed messages and statuses, an Envoy-style UNAVAILABLE, a proxy's 502 page,
PINGs forever, DATA forever (see ``H2_MODES``).

:class:`NginxPeer` is the other side: a real nginx (the Debian package) on loopback as the
web servers a gRPC target may hit by mistake: plain HTTP/1.1, HTTPS without ``h2`` in ALPN,
and HTTP/2 (cleartext, prior knowledge) that is not gRPC.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["H2_MODES", "GrpcPeers", "H2Peer", "NginxPeer"]

_ROOT = Path(__file__).resolve().parent.parent
_START_TIMEOUT_S = 30.0


class GrpcPeers:
    """A child process serving gRPC on loopback; ``ports[name]`` is each server's port.

    Args:
        spec: server name -> ``{"kind": ..., ...}`` (see the module docstring).
    """

    def __init__(self, spec: dict[str, dict[str, Any]]) -> None:
        self.spec = spec
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "nplab.grpcpeer", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=_ROOT,
            text=True,
            env={**os.environ, "GRPC_VERBOSITY": "ERROR"},
        )
        try:
            self.ports: dict[str, int] = self._read_ports()
        except BaseException:
            self.close()
            raise

    def _read_ports(self) -> dict[str, int]:
        assert self._proc.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self._proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(_START_TIMEOUT_S)
        if not line or not line[0].strip():
            err = ""
            if self._proc.poll() is not None and self._proc.stderr is not None:
                err = self._proc.stderr.read()[-2000:]
            raise RuntimeError(f"the gRPC test server did not start: {err or 'no answer'}")
        ports: dict[str, int] = json.loads(line[0])
        return ports

    def close(self) -> None:
        """Stop the child: closing its stdin asks it to stop; a kill if it does not."""
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def __enter__(self) -> GrpcPeers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NginxPeer:
    """nginx on loopback with three servers: ``ports["http1"]`` (HTTP/1.1 only),
    ``ports["tls_http1"]`` (TLS, ALPN http/1.1 only) and ``ports["h2c"]`` (cleartext HTTP/2
    answering 404 to every path, as a web server without a gRPC route does).

    Args:
        cert: PEM chain for the TLS server. key: its private key (PEM).
    """

    def __init__(self, cert: bytes, key: bytes) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self._dir = tempfile.TemporaryDirectory(prefix="netprobe-nginx-")
        root = Path(self._dir.name)
        (root / "cert.pem").write_bytes(cert)
        (root / "key.pem").write_bytes(key)
        self.ports = {name: _free_port() for name in ("http1", "tls_http1", "h2c")}
        temp = "\n".join(
            f"    {kind}_temp_path {root}/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (root / "nginx.conf").write_text(
            f"""daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{temp}
    server {{
        listen 127.0.0.1:{self.ports["http1"]};
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.ports["tls_http1"]} ssl;
        ssl_certificate {root}/cert.pem;
        ssl_certificate_key {root}/key.pem;
        location / {{ return 200 "ok\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.ports["h2c"]} http2;
        location / {{ return 404; }}
    }}
}}
"""
        )
        self._proc = subprocess.Popen(
            [binary, "-p", str(root), "-c", str(root / "nginx.conf")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
        )
        try:
            self._wait_ready(root)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, root: Path) -> None:
        deadline = time.monotonic() + 10.0
        waiting = set(self.ports.values())
        while waiting and time.monotonic() < deadline:
            if self._proc.poll() is not None:
                log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
                raise RuntimeError(f"nginx exited: {log[-2000:]}")
            for port in list(waiting):
                with socket.socket() as s, contextlib.suppress(OSError):
                    s.settimeout(0.2)
                    s.connect(("127.0.0.1", port))
                    waiting.discard(port)
            time.sleep(0.05)
        if waiting:
            raise RuntimeError(f"nginx did not listen on {sorted(waiting)} within 10 s")

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5.0)
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._dir.cleanup()

    def __enter__(self) -> NginxPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: What :class:`H2Peer` does once the health request has arrived.
H2_MODES = (
    "rst_refused",  # RST_STREAM REFUSED_STREAM
    "goaway",  # GOAWAY ENHANCE_YOUR_CALM with debug data 'too_many_pings' (grpc-go's words)
    "bad_flag",  # a message whose compressed flag is 2
    "no_message",  # grpc-status 0 without a message
    "two_messages",  # grpc-status 0 after two messages
    "bad_status",  # Trailers-Only with grpc-status 'OK'
    "compressed",  # a compressed message although the client accepted no encoding
    "unknown_health",  # SERVING status number 7 (unknown to the client)
    "service_unknown",  # OK, SERVICE_UNKNOWN (meant for Watch; some servers send it to Check)
    "envoy_unavailable",  # Envoy's Trailers-Only UNAVAILABLE for a dead upstream
    "proxy_502",  # HTTP/2 502 text/html from a proxy, with via and proxy-status
    "trickle",  # SETTINGS, then a PING every 50 ms, forever
    "flood",  # response headers, then DATA forever
)

_ENVOY_MESSAGE = (
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)


class H2Peer:
    """A loopback HTTP/2 server (``h2``, server side) that answers the health check with
    ``mode`` (one of :data:`H2_MODES`). Thread per connection; ``close()`` joins them."""

    def __init__(self, mode: str) -> None:
        if mode not in H2_MODES:
            raise ValueError(f"unknown H2Peer mode {mode!r}")
        self.mode = mode
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)
        self._accept.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, sock: socket.socket) -> None:
        import h2.config
        import h2.connection
        import h2.events
        import h2.exceptions

        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        with sock:
            sock.settimeout(0.05)
            try:
                sock.sendall(conn.data_to_send())
                stream_id = self._read_request(sock, conn)
                if stream_id is not None:
                    self._answer(sock, conn, stream_id)
            except (OSError, h2.exceptions.H2Error):
                pass

    def _read_request(self, sock: socket.socket, conn: Any) -> int | None:
        import h2.events

        deadline = time.monotonic() + 5.0
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if not data:
                return None
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.StreamEnded):
                    sock.sendall(conn.data_to_send())
                    return int(event.stream_id)
            sock.sendall(conn.data_to_send())
        return None

    def _answer(self, sock: socket.socket, conn: Any, sid: int) -> None:
        import h2.errors

        from netprobe.protocols.grpc import frame_message

        ok = [(":status", "200"), ("content-type", "application/grpc")]
        mode = self.mode

        def trailers(status: str, message: str = "") -> None:
            extra = [("grpc-message", message)] if message else []
            conn.send_headers(sid, [("grpc-status", status), *extra], end_stream=True)

        if mode == "rst_refused":
            conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif mode == "goaway":
            conn.close_connection(
                h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, additional_data=b"too_many_pings"
            )
        elif mode in ("bad_flag", "compressed", "unknown_health", "service_unknown"):
            body = {
                "bad_flag": b"\x02\x00\x00\x00\x02\x08\x01",
                "compressed": frame_message(b"\x08\x01", compressed=True),
                "unknown_health": frame_message(b"\x08\x07"),
                "service_unknown": frame_message(b"\x08\x03"),
            }[mode]
            conn.send_headers(sid, ok)
            conn.send_data(sid, body)
            trailers("0")
        elif mode == "no_message":
            conn.send_headers(sid, ok)
            trailers("0")
        elif mode == "two_messages":
            conn.send_headers(sid, ok)
            conn.send_data(sid, frame_message(b"\x08\x01") * 2)
            trailers("0")
        elif mode == "bad_status":
            conn.send_headers(sid, [*ok, ("grpc-status", "OK")], end_stream=True)
        elif mode == "envoy_unavailable":
            conn.send_headers(
                sid,
                [
                    *ok,
                    ("grpc-status", "14"),
                    ("grpc-message", _ENVOY_MESSAGE),
                    ("server", "envoy"),
                    ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
                ],
                end_stream=True,
            )
        elif mode == "proxy_502":
            page = b"<html><body><h1>502 Bad Gateway</h1></body></html>\n"
            conn.send_headers(
                sid,
                [
                    (":status", "502"),
                    ("content-type", "text/html"),
                    ("content-length", str(len(page))),
                    ("server", "edge-proxy"),
                    ("via", "1.1 edge-proxy"),
                    ("proxy-status", "edge-proxy; error=connection_refused"),
                ],
            )
            conn.send_data(sid, page, end_stream=True)
        elif mode == "trickle":
            for _ in range(400):  # 20 s at most
                if self._stop.wait(0.05):
                    return
                conn.ping(b"12345678")
                sock.sendall(conn.data_to_send())
            return
        elif mode == "flood":
            conn.send_headers(sid, ok)
            sock.sendall(conn.data_to_send())
            chunk = b"\x00" * 16000
            for _ in range(2000):  # 32 MB at most
                if self._stop.is_set():
                    return
                while conn.local_flow_control_window(sid) < len(chunk):
                    if not self._pump(sock, conn):
                        return
                conn.send_data(sid, chunk)
                sock.sendall(conn.data_to_send())
            return
        sock.sendall(conn.data_to_send())
        # Let the client read the answer before the socket closes (no RST over unread data).
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            for _ in range(20):
                if self._stop.is_set() or not sock.recv(65536):
                    break

    def _pump(self, sock: socket.socket, conn: Any) -> bool:
        """Read the client's WINDOW_UPDATEs (flow control); False once it has gone."""
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return not self._stop.is_set()
        if not data:
            return False
        conn.receive_data(data)
        sock.sendall(conn.data_to_send())
        return True

    def close(self) -> None:
        self._stop.set()
        self._accept.join(2.0)
        self._sock.close()
        for t in self._threads:
            t.join(5.0)

    def __enter__(self) -> H2Peer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies, so that a
    test run killed hard leaves no nginx behind (prctl PR_SET_PDEATHSIG, Linux)."""
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _serve(spec: dict[str, dict[str, Any]]) -> None:  # pragma: no cover - runs in the child
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    stop = threading.Event()
    servers: list[grpc.Server] = []
    ports: dict[str, int] = {}

    def check_handler(behaviour: Any) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {
                "Check": grpc.unary_unary_rpc_method_handler(
                    behaviour,
                    request_deserializer=health_pb2.HealthCheckRequest.FromString,
                    response_serializer=health_pb2.HealthCheckResponse.SerializeToString,
                )
            },
        )

    for name, server_spec in spec.items():
        kind = server_spec["kind"]
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        if kind == "health":
            servicer = health.HealthServicer()
            for service, status in server_spec.get("statuses", {}).items():
                servicer.set(service, health_pb2.HealthCheckResponse.ServingStatus.Value(status))
            health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
        elif kind == "no_health":

            def echo(request: bytes, context: Any) -> bytes:
                return request

            server.add_generic_rpc_handlers(
                (
                    grpc.method_handlers_generic_handler(
                        "netprobe.test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
                    ),
                )
            )
        elif kind == "error":
            code = getattr(grpc.StatusCode, server_spec["code"])
            message = server_spec.get("message", "")

            def fail(request: Any, context: Any, code: Any = code, message: str = message) -> Any:
                context.abort(code, message)

            server.add_generic_rpc_handlers((check_handler(fail),))
        elif kind == "slow":
            delay = float(server_spec["delay"])

            def slow(request: Any, context: Any, delay: float = delay) -> Any:
                stop.wait(delay)
                return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

            server.add_generic_rpc_handlers((check_handler(slow),))
        else:
            raise ValueError(f"unknown gRPC test server kind {kind!r}")
        address = "127.0.0.1:0"
        if "cert" in server_spec:
            chain = Path(server_spec["cert"]).read_bytes()
            key = Path(server_spec["key"]).read_bytes()
            client_ca = server_spec.get("client_ca")
            creds = grpc.ssl_server_credentials(
                [(key, chain)],
                root_certificates=Path(client_ca).read_bytes() if client_ca else None,
                require_client_auth=bool(client_ca),
            )
            ports[name] = server.add_secure_port(address, creds)
        else:
            ports[name] = server.add_insecure_port(address)
        server.start()
        servers.append(server)

    print(json.dumps(ports), flush=True)
    sys.stdin.read()  # until the parent closes our stdin (or dies)
    stop.set()
    for server in servers:
        server.stop(None)


if __name__ == "__main__":  # pragma: no cover
    _serve(json.loads(sys.argv[1]))
