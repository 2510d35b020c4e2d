"""Scale: thousands of loopback targets that all answer, so that no target kind hides the cost
of a diagnosis; ``diagnose_many`` / ``diagnose_stream`` against a hand-written asyncio checker.

Run: .venv/bin/python benchmarks/bench_scale.py [--targets 10000] [--stream 100000] [--runs 3]
Results: benchmarks/RESULTS-scale.md

Before (issue 16), a third of the targets were silent: the wall time was the connect timeout
and the per-diagnosis cost was invisible. Here every row but the last answers at once:

* **answered**: ``--targets`` loopback targets, half open (40 listening ports of a server in a
  child process, which reads until the client closes), half refused (as many distinct closed
  ports: every target is its own endpoint, as in a real fleet); all reports kept;
* **open only** / **refused only**: the halves alone, for the CPU time per diagnosis per
  outcome (the asyncio checker's is a bare connect + close);
* **streamed**: ``diagnose_stream`` over a generator of ``--targets`` and of ``--stream``
  targets (the same mix, ports reused), reports counted and dropped: peak RSS must not
  grow with the count;
* **timeout-dominated** (separate row): a third open, a third refused, a third silent
  (``netprobe.testing.SilentPort``: SYNs dropped) with a 1 s connect timeout.

Every variant runs in its own fresh process (``--worker``: its own peak RSS, ``ru_maxrss``),
netprobe imported before the clock starts (as asyncio is for the checker); the variants
alternate run by run, so the same load hits both. Reported: wall (median of the runs), CPU
time of the process (user + system, all threads) per diagnosis, peak RSS, and every verdict
checked against the target's expected one. Same concurrency (100) and connect timeout
(1 s) for both; ``icmp`` and the other options at their defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONNECT_TIMEOUT = 1.0
OPEN_PORTS = 40
REFUSED_FROM = 20000  # below the usual ephemeral range (32768-60999)
HOST = "127.0.0.1"

BASELINE_OK = {"healthy": "open", "l4.refused": "refused", "l4.filtered": "timeout"}


def serve() -> None:
    """Child mode: 40 listening ports (reading until the client closes) and 10 silent ports;
    prints their numbers, runs until stdin closes."""
    from netprobe.testing import SilentPort

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            await reader.read()
        writer.close()

    async def main() -> None:
        servers = [await asyncio.start_server(handle, HOST, 0, backlog=1024) for _ in range(40)]
        with contextlib.ExitStack() as stack:
            silent = [stack.enter_context(SilentPort()) for _ in range(10)]
            ports = {
                "open": [s.sockets[0].getsockname()[1] for s in servers],
                "silent": [s.port for s in silent],
            }
            print(json.dumps(ports), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for s in servers:
            s.close()

    asyncio.run(main())


def closed_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports nothing listens on now (bind succeeds)."""
    out: list[int] = []
    port = REFUSED_FROM
    while len(out) < n and port < 32768:
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
                out.append(port)
            except OSError:
                pass
        port += 1
    return out


def make_targets(
    n: int, ports: dict[str, list[int]], refused: list[int], *, kinds: str
) -> list[tuple[int, str]]:
    """(port, expected verdict): ``kinds`` one of answered, open, refused, timeout."""
    out: list[tuple[int, str]] = []
    for i in range(n):
        kind = {"answered": ("open", "refused")[i % 2], "open": "open", "refused": "refused"}.get(
            kinds, ("open", "refused", "silent")[i % 3]
        )
        if kind == "open":
            out.append((ports["open"][i % len(ports["open"])], "healthy"))
        elif kind == "refused":
            out.append(
                (refused[(i // 2 if kinds == "answered" else i) % len(refused)], "l4.refused")
            )
        else:
            out.append((ports["silent"][i % len(ports["silent"])], "l4.filtered"))
    return out


async def _baseline(targets: list[tuple[int, str]], concurrency: int) -> list[str]:
    """What a user writes: open_connection under wait_for, behind a semaphore."""
    sem = asyncio.Semaphore(concurrency)

    async def check(port: int) -> str:
        async with sem:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, port), CONNECT_TIMEOUT
                )
            except ConnectionRefusedError:
                return "refused"
            except TimeoutError:
                return "timeout"
            except OSError as exc:
                return f"error:{exc.errno}"
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return "open"

    return list(await asyncio.gather(*(check(p) for p, _ in targets)))


def worker(variant: str, targets_file: str, concurrency: int, repeat: int) -> None:
    targets = [tuple(t) for t in json.loads(Path(targets_file).read_text())]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 8192 <= hard or hard == resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (8192, hard))
    if variant == "import":
        import netprobe  # what importing netprobe alone costs in RSS

        print(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
        return
    if variant != "asyncio":
        import anyio

        import netprobe
    count = len(targets) * repeat
    start, cpu = time.perf_counter(), time.process_time()
    if variant == "asyncio":
        got = asyncio.run(_baseline(targets, concurrency))
        expected = [BASELINE_OK[str(t[1])] for t in targets]
        verdicts = Counter(got)
    elif variant == "netprobe":

        async def many() -> list[str]:
            reports = await netprobe.diagnose_many(
                [f"tcp://{HOST}:{p}" for p, _ in targets],
                concurrency=concurrency,
                connect_timeout=CONNECT_TIMEOUT,
            )
            return [r.fault.code if r.fault else "healthy" for r in reports]

        got = anyio.run(many)
        expected = [str(t[1]) for t in targets]
        verdicts = Counter(got)
    else:  # stream: a generator of count targets, reports counted then dropped
        verdicts = Counter()
        wrong: Counter[str] = Counter()
        expect = {p: str(e) for p, e in targets}

        def generate() -> Iterator[str]:
            for _ in range(repeat):
                for p, _e in targets:
                    yield f"tcp://{HOST}:{p}"

        async def stream() -> None:
            async for r in netprobe.diagnose_stream(
                generate(), concurrency=concurrency, connect_timeout=CONNECT_TIMEOUT
            ):
                code = r.fault.code if r.fault else "healthy"
                verdicts[code] += 1
                if code != expect[r.target.port]:
                    wrong[f"{expect[r.target.port]} -> {code}"] += 1

        anyio.run(stream)
        got, expected = [], []
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    mismatches = Counter(f"{e} -> {g}" for e, g in zip(expected, got, strict=True) if e != g)
    if variant == "stream":
        mismatches = wrong
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_ms_per": cpu * 1000.0 / count,
                "count": count,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "verdicts": verdicts,
                "mismatches": mismatches,
            }
        )
    )


def run_worker(
    variant: str,
    targets: list[tuple[int, str]],
    concurrency: int,
    repeat: int = 1,
    base: str | None = None,
) -> dict[str, Any]:
    """One run in a fresh process; ``base``: the netprobe package of that directory."""
    env = dict(os.environ)
    if base is not None:
        env["PYTHONPATH"] = base
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(targets, fh)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--worker", variant, "--targets-file", fh.name,
             "--concurrency", str(concurrency), "--repeat", str(repeat)],
            capture_output=True, text=True, timeout=1800, cwd=ROOT, check=False, env=env,
        )  # fmt: skip
    finally:
        os.unlink(fh.name)
    if out.returncode != 0:
        raise RuntimeError(f"{variant} worker failed: {out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=10000)
    parser.add_argument("--stream", type=int, default=100000)
    parser.add_argument("--timeout-targets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", choices=("netprobe", "asyncio", "stream", "import"))
    parser.add_argument("--targets-file")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--base", help="a directory holding the netprobe of 'before'")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if args.worker:
        worker(args.worker, args.targets_file, args.concurrency, args.repeat)
        return
    n, c = args.targets, args.concurrency
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    ports = json.loads(child.stdout.readline())
    refused = closed_ports(n // 2)
    rows: dict[str, list[tuple[str, list[tuple[int, str]], int]]] = {
        "answered": [
            (v, make_targets(n, ports, refused, kinds="answered"), 1)
            for v in ("asyncio", "netprobe", *(("before",) if args.base else ()))
        ],
        "open only": [
            (v, make_targets(n // 2, ports, refused, kinds="open"), 1)
            for v in ("asyncio", "netprobe", *(("before",) if args.base else ()))
        ],
        "refused only": [
            (v, make_targets(n // 2, ports, refused, kinds="refused"), 1)
            for v in ("asyncio", "netprobe", *(("before",) if args.base else ()))
        ],
        "streamed": [
            ("stream", make_targets(n, ports, refused, kinds="answered"), 1),
            ("stream", make_targets(n, ports, refused, kinds="answered"), args.stream // n),
        ],
        "timeout-dominated": [
            (v, make_targets(args.timeout_targets, ports, refused, kinds="timeout"), 1)
            for v in ("asyncio", "netprobe")
        ],
    }
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    loads: list[float] = []
    try:
        for _ in range(args.runs):
            for row, variants in rows.items():
                for i, (variant, targets, repeat) in enumerate(variants):
                    if variant == "before":
                        got = run_worker("netprobe", targets, c, repeat, args.base)
                    else:
                        got = run_worker(variant, targets, c, repeat)
                    results.setdefault((row, i), []).append(got)
                    loads.append(os.getloadavg()[0])
                    time.sleep(0.5)  # the previous run's sockets settle
        imported = run_worker("import", [], c)
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    print(
        f"{n} answering targets, concurrency {c}, connect timeout {CONNECT_TIMEOUT:g} s, "
        f"{args.runs} runs per variant (fresh process each, alternating); load average "
        f"(1 min) during the runs: median {statistics.median(loads):.1f}, "
        f"{min(loads):.1f}-{max(loads):.1f}\n"
    )
    print("| row | variant | targets | wall s (median) | wall s (runs) | CPU ms per target "
          "| peak RSS MB | verdicts | wrong |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for row, variants in rows.items():
        for i, (variant, _targets, _repeat) in enumerate(variants):
            runs = results[(row, i)]
            walls = [r["wall_s"] for r in runs]
            cpu = statistics.median(r["cpu_ms_per"] for r in runs)
            rss = statistics.median(r["maxrss_kb"] for r in runs) / 1024.0
            verdicts = ", ".join(f"{k} {v}" for k, v in sorted(runs[-1]["verdicts"].items()))
            wrong: Counter[str] = Counter()
            for r in runs:
                wrong.update(r["mismatches"])
            print(
                f"| {row} | {variant} | {runs[0]['count']:,} | {statistics.median(walls):.2f} | "
                f"{' / '.join(f'{w:.2f}' for w in walls)} | {cpu:.3f} | {rss:.1f} | {verdicts} "
                f"| {', '.join(f'{k} ×{v}' for k, v in wrong.items()) or '0'} |"
            )
    print(f"| - | netprobe imported, nothing run | - | - | - | - | "
          f"{imported['maxrss_kb'] / 1024.0:.1f} | - | - |")  # fmt: skip
    print()
    for row in ("answered", "open only", "refused only", "timeout-dominated"):
        a, b = results[(row, 0)], results[(row, 1)]
        wall = statistics.median(r["wall_s"] for r in b) / statistics.median(r["wall_s"] for r in a)
        cpu = statistics.median(r["cpu_ms_per"] for r in b) / statistics.median(
            r["cpu_ms_per"] for r in a
        )
        print(f"{row}: netprobe / asyncio wall {wall:.2f}×, CPU per target {cpu:.2f}×")


if __name__ == "__main__":
    main()
