"""netprobe.testing: the public fixture servers, checked as a user of them would.

Each server is checked against the standard library's own client (not netprobe), so a
server that drifted would fail here before it made a netprobe test pass for a wrong reason.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

import netprobe
import netprobe.testing
from netprobe.testing import (
    CertBook,
    DnsServer,
    L7Server,
    RedisServer,
    SilentPort,
    TcpServer,
    closed_port,
)
from nplab.require import require_binary


def test_public_surface_is_pinned() -> None:
    assert netprobe.testing.__all__ == (
        "CertBook",
        "DnsServer",
        "L7Server",
        "RedisServer",
        "SilentPort",
        "TcpServer",
        "closed_port",
    )
    for name in netprobe.testing.__all__:
        obj = getattr(netprobe.testing, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"


@pytest.mark.parametrize("host", ["0.0.0.0", "198.18.0.1", "::", "example.com"])
def test_loopback_only(host: str) -> None:
    for make in (
        lambda: TcpServer(host=host),
        lambda: SilentPort(host),
        lambda: DnsServer(host=host),
        lambda: L7Server(host=host),
        lambda: closed_port(host),
    ):
        with pytest.raises(ValueError, match="loopback only"):
            make()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def no_leaks() -> Iterator[None]:
    fds, threads = _fds(), threading.active_count()
    yield
    deadline = time.monotonic() + 2.0
    while (_fds() > fds or threading.active_count() > threads) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _fds() <= fds, "a file descriptor leaked"
    assert threading.active_count() <= threads, "a thread leaked"


def test_tcp_server_accepts_counts_and_cleans_up(no_leaks: None) -> None:
    with TcpServer() as server:
        conns = [socket.create_connection(("127.0.0.1", server.port), timeout=2) for _ in range(5)]
        deadline = time.monotonic() + 2
        while server.accepted < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.accepted == 5
        # close() shuts the held connections down: each client sees EOF.
    for c in conns:
        c.settimeout(2)
        assert c.recv(1) == b""
        c.close()


def test_tcp_server_handler_and_ipv6(no_leaks: None) -> None:
    def echo(conn: socket.socket) -> None:
        conn.sendall(conn.recv(64).upper())

    with TcpServer(echo, host="::1") as server:
        assert server.address == f"[::1]:{server.port}"
        with socket.create_connection(("::1", server.port), timeout=2) as c:
            c.sendall(b"ping")
            assert c.recv(64) == b"PING"


def test_closed_port_refuses() -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", closed_port()), timeout=2)


def test_silent_port_drops_syns(no_leaks: None) -> None:
    with SilentPort() as port, pytest.raises(TimeoutError):
        socket.create_connection(("127.0.0.1", port.port), timeout=0.3)


def test_dns_server_answers_from_its_records(no_leaks: None) -> None:
    with DnsServer(
        {"db.test": ["127.0.0.1", "::1"], "empty.test": []},
        servfail={"bad.test"},
        silent={"x.test"},
    ) as server:

        def ask(name: str, rdtype: str = "A") -> dns.message.Message:
            query = dns.message.make_query(name, rdtype)
            return dns.query.udp(query, "127.0.0.1", port=server.port, timeout=1)

        assert [r.to_text() for r in ask("db.test").answer[0]] == ["127.0.0.1"]
        assert [r.to_text() for r in ask("DB.test.", "AAAA").answer[0]] == ["::1"]
        assert ask("empty.test").rcode() == dns.rcode.NOERROR and not ask("empty.test").answer
        assert ask("bad.test").rcode() == dns.rcode.SERVFAIL
        assert ask("nope.test").rcode() == dns.rcode.NXDOMAIN
        with pytest.raises(dns.exception.Timeout):
            ask("x.test")
        assert server.queries == 7


def _verify(book: CertBook, kind: str, host: str = "localhost") -> int | None:
    """Connect with the standard library's verifying client; the OpenSSL verify code."""
    with L7Server("tls", ssl_context=book.server_context(kind)) as server:
        ctx = ssl.create_default_context(cafile=book.ca_file)
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=2)
        try:
            with ctx.wrap_socket(raw, server_hostname=host):
                return None
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_code
        finally:
            raw.close()


@pytest.fixture(scope="module")
def book() -> Iterator[CertBook]:
    with CertBook() as made:
        yield made


@pytest.mark.parametrize(
    ("kind", "host", "verify_code"),
    [
        ("valid", "localhost", None),
        ("full_chain", "localhost", None),
        ("expired", "localhost", 10),  # X509_V_ERR_CERT_HAS_EXPIRED
        ("not_yet_valid", "localhost", 9),  # X509_V_ERR_CERT_NOT_YET_VALID
        ("unknown_ca", "localhost", 20),  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        ("self_signed", "localhost", 18),  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        ("incomplete_chain", "localhost", 20),
        ("wrong_host", "localhost", 62),  # X509_V_ERR_HOSTNAME_MISMATCH
        ("no_ip_san", "127.0.0.1", 64),  # X509_V_ERR_IP_ADDRESS_MISMATCH
        ("expiring_soon", "localhost", None),
    ],
)
def test_cert_book_kinds_as_openssl_sees_them(
    book: CertBook, kind: str, host: str, verify_code: int | None
) -> None:
    assert _verify(book, kind, host) == verify_code


def test_cert_book_every_kind_is_tested() -> None:
    assert set(CertBook.KINDS) == {
        "valid",
        "full_chain",
        "expired",
        "not_yet_valid",
        "unknown_ca",
        "self_signed",
        "incomplete_chain",
        "wrong_host",
        "no_ip_san",
        "expiring_soon",
    }


def test_cert_book_mutual_tls_and_files(book: CertBook) -> None:
    with L7Server("tls", ssl_context=book.server_context(require_client_cert=True)) as server:
        ctx = ssl.create_default_context(cafile=book.ca_file)
        ctx.load_cert_chain(book.client_cert_file, book.client_key_file)
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=2) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert tls.recv(1024).startswith(b"HTTP/1.1 200 OK")
    cert, key = book.cert_files("expired")
    assert Path(cert).read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"PRIVATE KEY" in Path(key).read_bytes()
    with pytest.raises(ValueError, match="unknown certificate kind"):
        book.leaf("nope")


def test_cert_book_removes_its_files() -> None:
    with CertBook() as made:
        path = made.path
        made.cert_files("valid")
        assert path.exists()
    assert not path.exists()


def test_cert_book_needs_no_trustme() -> None:
    """trustme is a development-only library: a plain install must make every kind."""
    code = (
        "import sys; sys.modules['trustme'] = None\n"
        "from netprobe.testing import CertBook\n"
        "with CertBook() as b:\n"
        "    [b.server_context(k) for k in b.KINDS]\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def _http(port: int, path: str, *, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        return c.recv(4096)


def test_l7_server_answers_by_path(no_leaks: None) -> None:
    with L7Server("http") as server:
        assert _http(server.port, "/health").startswith(b"HTTP/1.1 200 OK")
        busy = _http(server.port, "/busy")
        assert busy.startswith(b"HTTP/1.1 503") and b"Retry-After: 120" in busy
        assert _http(server.port, "/nope").startswith(b"HTTP/1.1 404")
        assert not _http(server.port, "/garbage").startswith(b"HTTP/")
        with pytest.raises(TimeoutError):
            _http(server.port, "/hang", timeout=0.3)
        assert server.accepted == 5


def test_l7_server_modes(no_leaks: None) -> None:
    with L7Server("reset") as reset, L7Server("silent") as silent:
        with (
            socket.create_connection(("127.0.0.1", reset.port), timeout=2) as c,
            pytest.raises(ConnectionResetError),
        ):
            c.sendall(b"hello")
            c.recv(1)
        with pytest.raises(TimeoutError):
            _http(silent.port, "/", timeout=0.3)
    with pytest.raises(ValueError, match="ssl_context"):
        L7Server("tls")
    with pytest.raises(ValueError, match="unknown mode"):
        L7Server("ftp")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_usable_from_an_async_test(book: CertBook) -> None:
    """The servers run in their own threads: ``with`` in an async test, the loop stays free."""
    with L7Server("tls", ssl_context=book.server_context("expired")) as server:
        url = f"https://localhost:{server.port}/"
        report = await netprobe.diagnose(url, ca_file=book.ca_file, icmp=False, timeout=5)
    assert report.fault is not None and report.fault.code == "tls.cert_expired"


def test_redis_server_restarts_on_its_port(no_leaks: None) -> None:
    require_binary("redis-server")
    with RedisServer("--maxclients", "5") as redis:
        assert redis.command("PING") == b"+PONG\r\n"
        assert b"maxclients\r\n$1\r\n5" in redis.command("CONFIG", "GET", "maxclients")
        redis.stop()
        with pytest.raises(ConnectionRefusedError):
            redis.command("PING")
        redis.start()
        assert redis.command("PING") == b"+PONG\r\n"
        directory = redis.dir
    assert not os.path.exists(directory)


def test_redis_server_missing_binary_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not RedisServer.available()
    with pytest.raises(FileNotFoundError, match="apt install redis-server"):
        RedisServer()


def test_the_documented_example_suite_passes() -> None:
    """examples/test_startup_check.py, the docs' "in your own test suite" example, is green."""
    example = Path(__file__).resolve().parent.parent / "examples" / "test_startup_check.py"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(example), "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout
