"""Pool probe: time to fill N connections and file descriptors held, against what a user writes.

``probe_pool`` opens ``--size`` (200) connections to a loopback server at once and holds them;
this measures the time until the last one is open (and validated) and the file descriptors
this process holds at that moment (``/proc/self/fd``, minus the count before), in the same
run as the baseline a user would otherwise write:

* a plain TCP listener (a separate process that accepts and holds every connection):
  ``probe_pool("tcp://...")`` against 200 ``asyncio.open_connection`` and 200
  ``anyio.connect_tcp`` opened concurrently and held;
* PostgreSQL 15 (``max_connections = 250``, scram-sha-256, ``sslmode=disable``): the pool
  with credentials (asyncpg sessions + ``SELECT 1``) against 200 ``asyncpg.connect`` +
  ``SELECT 1``, and the credential-less pool (greetings held at the password request);
* MariaDB 10.11 (``max_connections = 300``): the same with asyncmy.

Cases run interleaved, ``--rounds`` times (median shown); before each case the benchmark
waits until the server has reaped the previous sessions. The fds still open after each case,
minus the count before, show a leak (last column). Needs root for the database servers
(started as in the tests, nplab/dbservers.py); ``--no-db`` runs the TCP cases only.

    .venv/bin/python benchmarks/bench_pool.py [--size 200] [--rounds 5] [--no-db]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio

import netprobe
from netprobe.pool import PoolConnection

LISTENER = """
import asyncio, sys

async def main():
    held = set()

    async def hold(reader, writer):
        held.add(writer)
        await reader.read()  # until the client closes
        writer.close()
        held.discard(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main())
"""

#: The pool's per-connection login budget is max(read_timeout, connect_timeout) (3 s by
#: default), counted from each connection's start; the drivers' own defaults are longer
#: (asyncmy connect_timeout 10 s, asyncpg 60 s). 200 logins at once on a loaded 2-core host
#: can exceed 3 s, so the pool gets the same 10 s as asyncmy: a budget, not a speed.
DB: dict[str, Any] = {"read_timeout": 10.0}

Release = Callable[[], Awaitable[None]]
#: One fill: (ms until the last connection is open, fds held then, how to release them).
Fill = tuple[float, int, Release]


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _nothing() -> None:
    return None


@dataclass
class Case:
    group: str
    name: str
    fill: Callable[[int], Awaitable[Fill]]
    settle: Callable[[], None] = lambda: None
    baseline: bool = False
    fill_ms: list[float] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    leaked: list[int] = field(default_factory=list)

    async def measure(self, n: int) -> None:
        self.settle()
        gc.collect()
        before = fds()
        fill_ms, held, release = await self.fill(n)
        await release()
        await asyncio.sleep(0.05)  # transports close on the next loop iterations
        gc.collect()
        self.fill_ms.append(fill_ms)
        self.held.append(held - before)
        self.leaked.append(fds() - before)


# ------------------------------------------------------------------------------------------------
# The pool probe, and the code a user would write instead.


async def pool_fill(url: str, n: int, **options: Any) -> Fill:
    """probe_pool; the fds are counted when the last connection reports (all are held then)."""
    at: list[tuple[float, int]] = []
    seen = [0]

    def progress(_: PoolConnection) -> None:
        seen[0] += 1
        if seen[0] == n:
            at.append((time.perf_counter(), fds()))

    start = time.perf_counter()
    report = await netprobe.probe_pool(url, size=n, on_progress=progress, **options)
    if report.opened != n:
        raise RuntimeError(f"{report.target.url}: {report.summary}")
    ((end, held),) = at
    return (end - start) * 1000.0, held, _nothing  # probe_pool has closed them already


async def asyncio_fill(port: int, n: int) -> Fill:
    start = time.perf_counter()
    pairs = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(n)))
    ms, held = (time.perf_counter() - start) * 1000.0, fds()

    async def release() -> None:
        for _, writer in pairs:
            writer.close()
        await asyncio.gather(*(w.wait_closed() for _, w in pairs), return_exceptions=True)

    return ms, held, release


async def anyio_fill(port: int, n: int) -> Fill:
    start = time.perf_counter()
    streams = await asyncio.gather(*(anyio.connect_tcp("127.0.0.1", port) for _ in range(n)))
    ms, held = (time.perf_counter() - start) * 1000.0, fds()

    async def release() -> None:
        for s in streams:
            await s.aclose()

    return ms, held, release


async def asyncpg_fill(port: int, password: str, n: int) -> Fill:
    import asyncpg

    async def one() -> Any:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=port, user="app", password=password, database="appdb",
            ssl=False,
        )  # fmt: skip
        await conn.fetchval("SELECT 1")
        return conn

    start = time.perf_counter()
    conns = await asyncio.gather(*(one() for _ in range(n)))
    ms, held = (time.perf_counter() - start) * 1000.0, fds()

    async def release() -> None:
        await asyncio.gather(*(c.close() for c in conns))

    return ms, held, release


async def asyncmy_fill(port: int, password: str, n: int) -> Fill:
    import asyncmy

    async def one() -> Any:
        conn = await asyncmy.connect(
            host="127.0.0.1", port=port, user="app", password=password, database="appdb"
        )
        async with conn.cursor() as cur:
            await cur.execute("SELECT 1")
            await cur.fetchone()
        return conn

    start = time.perf_counter()
    conns = await asyncio.gather(*(one() for _ in range(n)))
    ms, held = (time.perf_counter() - start) * 1000.0, fds()

    async def release() -> None:
        for c in conns:
            await c.ensure_closed()

    return ms, held, release


# ------------------------------------------------------------------------------------------------
# Servers.


@contextlib.contextmanager
def tcp_listener() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", LISTENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_until(count: Callable[[], int], at_most: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if count() <= at_most:
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what}: sessions of the previous case still open")


def tcp_cases(port: int) -> list[Case]:
    url = f"tcp://127.0.0.1:{port}"
    return [
        Case("TCP listener", "asyncio.open_connection x N", lambda n: asyncio_fill(port, n),
             baseline=True),
        Case("TCP listener", "anyio.connect_tcp x N", lambda n: anyio_fill(port, n)),
        Case("TCP listener", "probe_pool(tcp://)", lambda n: pool_fill(url, n)),
    ]  # fmt: skip


def postgres_cases(stack: contextlib.ExitStack, size: int) -> list[Case]:
    from nplab.dbservers import APP_PASSWORD, Postgres

    server = stack.enter_context(_started(Postgres(max_connections=size + 50)))
    port = server.port

    def settle() -> None:
        _wait_until(
            lambda: int(server.psql("SELECT count(*) FROM pg_stat_activity "
                                    "WHERE backend_type = 'client backend'")),
            1, "PostgreSQL",
        )  # fmt: skip

    creds = f"postgresql://app:{APP_PASSWORD}@127.0.0.1:{port}/appdb?sslmode=disable"
    bare = f"postgresql://127.0.0.1:{port}/appdb?sslmode=disable"
    group = f"PostgreSQL {server.psql('SHOW server_version').split()[0]}"
    return [
        Case(group, "asyncpg.connect + SELECT 1 x N", lambda n: asyncpg_fill(port, APP_PASSWORD, n),
             settle, baseline=True),
        Case(group, "probe_pool, credentials", lambda n: pool_fill(creds, n, **DB), settle),
        Case(group, "probe_pool, no credentials", lambda n: pool_fill(bare, n, **DB), settle),
    ]  # fmt: skip


def mariadb_cases(stack: contextlib.ExitStack, size: int) -> list[Case]:
    from nplab.dbservers import APP_PASSWORD, MariaDB

    server = stack.enter_context(_started(MariaDB()))
    server.sql(f"SET GLOBAL max_connections = {size + 100}")
    port = server.port

    def settle() -> None:
        _wait_until(lambda: server.status("Threads_connected"), 1, "MariaDB")

    creds = f"mysql://app:{APP_PASSWORD}@127.0.0.1:{port}/appdb"
    bare = f"mysql://127.0.0.1:{port}"
    version = server.sql("SELECT VERSION()").strip().split("-")[0]
    group = f"MariaDB {version}"
    return [
        Case(group, "asyncmy.connect + SELECT 1 x N", lambda n: asyncmy_fill(port, APP_PASSWORD, n),
             settle, baseline=True),
        Case(group, "probe_pool, credentials", lambda n: pool_fill(creds, n, **DB), settle),
        Case(group, "probe_pool, no credentials", lambda n: pool_fill(bare, n, **DB), settle),
    ]  # fmt: skip


@contextlib.contextmanager
def _started(server: Any) -> Iterator[Any]:
    try:
        yield server.start()
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------


def table(cases: list[Case], size: int) -> str:
    lines = [
        f"| server | client (N = {size}) | fill ms (median) | min–max | × baseline | fds held | "
        "fds / connection | fds left after |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in cases:
        base = next(c for c in cases if c.group == case.group and c.baseline)
        fill = statistics.median(case.fill_ms)
        ratio = fill / statistics.median(base.fill_ms)
        held = statistics.median(case.held)
        lines.append(
            f"| {case.group} | {case.name} | {fill:.0f} | "
            f"{min(case.fill_ms):.0f}–{max(case.fill_ms):.0f} | {ratio:.2f} | {held:.0f} | "
            f"{held / size:.3f} | {max(case.leaked)} |"
        )
    return "\n".join(lines)


async def run(cases: list[Case], size: int, rounds: int) -> None:
    for r in range(rounds):
        for case in cases:
            await case.measure(size)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-db", action="store_true", help="TCP listener cases only")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(tcp_listener())
        cases = tcp_cases(port)
        if not args.no_db:
            cases += postgres_cases(stack, args.size) + mariadb_cases(stack, args.size)
        asyncio.run(run(cases, args.size, args.rounds))
    print(table(cases, args.size))


if __name__ == "__main__":
    main()
