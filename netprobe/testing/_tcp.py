"""TCP fixtures: a listener that accepts, a port that drops SYNs, a port nobody listens on."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

from ._base import ThreadedServer, family_of

__all__ = ["SilentPort", "TcpServer", "closed_port"]

#: Serves one accepted connection; runs in its own thread, the socket is closed after it.
Handler = Callable[[socket.socket], None]


def closed_port(host: str = "127.0.0.1") -> int:
    """A loopback port on which nothing listens: a connect gets RST (``l4.refused``).

    The port is bound once by us and released, so it was free a moment ago; nothing in this
    process will bind it again.
    """
    ThreadedServer._check_host(host)
    with socket.socket(family_of(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
    return port


class TcpServer(ThreadedServer):
    """A TCP listener on loopback: accepts every connection and serves it with ``handler``.

    The default handler holds the connection until the peer closes it (or 10 s pass
    without a byte): enough for ``tcp://`` targets and connection pools. Each connection is
    served in its own thread, so the server works the same for sync and async tests.

    Example:
        ```python
        from netprobe.testing import TcpServer, closed_port

        async def test_startup_check_names_the_fault():
            with TcpServer() as db:
                assert (await my_service.check(f"tcp://{db.address}")).ok
            report = await my_service.check(f"127.0.0.1:{closed_port()}")
            assert report.fault.code == "l4.refused"
        ```

    Args:
        handler: called with each accepted socket, in its own thread.
        host: a loopback address (``127.0.0.1`` or ``::1``).
        port: 0 picks a free port.
        backlog: the listen backlog.

    Attributes:
        accepted: connections accepted so far.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        backlog: int = 128,
    ) -> None:
        self._check_host(host)
        self._sock = socket.socket(family_of(host), socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(backlog)
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(0.1)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self._handler = handler or _hold_until_closed
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._init_workers()
        self.accepted = 0
        self._thread = threading.Thread(
            target=self._serve, name=f"tcp-server-{self.port}", daemon=True
        )
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:  # the 0.1 s accept timeout, or the socket closed by close()
                continue
            self.accepted += 1
            conn.settimeout(10.0)
            with self._lock:
                self._conns.add(conn)
            self._start_worker(self._run, conn)

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
        """Stop listening, shut every open connection down and join the threads."""
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()
        with self._lock:
            for c in list(self._conns):
                with contextlib.suppress(OSError):
                    c.shutdown(socket.SHUT_RDWR)
        self._join_workers(2.0)

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


class SilentPort(ThreadedServer):
    """A loopback port whose SYNs go unanswered, as behind a firewall's DROP: ``l4.filtered``.

    Needs no root. Linux drops a SYN when the listener's accept queue is full
    (``tcp_conn_request``, counted as LISTENOVERFLOWS), exactly as a firewall's DROP looks
    from the client. The port listens with backlog 0, never accepts, and its queue is filled
    with its own connections.

    Example:
        ```python
        with SilentPort() as port:
            report = await netprobe.diagnose(f"tcp://{port.address}", connect_timeout=0.5)
            assert report.fault.code == "l4.filtered"
        ```
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._check_host(host)
        self._family = family_of(host)
        self._sock = socket.socket(self._family, socket.SOCK_STREAM)
        self._fillers: list[socket.socket] = []
        try:
            self._sock.bind((host, 0))
            self._sock.listen(0)
            self.host = host
            self.port = self._sock.getsockname()[1]
            self._fill()
        except BaseException:
            self.close()
            raise

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
        """Close the listener and the connections that fill its queue."""
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
