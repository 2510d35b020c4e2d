"""Shared fixtures: the anyio backend, the CI rule for skips, and loopback servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from netprobe.testing import DnsServer, SilentPort, TcpServer
from nplab.require import require, require_binary, require_root

if TYPE_CHECKING:
    from nplab.topology import Lab


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``backends`` run under asyncio and under trio: netprobe is written
    against anyio and supports both (docs/api.md); the asyncio-only fast paths (ICMP
    reader callback, canary timer) have their backend-neutral twin tested under trio."""
    definition = metafunc.definition
    if (
        "anyio_backend" in metafunc.fixturenames
        and definition.get_closest_marker("backends") is not None
        and definition.get_closest_marker("asyncio_only") is None
    ):
        metafunc.parametrize("anyio_backend", ["asyncio", "trio"])


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """The namespace fault lab (nplab/topology.py), shared by every lab test module: its
    namespace names carry the pid, so a process can hold only one."""
    require_root()
    require_binary("ip")
    require_binary("nft")
    require(os.path.exists("/dev/net/tun"), "needs /dev/net/tun for the delay line")
    from nplab.topology import build_lab

    with build_lab() as built:
        yield built


@pytest.fixture(scope="session")
def tcp_server() -> Iterator[TcpServer]:
    with TcpServer() as server:
        yield server


@pytest.fixture(scope="session")
def silent_port() -> Iterator[SilentPort]:
    with SilentPort() as port:
        yield port


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    records = {
        "db.netprobe.test": ["127.0.0.1"],
        "dual.netprobe.test": ["127.0.0.1", "::1"],
        "nodata.netprobe.test": [],
    }
    with DnsServer(
        records, servfail={"broken.netprobe.test"}, silent={"slow.netprobe.test"}
    ) as server:
        yield server
