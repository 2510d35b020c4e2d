"""Local host health: the /proc parser and the local.* warning rules, as plain data."""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import netprobe.probes.local as local_mod
from netprobe.classify import classify
from netprobe.options import Options
from netprobe.probes.local import (
    DiagUnavailable,
    collect_local,
    count_states,
    diag_bytecode,
    diag_request,
    gather_local,
    parse_diag,
    proc_key,
    query_diag,
)
from netprobe.steps import LocalHealth
from netprobe.target import parse_target
from nplab.require import require

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 0A00000A:0CEA 08 00000000:00000000 00:00000000 00000000     0        0 1
   1: 0100007F:A1B3 0A00000A:0CEA 06 00000000:00000000 00:00000000 00000000     0        0 0
   2: 0100007F:A1B4 0A00000A:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 2
   3: 0100007F:A1B5 0B00000A:0CEA 08 00000000:00000000 00:00000000 00000000     0        0 3
"""


def test_proc_key_matches_the_kernel_format() -> None:
    assert proc_key("10.0.0.10", 3306) == "0A00000A:0CEA"
    assert proc_key("::1", 80) == "00000000000000000000000001000000:0050"


def test_count_states_toward_one_endpoint() -> None:
    counts, scanned = count_states(PROC_TCP.splitlines(), {proc_key("10.0.0.10", 3306)})
    assert counts == {"CLOSE_WAIT": 1, "TIME_WAIT": 1, "ESTABLISHED": 1}
    assert scanned == 4


def test_collect_local_reads_a_proc_tree(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(PROC_TCP)
    (tmp_path / "sys" / "net" / "ipv4").mkdir(parents=True)
    (tmp_path / "sys" / "net" / "ipv4" / "ip_local_port_range").write_text("40000\t40009\n")
    local = collect_local(["10.0.0.10"], 3306, proc=tmp_path)
    assert local.available and local.count("CLOSE_WAIT") == 1 and local.port_range == (40000, 40009)
    assert not collect_local(["10.0.0.10"], 1, proc=tmp_path / "missing").available


def test_collect_local_skips_huge_tables(tmp_path: Path) -> None:
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "tcp").write_text(PROC_TCP)
    (tmp_path / "net" / "sockstat").write_text("TCP: inuse 300000 orphan 0 tw 5 alloc 1 mem 1\n")
    local = collect_local(["10.0.0.10"], 3306, proc=tmp_path)
    assert local.scan_skipped is not None and local.states == {}


def _codes(local: LocalHealth) -> list[str]:
    verdict = classify(parse_target("db:5432"), Options(), [], local=local)
    return [w.code for w in verdict.warnings]


def test_local_warning_rules() -> None:
    quiet = LocalHealth(
        available=True,
        states={"CLOSE_WAIT": 2, "TIME_WAIT": 3},
        port_range=(32768, 60999),
        open_fds=10,
        fd_soft_limit=1024,
    )
    assert _codes(quiet) == []
    leak = quiet.model_copy(update={"states": {"CLOSE_WAIT": 10}})
    assert _codes(leak) == ["local.close_wait_leak"]
    tw = quiet.model_copy(update={"states": {"TIME_WAIT": 8}, "port_range": (40000, 40009)})
    assert _codes(tw) == ["local.time_wait_pressure"]
    fds = quiet.model_copy(update={"open_fds": 900})
    assert _codes(fds) == ["local.fd_pressure"]
    assert _codes(LocalHealth(available=False, reason="not Linux")) == []


# -- sock_diag (netlink): the kernel filters by remote address and port ---------------------


def test_diag_bytecode_is_an_or_chain_the_kernel_audit_accepts() -> None:
    one = diag_bytecode(["10.0.0.10"], 3306)
    # D_COND (8), yes = its size (lands on the end: accept), no = past the end (reject).
    assert struct.unpack("=BBH", one[:4]) == (8, 16, 20)
    assert one[4:12] == struct.pack("=BBxxi", socket.AF_INET, 32, 3306)
    assert one[12:] == bytes([10, 0, 0, 10])
    two = diag_bytecode(["10.0.0.10", "::1"], 80)
    # cond1 (16) JMP (4) cond2 (4 + 8 + 16): cond1's no skips the JMP; the JMP ends.
    assert len(two) == 16 + 4 + 28
    assert struct.unpack("=BBH", two[:4]) == (8, 16, 20)
    assert struct.unpack("=BBH", two[16:20]) == (1, 4, 32)
    assert struct.unpack("=BBH", two[20:24]) == (8, 28, 32)


def _nlmsg(kind: int, payload: bytes) -> bytes:
    msg = struct.pack("=IHHII", 16 + len(payload), kind, 2, 1, 0) + payload
    return msg + bytes(-len(msg) % 4)


def test_parse_diag_counts_states_until_done() -> None:
    counts: dict[str, int] = {}
    data = _nlmsg(20, bytes([2, 8]) + bytes(70)) + _nlmsg(20, bytes([2, 1]) + bytes(70))
    assert not parse_diag(data, counts)
    assert parse_diag(_nlmsg(20, bytes([2, 8]) + bytes(70)) + _nlmsg(3, bytes(4)), counts)
    assert counts == {"CLOSE_WAIT": 2, "ESTABLISHED": 1}
    with pytest.raises(DiagUnavailable, match="Invalid argument"):
        parse_diag(_nlmsg(2, struct.pack("=i", -errno.EINVAL) + bytes(16)), {})


def test_diag_request_layout() -> None:
    req = diag_request(socket.AF_INET, ["127.0.0.1"], 80, seq=7)
    length, kind, flags, seq, _pid = struct.unpack_from("=IHHII", req)
    assert (length, kind, flags, seq) == (len(req), 20, 0x301, 7)
    family, proto = req[16], req[17]
    assert (family, proto) == (socket.AF_INET, socket.IPPROTO_TCP)
    attr_len, attr_type = struct.unpack_from("=HH", req, 16 + 56)
    assert attr_type == 1 and attr_len == 4 + 16


HAVE_NETLINK = Path("/proc/net/tcp").exists() and hasattr(socket, "AF_NETLINK")


@pytest.fixture
def endpoint_sockets() -> Iterator[tuple[int, list[socket.socket]]]:
    """Real sockets toward one loopback port, on both families: 3 ESTABLISHED and one
    CLOSE_WAIT toward 127.0.0.1, one ESTABLISHED toward ::1."""
    held: list[socket.socket] = []
    try:
        server = socket.create_server(("127.0.0.1", 0))
        held.append(server)
        port = server.getsockname()[1]
        held += [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        accepted = [server.accept()[0] for _ in range(4)]
        held += accepted
        accepted[0].close()  # its peer, a client socket toward the port, goes CLOSE_WAIT
        if socket.has_ipv6:
            with contextlib.suppress(OSError):
                server6 = socket.create_server(("::1", port), family=socket.AF_INET6)
                held.append(server6)
                held.append(socket.create_connection(("::1", port)))
                held.append(server6.accept()[0])
        yield port, held
    finally:
        for s in held:
            s.close()


def _wait_close_wait(port: int) -> None:
    for _ in range(100):
        if collect_local(["127.0.0.1"], port).count("CLOSE_WAIT"):
            return
        time.sleep(0.01)


def test_diag_counts_match_the_proc_scan(endpoint_sockets: tuple[int, list[socket.socket]]) -> None:
    require(HAVE_NETLINK, "needs Linux netlink")
    port, _held = endpoint_sockets
    _wait_close_wait(port)
    for addresses in (["127.0.0.1"], ["::1"], ["127.0.0.1", "::1"], ["127.0.0.2", "127.0.0.1"]):
        assert query_diag(addresses, port) == collect_local(addresses, port).states, addresses
    assert query_diag(["127.0.0.1"], port) == {"ESTABLISHED": 3, "CLOSE_WAIT": 1}
    assert query_diag(["127.0.0.2", "::2"], port) == {}


@pytest.mark.anyio
async def test_gather_local_same_report_with_netlink_or_proc(
    endpoint_sockets: tuple[int, list[socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    require(HAVE_NETLINK, "needs Linux netlink")
    port, _held = endpoint_sockets
    _wait_close_wait(port)
    addresses = ["127.0.0.1", "::1"]
    via_diag = await gather_local(addresses, port)
    monkeypatch.setattr(local_mod, "_diag_failed", "forced: test of the /proc fallback")
    monkeypatch.setattr(local_mod, "_cache", None)
    via_proc = await gather_local(addresses, port)
    assert via_diag.states == via_proc.states and via_diag.states.get("CLOSE_WAIT") == 1
    assert via_diag.toward == via_proc.toward and via_diag.scan_skipped is None
    assert via_diag.sockets_scanned and via_proc.sockets_scanned
    assert _codes(via_diag) == _codes(via_proc)


@pytest.mark.anyio
async def test_many_endpoints_share_one_table_read(
    endpoint_sockets: tuple[int, list[socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past SHARED_TABLE_AFTER distinct endpoints in one snapshot window, one read of the whole
    table serves them all (no sock_diag dump per endpoint), with the same counts."""
    require(HAVE_NETLINK, "needs Linux netlink")
    port, _held = endpoint_sockets
    _wait_close_wait(port)
    monkeypatch.setattr(local_mod, "_cache", None)
    monkeypatch.setattr(local_mod, "_diag_cache", {})
    monkeypatch.setattr(local_mod, "_window", (0.0, set()))
    monkeypatch.setattr(local_mod, "SNAPSHOT_TTL_S", 60.0)  # one window, however slow the host
    dumps: list[object] = []
    query = local_mod.query_diag

    def counted(addresses: object, p: int) -> dict[str, int]:
        dumps.append(p)
        return query(addresses, p)  # type: ignore[arg-type]

    monkeypatch.setattr(local_mod, "query_diag", counted)
    alone = await gather_local(["127.0.0.1"], port)
    for other in range(1, local_mod.SHARED_TABLE_AFTER + 5):
        await gather_local(["127.0.0.1"], port + other)
    assert len(dumps) == 1 + local_mod.SHARED_TABLE_AFTER - 1  # then the shared table
    assert local_mod._cache is not None
    monkeypatch.setattr(local_mod, "_diag_cache", {})  # the endpoint again, now from the table
    shared = await gather_local(["127.0.0.1"], port)
    assert len(dumps) == local_mod.SHARED_TABLE_AFTER
    assert shared.states == alone.states == {"ESTABLISHED": 3, "CLOSE_WAIT": 1}
