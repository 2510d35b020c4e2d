"""Scale: 1,000 targets (open / refused / silent) with ``diagnose_many`` in ONE process,
against a minimal hand-written asyncio checker of the same TCP connects (needs root: lab).

Run: .venv/bin/python benchmarks/bench_scale.py [--targets 1000] [--concurrency 100] [--runs 3]
Results: benchmarks/RESULTS-scale.md

The lab (nplab/topology.py) gives the silent ports: the server namespace drops SYNs with
nftables. This script adds, inside its own lab only:
* a server on ``OPEN_PORTS`` of 198.18.0.10 that holds every connection (open);
* nothing on ``REFUSED_BASE + i`` of 198.18.0.10 (refused: RST);
* ``tcp dport SILENT_LO-SILENT_HI drop`` on 198.18.0.12 (answers ping: l4.filtered), on
  198.18.0.13 (ICMP dropped, other ports answer RST: l4.filtered via the canary) and
  198.18.0.14 drops everything (l3.host_unresponsive).

Each variant runs in its own fresh process inside the client namespace (``--worker``), so its
peak RSS (``ru_maxrss``) is its own; the variants alternate run by run. Both use the same
connect timeout (1 s) and the same concurrency. The worker raises RLIMIT_NOFILE's soft limit
to 8192 (the hard limit allowing): with concurrency 100 netprobe holds up to ~3 sockets per
diagnosis (connect, canary, ICMP is one shared socket) plus the local-health read.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CONNECT_TIMEOUT = 1.0
OPEN_PORTS = range(8000, 8040)  # 40 listening ports, targets spread over them
REFUSED_BASE = 10000
SILENT_LO, SILENT_HI = 20000, 29999

# Silent hosts and the verdict netprobe must give (see topology.py's table).
SILENT_HOSTS = {
    "198.18.0.12": "l4.filtered",  # SYN dropped, the host answers ping
    "198.18.0.13": "l4.filtered",  # SYN and ping dropped, port 1 answers RST (canary)
    "198.18.0.14": "l3.host_unresponsive",  # drops everything
}


def make_targets(n: int, *, silent_too: bool = True) -> list[tuple[str, int, str]]:
    """(host, port, expected netprobe verdict): a third each open / refused / silent, or
    half open, half refused without ``silent_too`` (then CPU, not timeouts, sets the pace)."""
    out: list[tuple[str, int, str]] = []
    silent = list(SILENT_HOSTS.items())
    for i in range(n):
        kind = i % 3 if silent_too else i % 2
        if kind == 0:
            out.append(("198.18.0.10", OPEN_PORTS[i % len(OPEN_PORTS)], "healthy"))
        elif kind == 1:
            out.append(("198.18.0.10", REFUSED_BASE + i, "l4.refused"))
        else:
            host, code = silent[(i // 3) % len(silent)]
            out.append((host, SILENT_LO + i, code))
    return out


# The baseline's classes, and which netprobe verdicts each one is "right" for.
BASELINE_OK = {
    "healthy": "open",
    "l4.refused": "refused",
    "l4.filtered": "timeout",
    "l3.host_unresponsive": "timeout",
}


def _raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(8192, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _baseline(targets: list[tuple[str, int, str]], concurrency: int) -> list[str]:
    """What a user writes: open_connection under wait_for, behind a semaphore."""
    sem = asyncio.Semaphore(concurrency)

    async def check(host: str, port: int) -> str:
        async with sem:
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, port), CONNECT_TIMEOUT
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

    return list(await asyncio.gather(*(check(h, p) for h, p, _ in targets)))


def worker(variant: str, targets_file: str, concurrency: int) -> None:
    targets = [tuple(t) for t in json.loads(Path(targets_file).read_text())]
    nofile = _raise_nofile()
    if variant == "import":  # what importing netprobe alone costs in RSS
        import netprobe

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"variant": variant, "maxrss_kb": rss, "nofile": nofile}))
        return
    if variant == "netprobe":
        import anyio

        import netprobe  # imported before the clock starts, like asyncio for the baseline
    start = time.perf_counter()
    if variant == "asyncio":
        got = asyncio.run(_baseline(targets, concurrency))
        wall = time.perf_counter() - start
        expected = [BASELINE_OK[t[2]] for t in targets]
    else:

        async def go() -> list[str]:
            reports = await netprobe.diagnose_many(
                [f"tcp://{h}:{p}" for h, p, _ in targets],
                concurrency=concurrency,
                connect_timeout=CONNECT_TIMEOUT,
            )
            return [r.fault.code if r.fault else "healthy" for r in reports]

        got = anyio.run(go)
        wall = time.perf_counter() - start
        expected = [str(t[2]) for t in targets]
    mismatches = Counter(f"{e} -> {g}" for e, g in zip(expected, got, strict=True) if e != g)
    print(
        json.dumps(
            {
                "variant": variant,
                "wall_s": wall,
                "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "verdicts": Counter(got),
                "mismatches": mismatches,
                "nofile": nofile,
            }
        )
    )


def _run_worker(lab: Any, variant: str, targets_file: str, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.client,
            sys.executable,
            __file__,
            "--worker",
            variant,
            "--targets-file",
            targets_file,
            "--concurrency",
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{variant} worker failed: {out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--targets", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker", choices=("netprobe", "asyncio", "import"))
    parser.add_argument("--targets-file")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.targets_file, args.concurrency)
        return

    import tempfile

    from nplab.topology import PY, build_lab, sh

    mixes = {
        "mixed": make_targets(args.targets),
        "answered only": make_targets(args.targets, silent_too=False),
    }
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with build_lab() as lab, tempfile.TemporaryDirectory() as tmp:
        for host in ("198.18.0.12", "198.18.0.13"):
            sh(
                "nft",
                *("add", "rule", "inet", "nplab", "input", "ip", "daddr", host),
                *("tcp", "dport", f"{SILENT_LO}-{SILENT_HI}", "drop"),
                ns=lab.server,
            )
        lab._start(
            ["ip", "netns", "exec", lab.server, PY, str(ROOT / "nplab" / "servers.py")]
            + [f"{p}:hold" for p in OPEN_PORTS]
        )
        for mix, targets in mixes.items():
            targets_file = str(Path(tmp) / "targets.json")
            Path(targets_file).write_text(json.dumps(targets))
            for _ in range(args.runs):
                for variant in ("asyncio", "netprobe"):
                    run = _run_worker(lab, variant, targets_file, args.concurrency)
                    results.setdefault((mix, variant), []).append(run)
                    time.sleep(1.0)  # let the previous run's sockets and the server settle
        imported = _run_worker(lab, "import", targets_file, args.concurrency)
    nofile = results["mixed", "netprobe"][0]["nofile"]
    print(
        f"{args.targets} targets per mix, concurrency {args.concurrency}, connect timeout "
        f"{CONNECT_TIMEOUT:g} s, {args.runs} runs per variant (fresh process each, "
        f"alternating), RLIMIT_NOFILE soft {nofile}, peak RSS = ru_maxrss of the process\n"
    )
    print(
        "| mix | variant | wall s (median) | wall s (runs) | peak RSS MB (median) "
        "| verdicts | wrong |"
    )
    print("|---|---|---|---|---|---|---|")
    ratios: dict[str, float] = {}
    for mix, targets in mixes.items():
        counts = Counter(t[2] for t in targets)
        mix_text = f"{mix}: " + ", ".join(f"{n} {c}" for c, n in counts.items())
        med: dict[str, float] = {}
        for variant in ("asyncio", "netprobe"):
            runs = results[mix, variant]
            walls = [r["wall_s"] for r in runs]
            med[variant] = statistics.median(walls)
            rss = statistics.median(r["maxrss_kb"] for r in runs) / 1024.0
            verdicts = ", ".join(f"{c} {n}" for c, n in sorted(runs[-1]["verdicts"].items()))
            wrong: Counter[str] = Counter()
            for r in runs:
                wrong.update(r["mismatches"])
            wrong_text = ", ".join(f"{k} ×{v}" for k, v in wrong.items()) or "0"
            print(
                f"| {mix_text} | {variant} | {med[variant]:.2f} "
                f"| {' / '.join(f'{w:.2f}' for w in walls)} | {rss:.1f} | {verdicts} "
                f"| {wrong_text} |"
            )
        ratios[mix] = med["netprobe"] / med["asyncio"]
    imported_mb = imported["maxrss_kb"] / 1024.0
    print(f"| - | netprobe imported, nothing run | - | - | {imported_mb:.1f} | - | - |")
    print()
    for mix, ratio in ratios.items():
        goal = "goal <= 2×" if mix == "mixed" else "no goal: CPU per diagnosis, no timeouts"
        print(f"netprobe / asyncio wall, {mix}: {ratio:.2f}× ({goal})")


if __name__ == "__main__":
    main()
