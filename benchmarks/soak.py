"""Soak: many diagnoses of healthy and faulty loopback targets, with random cancellations;
after each batch, open fds, asyncio tasks, threads and RSS must come back to where they were.

Run: .venv/bin/python benchmarks/soak.py [--n 10000] [--batch 500] [--concurrency 50]
Short version: .venv/bin/python benchmarks/soak.py --n 1000 --batch 250
Results: benchmarks/RESULTS-reliability.md

The peers live in a separate process (``--serve``), so their sockets, threads and memory are
not counted against netprobe's: a plain TCP listener (healthy), a closed port (refused), TLS
with an expired certificate, HTTP 503, an HTTP server silent after accept, a port whose SYNs
are dropped (``SilentPort``: a full accept queue, the same as a firewall's DROP, no root
needed), and a name server (``db.soak.test`` resolves, ``nope.soak.test`` is NXDOMAIN).

About 20 % of the diagnoses run inside a caller's cancel scope with a random short deadline
(1-300 ms), so netprobe is cancelled from outside at every stage (DNS, connect, TLS, HTTP).
After each batch the soak waits (at most 3 s) for the task count to settle, collects garbage
and records: open fds (/proc/self/fd), asyncio tasks, threads, RSS (/proc/self/statm). The
baseline is taken after the first batch (warm-up: imports, the TLS context, the local-health
worker thread). Exit status 1 when fds or tasks do not return to the baseline, RSS grows by
10 % or more after the warm-up, or a diagnosis that was not cancelled gave the wrong verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def serve() -> None:
    """The peers, in their own process: print their addresses as JSON, exit when stdin closes."""
    from netprobe.testing import CertBook, DnsServer, L7Server, SilentPort, TcpServer, closed_port

    with contextlib.ExitStack() as stack:
        book = stack.enter_context(CertBook())
        hold = stack.enter_context(TcpServer(backlog=512))
        tls = stack.enter_context(L7Server("tls", ssl_context=book.server_context("expired")))
        http = stack.enter_context(L7Server("http"))
        silent = stack.enter_context(L7Server("silent"))
        dropped = stack.enter_context(SilentPort())
        dns = stack.enter_context(
            DnsServer({"db.soak.test": ["127.0.0.1"]}),
        )
        print(
            json.dumps(
                {
                    "hold": hold.port,
                    "closed": closed_port(),
                    "tls": tls.port,
                    "http": http.port,
                    "silent": silent.port,
                    "dropped": dropped.port,
                    "dns": dns.address,
                    "ca_file": book.ca_file,
                }
            ),
            flush=True,
        )
        while sys.stdin.read(1024):
            pass


def kinds(peers: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any], str]]:
    """kind -> (target, options, expected verdict when not cancelled)."""
    ns = {"nameservers": [peers["dns"]]}
    return {
        "healthy": (f"tcp://127.0.0.1:{peers['hold']}", {}, "healthy"),
        "refused": (f"tcp://127.0.0.1:{peers['closed']}", {}, "l4.refused"),
        "tls expired": (
            f"https://127.0.0.1:{peers['tls']}/health",
            {"ca_file": peers["ca_file"]},
            "tls.cert_expired",
        ),
        "http 503": (f"http://127.0.0.1:{peers['http']}/busy", {}, "http.server_error"),
        "silent after accept": (
            f"http://127.0.0.1:{peers['silent']}/",
            {"read_timeout": 0.3},
            "http.timeout",
        ),
        "silent SYN": (
            f"tcp://127.0.0.1:{peers['dropped']}",
            {"connect_timeout": 0.3},
            "l4.filtered",
        ),
        "dns name, healthy": (f"tcp://db.soak.test:{peers['hold']}", ns, "healthy"),
        "dns NXDOMAIN": (f"tcp://nope.soak.test:{peers['hold']}", ns, "dns.nxdomain"),
    }


def _sample() -> dict[str, float]:
    with open("/proc/self/statm") as f:
        rss_pages = int(f.read().split()[1])
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "rss_mb": rss_pages * PAGE / 1e6,
    }


async def soak(args: argparse.Namespace, peers: dict[str, Any]) -> int:
    import anyio

    import netprobe

    rng = random.Random(args.seed)
    table = kinds(peers)
    names = list(table)
    verdicts: dict[str, Counter[str]] = {k: Counter() for k in names}
    wrong: Counter[str] = Counter()
    cancelled = 0
    limiter = anyio.CapacityLimiter(args.concurrency)

    async def one(kind: str, cancel_after: float | None) -> None:
        nonlocal cancelled
        target, options, expected = table[kind]
        async with limiter:
            if cancel_after is None:
                report = await netprobe.diagnose(target, **options)
                got = report.fault.code if report.fault else "healthy"
                verdicts[kind][got] += 1
                if got != expected:
                    wrong[f"{kind}: {got}"] += 1
                return
            with anyio.move_on_after(cancel_after) as scope:
                report = await netprobe.diagnose(target, **options)
            if scope.cancelled_caught:
                cancelled += 1
                verdicts[kind]["(cancelled)"] += 1
            else:
                verdicts[kind][report.fault.code if report.fault else "healthy"] += 1

    base_tasks = len(asyncio.all_tasks())
    before = _sample()  # netprobe imported, nothing diagnosed yet
    before.update(done=0, cancelled=0, elapsed_s=0.0)
    rows: list[dict[str, Any]] = [before]
    baseline: dict[str, float] | None = None
    done = 0
    start = time.perf_counter()
    while done < args.n:
        size = min(args.batch, args.n - done)
        async with anyio.create_task_group() as tg:
            for _ in range(size):
                kind = rng.choice(names)
                cancel = rng.uniform(0.001, 0.3) if rng.random() < 0.2 else None
                tg.start_soon(one, kind, cancel)
        done += size
        settle = time.perf_counter() + 3.0
        # No event tells when the last task is gone: poll the count, bounded in time.
        while len(asyncio.all_tasks()) > base_tasks and time.perf_counter() < settle:  # noqa: ASYNC110
            await anyio.sleep(0.01)
        await anyio.sleep(0.05)  # let the peers' FINs arrive, worker threads park
        gc.collect()
        sample = _sample()
        sample["done"] = done
        sample["cancelled"] = cancelled
        sample["elapsed_s"] = time.perf_counter() - start
        rows.append(sample)
        if baseline is None:
            baseline = dict(sample)

    assert baseline is not None
    print(
        f"{args.n} diagnoses in batches of {args.batch}, concurrency {args.concurrency}, "
        f"~20 % under a caller deadline of 1-300 ms, seed {args.seed}; "
        f"baseline = after the first batch\n"
    )
    print(
        "| done | cancelled | open fds | asyncio tasks | threads | RSS MB | RSS vs baseline | s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        growth = (r["rss_mb"] / baseline["rss_mb"] - 1) * 100
        print(
            f"| {r['done']} | {r['cancelled']} | {r['fds']} | {r['tasks']} | {r['threads']} "
            f"| {r['rss_mb']:.1f} | {growth:+.1f} % | {r['elapsed_s']:.1f} |"
        )
    print("\n| kind | verdicts (not cancelled) and cancellations |")
    print("|---|---|")
    for kind in names:
        text = ", ".join(f"{c} {n}" for c, n in verdicts[kind].most_common())
        print(f"| {kind} | {text} |")
    last = rows[-1]
    growth = (last["rss_mb"] / baseline["rss_mb"] - 1) * 100
    problems = []
    if last["fds"] > baseline["fds"]:
        problems.append(f"open fds {baseline['fds']:.0f} -> {last['fds']:.0f}")
    if last["tasks"] > baseline["tasks"]:
        problems.append(f"asyncio tasks {baseline['tasks']:.0f} -> {last['tasks']:.0f}")
    if growth >= 10.0:
        problems.append(f"RSS grew {growth:.1f} % after the warm-up")
    if wrong:
        problems.append("wrong verdicts: " + ", ".join(f"{k} ×{v}" for k, v in wrong.items()))
    print()
    print(
        "RESULT: "
        + ("; ".join(problems) if problems else "fds and tasks back to baseline, ")
        + ("" if problems else f"RSS {growth:+.1f} % after warm-up, every verdict right")
    )
    return 1 if problems else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    import anyio

    peers_proc = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert peers_proc.stdout is not None
        peers = json.loads(peers_proc.stdout.readline())
        status = anyio.run(soak, args, peers)
    finally:
        assert peers_proc.stdin is not None
        peers_proc.stdin.close()
        try:
            peers_proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            peers_proc.kill()
            peers_proc.wait(timeout=5)
    sys.exit(status)


if __name__ == "__main__":
    main()
