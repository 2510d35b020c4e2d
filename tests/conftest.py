"""Shared fixtures: the anyio backend, the CI rule for skips, and loopback servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from netprobe.demo.servers import DnsServer, SilentPort, TcpServer

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` on a laptop; fail under CI=true, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces, nftables)")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"needs the {name!r} binary")
    assert path is not None
    return path


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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
