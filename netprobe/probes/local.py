"""Local host health from /proc: sockets toward the target, ephemeral ports, file descriptors.

Cheap by design: /proc/net/tcp{,6} is read line by line and the scan stops (and says so)
past ``MAX_SOCKETS`` lines, so a host with a huge socket table does not slow a diagnosis.
The line parser is pure (``count_states``), tested with plain text.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import resource
import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread

from ..steps.local import LocalHealth

__all__ = [
    "MAX_SOCKETS",
    "SNAPSHOT_TTL_S",
    "TCP_STATES",
    "collect_local",
    "count_states",
    "gather_local",
    "proc_key",
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


def _without_scan(addresses: Sequence[str], port: int, proc: Path, why: str) -> LocalHealth:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        open_fds: int | None = len(os.listdir(proc / "self" / "fd"))
    except OSError:
        open_fds = None
    return LocalHealth(
        available=True,
        toward=[f"[{a}]:{port}" if ":" in a else f"{a}:{port}" for a in addresses],
        scan_skipped=why,
        port_range=_read_range(proc / "sys" / "net" / "ipv4" / "ip_local_port_range"),
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
_inflight: dict[object, anyio.Event] = {}


async def gather_local(
    addresses: Sequence[str], port: int, proc: Path = Path("/proc")
) -> LocalHealth:
    """Like ``collect_local``, off the event loop, sharing one table read between the
    concurrent diagnoses of the process (a snapshot at most ``SNAPSHOT_TTL_S`` old)."""
    global _cache
    if not (proc / "net" / "tcp").exists():
        return LocalHealth(available=False, reason="no /proc/net/tcp (not Linux)")
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
    base = _without_scan(addresses, port, proc, table.skipped or "")
    states: dict[str, int] = {}
    for a in addresses:
        for state, c in table.states.get(proc_key(a, port), {}).items():
            states[state] = states.get(state, 0) + c
    return base.model_copy(
        update={"states": states, "sockets_scanned": table.scanned, "scan_skipped": table.skipped}
    )
