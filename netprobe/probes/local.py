"""Local host health: sockets toward the target, ephemeral ports, file descriptors.

The sockets toward the target come from a ``NETLINK_SOCK_DIAG`` dump (what ``ss dst ADDR
dport = :PORT`` does) filtered *in the kernel* by destination address and port
(``INET_DIAG_REQ_BYTECODE``): the kernel walks its table and sends back only the few matching
sockets, so a host with 20,000 sockets costs well under a millisecond where formatting and
parsing the whole /proc/net/tcp took ~20 ms (benchmarks/RESULTS-core.md). Where netlink is
unavailable (not Linux, a seccomp filter, an old kernel), /proc/net/tcp{,6} is read line by
line instead, and that scan stops (and says so) past ``MAX_SOCKETS`` lines. The request
builder, the reply parser and the /proc line parser are pure, tested with plain bytes/text.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import resource
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..steps import LocalHealth

__all__ = [
    "MAX_SOCKETS",
    "SNAPSHOT_TTL_S",
    "TCP_STATES",
    "DiagUnavailable",
    "cached_local",
    "collect_local",
    "count_states",
    "diag_bytecode",
    "diag_request",
    "gather_local",
    "parse_diag",
    "proc_key",
    "query_diag",
]

#: Concurrent diagnoses share one read of the socket table, at most this old: reading
#: /proc/net/tcp walks the kernel's whole TCP hash table (~20 ms on a busy host).
SNAPSHOT_TTL_S = 1.0

MAX_SOCKETS = 200_000

#: include/net/tcp_states.h
TCP_STATES = {
    "01": "ESTABLISHED",
    "02": "SYN_SENT",
    "03": "SYN_RECV",
    "04": "FIN_WAIT1",
    "05": "FIN_WAIT2",
    "06": "TIME_WAIT",
    "07": "CLOSE",
    "08": "CLOSE_WAIT",
    "09": "LAST_ACK",
    "0A": "LISTEN",
    "0B": "CLOSING",
    "0C": "NEW_SYN_RECV",
}


def proc_key(address: str, port: int) -> str:
    """``address:port`` the way /proc/net/tcp{,6} prints it (32-bit words in host order)."""
    packed = ipaddress.ip_address(address.split("%", 1)[0]).packed
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{w:08X}" for w in words) + f":{port:04X}"


def count_states(lines: Iterable[str], remotes: set[str]) -> tuple[dict[str, int], int]:
    """Count sockets whose remote end is in ``remotes`` (proc keys), by state; and all lines."""
    counts: dict[str, int] = {}
    scanned = 0
    for line in lines:
        fields = line.split(None, 4)
        if len(fields) < 4 or fields[0] == "sl":
            continue
        scanned += 1
        if fields[2] in remotes:
            state = TCP_STATES.get(fields[3], fields[3])
            counts[state] = counts.get(state, 0) + 1
    return counts, scanned


# -- NETLINK_SOCK_DIAG (linux/inet_diag.h, linux/sock_diag.h, linux/netlink.h) ------------

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
NLMSG_ERROR = 2
NLMSG_DONE = 3
INET_DIAG_REQ_BYTECODE = 1
INET_DIAG_BC_JMP = 1
INET_DIAG_BC_D_COND = 8
#: Every state but LISTEN: a listener has no remote end, so it never counts anyway.
_STATES_MASK = 0xFFF & ~(1 << 10)
_NLMSG = struct.Struct("=IHHII")


class DiagUnavailable(Exception):
    """The kernel answered no sock_diag dump (no netlink here, or the request was refused)."""


def _family_of(address: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def diag_bytecode(addresses: Sequence[str], port: int) -> bytes:
    """An inet_diag filter accepting sockets whose remote end is any ``address:port``.

    The OR chain is laid out the way ``ss`` does it, since the kernel's audit walks the
    program by the "yes" offsets: ``cond1 JMP cond2 JMP ... condN``. A matching cond goes on
    to its JMP, which jumps to the end (landing exactly on the end accepts); a failing one
    skips its JMP to the next cond; the last one's failure jumps past the end (reject).
    """
    conds = []
    for a in addresses:
        packed = ipaddress.ip_address(a.split("%", 1)[0]).packed
        fam = socket.AF_INET6 if len(packed) == 16 else socket.AF_INET
        conds.append(struct.pack("=BBxxi", fam, len(packed) * 8, port) + packed)
    parts: list[bytes] = []
    for i, cond in enumerate(conds):
        size = 4 + len(cond)
        parts.append(struct.pack("=BBH", INET_DIAG_BC_D_COND, size, size + 4) + cond)
        if i < len(conds) - 1:
            rest = sum(4 + 4 + len(c) for c in conds[i + 1 :]) - 4  # JMPs after the last cond: none
            parts.append(struct.pack("=BBH", INET_DIAG_BC_JMP, 4, 4 + rest))
    return b"".join(parts)


def diag_request(family: int, addresses: Sequence[str], port: int, seq: int = 1) -> bytes:
    """A SOCK_DIAG_BY_FAMILY dump request for TCP sockets of ``family`` toward the targets."""
    bytecode = diag_bytecode(addresses, port)
    req = struct.pack("=BBBxI", family, socket.IPPROTO_TCP, 0, _STATES_MASK)
    req += bytes(4 + 32 + 4) + struct.pack("=II", 0xFFFFFFFF, 0xFFFFFFFF)  # id: any
    attr = struct.pack("=HH", 4 + len(bytecode), INET_DIAG_REQ_BYTECODE) + bytecode
    attr += bytes(-len(attr) % 4)
    body = req + attr
    return (
        _NLMSG.pack(16 + len(body), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body
    )


def parse_diag(data: bytes, counts: dict[str, int]) -> bool:
    """Count the inet_diag_msg states of one netlink read into ``counts``; True at the end of
    the dump. Raises DiagUnavailable on an NLMSG_ERROR (e.g. a filter the kernel refused)."""
    pos = 0
    while pos + 16 <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, pos)
        if length < 16:
            break
        if kind == NLMSG_DONE:
            return True
        if kind == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, pos + 16)[0] if length >= 20 else 0
            raise DiagUnavailable(f"sock_diag refused the request: {os.strerror(err)}")
        if kind == SOCK_DIAG_BY_FAMILY and length >= 16 + 2:
            state = TCP_STATES.get(f"{data[pos + 17]:02X}", f"{data[pos + 17]:02X}")
            counts[state] = counts.get(state, 0) + 1
        pos += (length + 3) & ~3
    return False


def query_diag(addresses: Sequence[str], port: int) -> dict[str, int]:
    """This namespace's TCP sockets toward ``addresses``:``port``, by state (blocking: the
    kernel walks its table inside these system calls). Raises DiagUnavailable."""
    counts: dict[str, int] = {}
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    except (OSError, AttributeError) as exc:
        raise DiagUnavailable(f"no sock_diag netlink socket: {exc}") from None
    with sock:
        sock.settimeout(2.0)
        for family in (socket.AF_INET, socket.AF_INET6):
            addrs = [a for a in addresses if _family_of(a) == family]
            if not addrs:
                continue
            try:
                sock.sendto(diag_request(family, addrs, port), (0, 0))
                for _ in range(100_000):
                    if parse_diag(sock.recv(65536), counts):
                        break
            except OSError as exc:
                raise DiagUnavailable(f"sock_diag dump failed: {exc}") from None
    return counts


def _read_range(path: Path) -> tuple[int, int] | None:
    with contextlib.suppress(OSError, ValueError):
        lo, hi = path.read_text().split()[:2]
        return int(lo), int(hi)
    return None


def _socket_count(proc: Path) -> int | None:
    """TCP sockets in use plus TIME_WAIT, from /proc/net/sockstat{,6} (cheap, no table walk)."""
    total = 0
    for name in ("sockstat", "sockstat6"):
        with contextlib.suppress(OSError, ValueError):
            for line in (proc / "net" / name).read_text().splitlines():
                if line.startswith(("TCP:", "TCP6:")):
                    fields = line.split()[1:]
                    kv = dict(zip(fields[::2], fields[1::2], strict=False))
                    total += int(kv.get("inuse", 0)) + int(kv.get("tw", 0))
    return total or None


_range_cache: tuple[float, tuple[int, int] | None] | None = None


def _port_range(proc: Path) -> tuple[int, int] | None:
    """The ephemeral port range; this host's is re-read at most every ``SNAPSHOT_TTL_S``
    (a sysctl, like the socket snapshot it goes with: reading it cost as much as the rest of
    a cached local read)."""
    global _range_cache
    if proc != _PROC:
        return _read_range(proc / "sys" / "net" / "ipv4" / "ip_local_port_range")
    now = time.monotonic()
    if _range_cache is None or now - _range_cache[0] >= SNAPSHOT_TTL_S:
        _range_cache = (now, _read_range(_PORT_RANGE))
    return _range_cache[1]


#: This process's descriptor count is listed at most this often: the listing is O(open fds)
#: (a process diagnosing 100 targets at once holds hundreds), and every diagnosis reads it.
FD_COUNT_TTL_S = 0.1
_fd_cache: tuple[float, int | None] | None = None


def _open_fds(proc: Path) -> int | None:
    """Descriptors open in this process; this host's count shared for ``FD_COUNT_TTL_S``."""
    global _fd_cache
    if proc != _PROC:
        try:
            return len(os.listdir(proc / "self" / "fd"))
        except OSError:
            return None
    now = time.monotonic()
    if _fd_cache is None or now - _fd_cache[0] >= FD_COUNT_TTL_S:
        try:
            # This host's paths are built once: pathlib joins cost more than the listing.
            count: int | None = len(os.listdir(_FD_DIR))
        except OSError:
            count = None
        _fd_cache = (now, count)
    return _fd_cache[1]


def _without_scan(
    addresses: Sequence[str],
    port: int,
    proc: Path,
    why: str | None,
    states: dict[str, int] | None = None,
    scanned: int | None = None,
) -> LocalHealth:
    """The local view from the fd count, the limits and the port range, with the socket
    counts when a snapshot gave them (one model built: no copy)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_fds = _open_fds(proc)
    return LocalHealth(
        available=True,
        toward=[f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses],
        states=states if states is not None else {},
        sockets_scanned=scanned,
        scan_skipped=why,
        port_range=_port_range(proc),
        open_fds=open_fds,
        fd_soft_limit=None if soft == resource.RLIM_INFINITY else soft,
    )


def collect_local(addresses: Sequence[str], port: int, proc: Path = Path("/proc")) -> LocalHealth:
    """This host's view: never raises; ``available=False`` where /proc is missing."""
    if not (proc / "net" / "tcp").exists():
        return LocalHealth(available=False, reason="no /proc/net/tcp (not Linux)")
    total = _socket_count(proc)
    if total is not None and total > MAX_SOCKETS:
        return _without_scan(
            addresses, port, proc, f"{total:,} TCP sockets: too many to scan cheaply"
        )
    remotes = {proc_key(a, port) for a in addresses}
    toward = [f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses]
    states: dict[str, int] = {}
    scanned = 0
    skipped: str | None = None
    for name in ("tcp", "tcp6"):
        try:
            with open(proc / "net" / name, encoding="ascii", errors="replace") as fh:
                limited = itertools.islice(fh, MAX_SOCKETS + 1)
                counts, n = count_states(limited, remotes)
        except OSError:
            continue
        scanned += n
        if n >= MAX_SOCKETS:
            skipped = f"the socket table has over {MAX_SOCKETS:,} entries: counts are partial"
        for state, c in counts.items():
            states[state] = states.get(state, 0) + c
    try:
        open_fds: int | None = len(os.listdir(proc / "self" / "fd"))
    except OSError:
        open_fds = None
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return LocalHealth(
        available=True,
        toward=toward,
        states=states,
        sockets_scanned=scanned,
        scan_skipped=skipped,
        port_range=_read_range(proc / "sys" / "net" / "ipv4" / "ip_local_port_range"),
        open_fds=open_fds,
        fd_soft_limit=None if soft == resource.RLIM_INFINITY else soft,
    )


@dataclass(frozen=True)
class _Table:
    at: float
    states: dict[str, dict[str, int]]  # remote proc key -> state -> count
    scanned: int
    skipped: str | None


def _read_table(proc: Path) -> _Table:
    total = _socket_count(proc)
    if total is not None and total > MAX_SOCKETS:
        return _Table(time.monotonic(), {}, 0, f"{total:,} TCP sockets: too many to scan cheaply")
    table: dict[str, dict[str, int]] = {}
    scanned = 0
    for name in ("tcp", "tcp6"):
        try:
            with open(proc / "net" / name, encoding="ascii", errors="replace") as fh:
                for line in itertools.islice(fh, MAX_SOCKETS + 1):
                    fields = line.split(None, 4)
                    if len(fields) < 4 or fields[0] == "sl":
                        continue
                    scanned += 1
                    per = table.setdefault(fields[2], {})
                    state = TCP_STATES.get(fields[3], fields[3])
                    per[state] = per.get(state, 0) + 1
        except OSError:
            continue
    skipped = (
        f"the socket table has over {MAX_SOCKETS:,} entries: counts are partial"
        if scanned > MAX_SOCKETS
        else None
    )
    return _Table(time.monotonic(), table, scanned, skipped)


_cache: _Table | None = None
_inflight: dict[object, anyio.Event] = {}  # single-flight: one read per key at a time


_PROC = Path("/proc")
_FD_DIR = "/proc/self/fd"
_PORT_RANGE = _PROC / "sys" / "net" / "ipv4" / "ip_local_port_range"
#: Set once a sock_diag dump fails: from then on this process reads /proc/net/tcp.
_diag_failed: str | None = None
_diag_cache: dict[tuple[tuple[str, ...], int], tuple[float, dict[str, int], int | None]] = {}


def _diag_snapshot(addresses: tuple[str, ...], port: int) -> tuple[dict[str, int], int | None]:
    return query_diag(addresses, port), _socket_count(_PROC)


def _from_diag_cache(addresses: Sequence[str], port: int) -> LocalHealth | None:
    cached = _diag_cache.get((tuple(sorted(addresses)), port))
    if cached is None or time.monotonic() - cached[0] >= SNAPSHOT_TTL_S:
        return None
    return _without_scan(addresses, port, _PROC, None, dict(cached[1]), cached[2])


def cached_local(addresses: Sequence[str], port: int) -> LocalHealth | None:
    """What ``gather_local`` would return, when a fresh enough snapshot of this host's
    socket table is at hand: then no worker thread (nor task) is needed. None otherwise."""
    if _diag_failed is None:
        local = _from_diag_cache(addresses, port)
        if local is not None:
            return local
    table = _cache
    if table is not None and time.monotonic() - table.at < SNAPSHOT_TTL_S and _has_tcp(_PROC):
        return _from_table(table, addresses, port, _PROC)
    return None


_tcp_table_exists: bool | None = None


def _has_tcp(proc: Path) -> bool:
    """Is there a /proc/net/tcp (Linux)? Asked once for this host's /proc."""
    global _tcp_table_exists
    if proc != _PROC:
        return (proc / "net" / "tcp").exists()
    if _tcp_table_exists is None:
        _tcp_table_exists = (proc / "net" / "tcp").exists()
    return _tcp_table_exists


#: Distinct endpoints asked for within one snapshot's life (``SNAPSHOT_TTL_S``) above which
#: one read of the whole socket table serves every endpoint until it expires. A filtered
#: sock_diag dump still walks the kernel's whole table (4 ms of CPU with 5,000 TIME_WAIT
#: sockets): once per endpoint, 10,000 targets would cost 40 s; the whole table (/proc/net/tcp,
#: ~25 ms) read once a second costs nothing at that scale (issue 16).
SHARED_TABLE_AFTER = 8
_window: tuple[float, set[tuple[tuple[str, ...], int]]] = (0.0, set())


def _many_endpoints(ckey: tuple[tuple[str, ...], int]) -> bool:
    """Count ``ckey`` in this snapshot window; True once it holds many distinct endpoints."""
    global _window
    now = time.monotonic()
    start, seen = _window
    if now - start >= SNAPSHOT_TTL_S:
        _window = (now, seen := set())
    seen.add(ckey)
    return len(seen) > SHARED_TABLE_AFTER


async def _gather_diag(addresses: Sequence[str], port: int) -> LocalHealth | None:
    """The sock_diag path: one filtered dump per family, in a worker thread (the kernel walks
    its hash table inside the system calls). Concurrent diagnoses of the same endpoints share
    one dump (at most ``SNAPSHOT_TTL_S`` old). None when netlink is unavailable here."""
    global _diag_failed
    ckey = (tuple(sorted(addresses)), port)
    key = (anyio.lowlevel.current_token(), "diag", ckey)
    for _ in range(3):
        local = _from_diag_cache(addresses, port)
        if local is not None:
            return local
        pending = _inflight.get(key)
        if pending is not None:
            await pending.wait()
            continue
        if _many_endpoints(ckey):
            return await _gather_table(addresses, port, _PROC)
        done = _inflight[key] = anyio.Event()
        try:
            states, total = await anyio.to_thread.run_sync(
                _diag_snapshot, ckey[0], port, abandon_on_cancel=True
            )
        except DiagUnavailable as exc:
            _diag_failed = str(exc)
            return None
        finally:
            del _inflight[key]
            done.set()
        now = time.monotonic()
        for k in [k for k, v in _diag_cache.items() if now - v[0] >= SNAPSHOT_TTL_S]:
            del _diag_cache[k]
        _diag_cache[ckey] = (now, states, total)
    return _without_scan(addresses, port, _PROC, "the socket table could not be read in time")


async def gather_local(
    addresses: Sequence[str], port: int, proc: Path = Path("/proc")
) -> LocalHealth:
    """Like ``collect_local``, off the event loop: a kernel-filtered sock_diag dump, or
    (without netlink) one /proc/net/tcp read shared by the concurrent diagnoses of the
    process (a snapshot at most ``SNAPSHOT_TTL_S`` old)."""
    global _cache
    if not _has_tcp(proc):
        return LocalHealth(available=False, reason="no /proc/net/tcp (not Linux)")
    if proc == _PROC and _diag_failed is None:
        local = await _gather_diag(addresses, port)
        if local is not None:
            return local
    return await _gather_table(addresses, port, proc)


async def _gather_table(addresses: Sequence[str], port: int, proc: Path) -> LocalHealth:
    """The whole socket table (/proc/net/tcp), read once for the concurrent diagnoses of the
    process and kept ``SNAPSHOT_TTL_S``."""
    global _cache
    key = (anyio.lowlevel.current_token(), str(proc))
    for _ in range(3):
        cached = _cache
        if cached is not None and time.monotonic() - cached.at < SNAPSHOT_TTL_S:
            return _from_table(cached, addresses, port, proc)
        pending = _inflight.get(key)
        if pending is not None:
            await pending.wait()
            continue
        done = _inflight[key] = anyio.Event()
        try:
            _cache = await anyio.to_thread.run_sync(_read_table, proc, abandon_on_cancel=True)
        finally:
            del _inflight[key]
            done.set()
    return _without_scan(addresses, port, proc, "the socket table could not be read in time")


def _from_table(table: _Table, addresses: Sequence[str], port: int, proc: Path) -> LocalHealth:
    states: dict[str, int] = {}
    for a in addresses:
        for state, c in table.states.get(proc_key(a, port), {}).items():
            states[state] = states.get(state, 0) + c
    return _without_scan(addresses, port, proc, table.skipped, states, table.scanned)
