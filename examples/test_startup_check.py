"""Testing a service's own dependency check with netprobe.testing, in the service's test suite.

The service below refuses to start without its database and its upstream API, and names the
fault of each that is not ready. Its tests start real servers on loopback (a listener, a
closed port, an HTTPS API with an expired certificate) instead of mocking the network.

Run: pytest examples/test_startup_check.py
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import netprobe
from netprobe.testing import CertBook, L7Server, TcpServer, closed_port


# --8<-- [start:service]
async def startup_check(database: str, api: str, *, ca_file: str | None = None) -> None:
    """The service's startup check: raises with the fault of each dependency not ready."""
    await netprobe.wait_until_ready([database, api], timeout=1, ca_file=ca_file, icmp=False)


# --8<-- [end:service]


# --8<-- [start:tests]
@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def book() -> Iterator[CertBook]:
    with CertBook() as made:  # a CA, and the certificate of every TLS fault
        yield made


@pytest.mark.anyio
async def test_starts_when_everything_is_up(book: CertBook) -> None:
    with TcpServer() as db, L7Server("tls", ssl_context=book.server_context()) as api:
        await startup_check(
            f"tcp://{db.address}", f"https://localhost:{api.port}/health", ca_file=book.ca_file
        )


@pytest.mark.anyio
async def test_names_a_database_that_refuses(book: CertBook) -> None:
    with (
        L7Server("tls", ssl_context=book.server_context()) as api,
        pytest.raises(netprobe.DependencyUnavailable, match=r"l4\.refused") as failed,
    ):
        await startup_check(
            f"127.0.0.1:{closed_port()}",
            f"https://localhost:{api.port}/health",
            ca_file=book.ca_file,
        )
    assert [r.fault.code for r in failed.value.failing if r.fault] == ["l4.refused"]


@pytest.mark.anyio
async def test_names_an_expired_certificate(book: CertBook) -> None:
    with (
        TcpServer() as db,
        L7Server("tls", ssl_context=book.server_context("expired")) as api,
        pytest.raises(netprobe.DependencyUnavailable, match=r"tls\.cert_expired"),
    ):
        await startup_check(
            f"tcp://{db.address}", f"https://localhost:{api.port}/health", ca_file=book.ca_file
        )


# --8<-- [end:tests]
