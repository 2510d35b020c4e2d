"""Small real servers on loopback, for `netprobe demo` and the test suite.

Thread-based so they serve sync and async callers alike. Each one is a context manager that
removes every socket and thread it made. They bind to loopback only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

__all__ = ["DnsServer", "SilentPort", "TcpServer", "closed_port"]

Handler = Callable[[socket.socket], None]


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port on which nothing listens (bound once by us, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


class TcpServer:
    """Accepts connections and hands each to ``handler`` in its own thread.

    The default handler holds the connection until the peer closes it.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backlog: int = 128,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self._sock.listen(backlog)
        self._sock.settimeout(0.1)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._handler = handler or _hold_until_closed
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.accepted = 0
        self._thread = threading.Thread(
            target=self._serve, name=f"tcp-server-{self.port}", daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.settimeout(10.0)
            with self._lock:
                self._conns.add(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self._handler(conn)
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(2.0)

    def __enter__(self) -> TcpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _hold_until_closed(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass


class SilentPort:
    """A port whose SYNs are dropped, without root: a listener whose accept queue is full.

    Linux drops a SYN when the listener's accept queue is full (tcp_conn_request,
    LISTENOVERFLOWS), exactly as a firewall's DROP looks from the client. We listen with
    backlog 0, never accept, and fill the queue with our own connections.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._family = family
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.bind((host, 0))
        self._sock.listen(0)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self._fillers: list[socket.socket] = []
        try:
            self._fill()
        except BaseException:
            self.close()
            raise

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _fill(self) -> None:
        for _ in range(8):
            s = socket.socket(self._family, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex((self.host, self.port))
            deadline = time.monotonic() + 0.2
            established = False
            while time.monotonic() < deadline:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and _is_connected(s):
                    established = True
                    break
                time.sleep(0.005)
            if not established:
                s.close()
                return
            self._fillers.append(s)
        raise RuntimeError("could not fill the accept queue of the silent port")

    def close(self) -> None:
        for s in self._fillers:
            s.close()
        self._fillers.clear()
        self._sock.close()

    def __enter__(self) -> SilentPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_connected(s: socket.socket) -> bool:
    try:
        s.getpeername()
    except OSError:
        return False
    return True


class DnsServer:
    """A tiny authoritative UDP name server on loopback.

    ``records`` maps a name to its addresses (A and AAAA by family); a name mapped to an
    empty list exists with no address (NODATA); names in ``servfail`` get SERVFAIL, names in
    ``silent`` get no answer; any other name is NXDOMAIN. ``port`` 0 picks a free port.
    """

    def __init__(
        self,
        records: dict[str, list[str]] | None = None,
        *,
        servfail: set[str] | None = None,
        silent: set[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.records = {self._norm(k): v for k, v in (records or {}).items()}
        self.servfail = {self._norm(n) for n in (servfail or set())}
        self.silent = {self._norm(n) for n in (silent or set())}
        self._sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
        )
        self._sock.bind((host, port))
        self._sock.settimeout(0.1)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{self.port}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @staticmethod
    def _norm(name: str) -> str:
        return name.rstrip(".").lower() + "."

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - a malformed query gets no answer
                continue
            self.queries += 1
            reply = self._answer(query)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self._sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        question = query.question[0]
        name = question.name.to_text().lower()
        if name in self.silent:
            return None
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        want_v6 = question.rdtype == dns.rdatatype.AAAA
        addrs = [a for a in self.records[name] if (":" in a) == want_v6]
        if addrs and question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, question.rdtype, addrs
                )
            )
        return response

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def serving(*servers: TcpServer | SilentPort | DnsServer) -> Iterator[None]:
    try:
        yield
    finally:
        for s in servers:
            s.close()
