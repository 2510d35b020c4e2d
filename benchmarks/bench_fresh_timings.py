"""The timings a fresh process reports against a warm in-process diagnosis, per phase.

Run: .venv/bin/python benchmarks/bench_fresh_timings.py [N] [BASE]
Results: benchmarks/RESULTS-fresh-timings.md

A report's timings must be the network's (issue 11): a ``netprobe diagnose`` run in a new
process pays first imports (httpx, cryptography, drivers), CA loading and SSL context
creation, and none of that may land inside a phase's clock. For each target kind on loopback
(``tcp``, ``http``, ``https``, ``tls``, ``redis`` when redis-server is installed,
``postgres`` when run as root with PostgreSQL installed), N rounds (default 7), each running,
side by side, interleaved:

* fresh: ``python -m netprobe diagnose URL --json`` in a new process (the CLI as a user runs
  it), its ``timings_ms`` and ``setup_ms`` read from the JSON;
* warm: ``netprobe.diagnose(URL)`` in this process, after one warm-up diagnosis of the same
  target.

* before (with BASE, a directory holding another netprobe package, e.g. an older commit's
  ``git archive COMMIT netprobe | tar -x -C BASE``): the same CLI run from that code, in the
  same rounds, for a before/after on the same load.

The servers run in a child process (``netprobe.testing``), so that their threads do not
compete with either client for the GIL. The table gives the median of each phase and the
difference fresh - warm; the goal is a difference of at most 10 ms for every phase.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator

import anyio

import netprobe

PHASES = ("dns", "tcp_connect", "tls_handshake", "first_byte", "total")
GOAL_MS = 10.0


def serve() -> None:
    """Child mode: every server until stdin closes; prints their targets as JSON."""
    from netprobe.testing import CertBook, L7Server, RedisServer, TcpServer

    with contextlib.ExitStack() as stack:
        book = stack.enter_context(CertBook())
        tcp = stack.enter_context(TcpServer())
        http = stack.enter_context(L7Server("http"))
        tls = stack.enter_context(L7Server("tls", ssl_context=book.server_context()))
        targets: dict[str, list[str]] = {
            "tcp": [f"tcp://127.0.0.1:{tcp.port}"],
            "http": [f"http://127.0.0.1:{http.port}/health"],
            "https": [f"https://127.0.0.1:{tls.port}/health", "--ca-file", book.ca_file],
            "tls": [f"tls://127.0.0.1:{tls.port}", "--ca-file", book.ca_file],
        }
        if RedisServer.available():
            redis = stack.enter_context(RedisServer())
            targets["redis"] = [f"redis://{redis.address}"]
        pg = _postgres(stack)
        if pg is not None:
            targets["postgres"] = [pg]
        print(json.dumps(targets))
        sys.stdout.flush()
        sys.stdin.read()


def _postgres(stack: contextlib.ExitStack) -> str | None:
    """A real PostgreSQL (nplab.dbservers) when this runs as root with it installed."""
    if os.geteuid() != 0:
        return None
    try:
        from nplab.dbservers import Postgres

        server = Postgres()
        stack.callback(server.stop)
        server.start()
    except Exception as exc:  # noqa: BLE001 - optional row: say why it is missing
        print(f"postgres row skipped: {exc}", file=sys.stderr)
        return None
    return f"postgresql://127.0.0.1:{server.port}/postgres"


def _options(argv: list[str]) -> dict[str, str]:
    return {"ca_file": argv[argv.index("--ca-file") + 1]} if "--ca-file" in argv else {}


HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fresh(argv: list[str], code: str = HERE) -> dict[str, float | None]:
    """A new CLI process running the netprobe package found in ``code``."""
    env = {**os.environ, "PYTHONPATH": code}
    out = subprocess.run(
        [sys.executable, "-m", "netprobe", "diagnose", *argv, "--json"],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd="/",
    )  # fmt: skip
    report = json.loads(out.stdout)
    if not report["ok"]:
        raise SystemExit(f"fresh {argv[0]}: {report['fault']}")
    times: dict[str, float | None] = dict(report["timings_ms"])
    return times


async def warm(argv: list[str]) -> dict[str, float | None]:
    report = await netprobe.diagnose(argv[0], **_options(argv))  # type: ignore[arg-type]
    if not report.ok:
        raise SystemExit(f"warm {argv[0]}: {report.fault}")
    return report.timings_ms.model_dump()


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 2) if present else None


@contextlib.contextmanager
def servers() -> Iterator[dict[str, list[str]]]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert child.stdout is not None
        yield json.loads(child.stdout.readline())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=60)


async def main(rounds: int, base: str | None) -> None:
    with servers() as targets:
        samples: dict[tuple[str, str], list[dict[str, float | None]]] = {}
        for argv in targets.values():
            await warm(argv)  # the warm-up: imports and contexts of this kind
        for i in range(rounds):
            for kind, argv in targets.items():
                # Alternate which goes first, so that drift and load hit both alike.
                order = ["fresh", "warm"] + (["before"] if base else [])
                for variant in order if i % 2 == 0 else reversed(order):
                    if variant == "warm":
                        got = await warm(argv)
                    else:
                        got = fresh(argv, HERE if variant == "fresh" else str(base))
                    samples.setdefault((kind, variant), []).append(got)
        load = os.getloadavg()
    print(f"N={rounds} rounds, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    before = " before (fresh) | before - warm |" if base else ""
    head = "| target | phase | fresh process (median ms) | warm in-process | fresh - warm |"
    print(f"{head}{before} goal |")
    print("|---|---|---|---|---|" + ("---|---|" if base else "") + "---|")
    for kind in targets:
        for phase in ("setup", *PHASES):
            f = median([s.get(phase) for s in samples[(kind, "fresh")]])
            w = median([s.get(phase) for s in samples[(kind, "warm")]])
            b = median([s.get(phase) for s in samples[(kind, "before")]]) if base else None
            if f is None and w is None and b is None:
                continue
            diff = None if f is None or w is None else round(f - w, 2)
            met = (
                "" if phase == "setup" or diff is None else ("met" if diff <= GOAL_MS else "MISSED")
            )
            old = ""
            if base:
                bdiff = None if b is None or w is None else round(b - w, 2)
                old = f" {b} | {bdiff} |"
            print(f"| {kind} | {phase} | {f} | {w} | {diff} |{old} {met} |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 7
        anyio.run(main, rounds, sys.argv[2] if len(sys.argv) > 2 else None)
