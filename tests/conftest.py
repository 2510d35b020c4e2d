"""Shared fixtures: the anyio backend, the CI rule for skips, and loopback servers."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from netprobe.demo.servers import DnsServer, SilentPort, TcpServer

if TYPE_CHECKING:
    from topology import Lab

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
def lab() -> Iterator[Lab]:
    """The namespace fault lab (tests/lab/topology.py), shared by every lab test module: its
    namespace names carry the pid, so a process can hold only one."""
    require_root()
    require_binary("ip")
    require_binary("nft")
    require(os.path.exists("/dev/net/tun"), "needs /dev/net/tun for the delay line")
    from topology import build_lab  # tests/lab is on sys.path once a lab test is collected

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
