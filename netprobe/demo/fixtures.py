"""The servers the demo's cases name, all from `netprobe.testing`, started on demand.

Each fixture is started at most once, inside the demo's ``ExitStack`` (so everything is
removed at the end), and may use other fixtures (``need("pki")``). A fixture whose
requirement is missing here says why; the demo then skips the cases that use it, and says so.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..testing import CertBook, DnsServer, L7Server, RedisServer, SilentPort, TcpServer
from ..testing import closed_port as _closed_port

__all__ = ["FIXTURES", "Fixture", "Need"]

#: Returns another fixture's object, starting it if need be.
Need = Callable[[str], Any]


@dataclass(frozen=True)
class Fixture:
    """How to start one server: ``start(stack, need)`` returns the object cases refer to."""

    start: Callable[[contextlib.ExitStack, Need], object]
    #: Why the fixture cannot start on this machine, or None when it can.
    missing: Callable[[], str | None] = lambda: None


def _redis_missing() -> str | None:
    if RedisServer.available():
        return None
    return "redis-server is not installed (Debian/Ubuntu: apt install redis-server)"


def _redis_full(stack: contextlib.ExitStack, need: Need) -> RedisServer:
    """A real redis-server whose only client slot is taken by a real, registered client."""
    full = stack.enter_context(RedisServer("--maxclients", "1"))
    holder = stack.enter_context(socket.create_connection(("127.0.0.1", full.port), timeout=2.0))
    holder.sendall(b"PING\r\n")
    holder.recv(64)
    return full


def _tls(kind: str = "valid", **kwargs: Any) -> Callable[[contextlib.ExitStack, Need], L7Server]:
    def start(stack: contextlib.ExitStack, need: Need) -> L7Server:
        book: CertBook = need("pki")
        ctx = book.server_context(kind, **kwargs)
        return stack.enter_context(L7Server("tls", ssl_context=ctx))

    return start


def _tls12_client(stack: contextlib.ExitStack, need: Need) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=need("pki").ca_file)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


FIXTURES: dict[str, Fixture] = {
    "tcp": Fixture(lambda stack, need: stack.enter_context(TcpServer())),
    "closed": Fixture(lambda stack, need: _closed_port()),
    "silent": Fixture(lambda stack, need: stack.enter_context(SilentPort())),
    "dns": Fixture(
        lambda stack, need: stack.enter_context(DnsServer({"db.demo.test": ["127.0.0.1"]}))
    ),
    "redis": Fixture(lambda stack, need: stack.enter_context(RedisServer()), _redis_missing),
    "redis_full": Fixture(_redis_full, _redis_missing),
    "pki": Fixture(lambda stack, need: stack.enter_context(CertBook())),
    "tls_valid": Fixture(_tls()),
    "tls_expired": Fixture(_tls("expired")),
    "tls_wrong_host": Fixture(_tls("wrong_host")),
    "tls_unknown_ca": Fixture(_tls("unknown_ca")),
    "tls_expiring_soon": Fixture(_tls("expiring_soon")),
    "tls_client_cert": Fixture(_tls(require_client_cert=True)),
    "tls13_only": Fixture(_tls(minimum_version=ssl.TLSVersion.TLSv1_3)),
    "tls12_client": Fixture(_tls12_client),
    "http": Fixture(lambda stack, need: stack.enter_context(L7Server("http"))),
    "mute": Fixture(lambda stack, need: stack.enter_context(L7Server("silent"))),
    "reset": Fixture(lambda stack, need: stack.enter_context(L7Server("reset"))),
}
