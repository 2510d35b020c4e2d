"""Hostile peers: wall time and memory of one diagnosis per peer × target kind.

Each diagnosis runs in a fresh subprocess (the hostile peer runs here, in the parent, so its
own buffers are not counted): netprobe and the probe modules are imported first, then the
child measures the diagnosis alone: wall time, the tracemalloc peak (Python allocations) and
the RSS high-water mark minus the RSS before (ru_maxrss: what the OS saw). Also shown: what
the peer managed to send (kernel socket buffers included, so an upper bound of what was
read) and, for HTTP, the body bytes the report says were read.

    .venv/bin/python benchmarks/bench_hostile.py                # read_timeout 3 s, drip 1 byte/s
    .venv/bin/python benchmarks/bench_hostile.py --only drip,huge --kinds http,mysql

Prints a markdown table for benchmarks/RESULTS-hostile.md.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from nplab.hostile import (
    BEHAVIOURS,
    FLAVOURS,
    ONLY_FOR,
    Behaviour,
    Flavour,
    hostile_peer,
    target_for,
)

ROOT = Path(__file__).resolve().parent.parent


def _child(target: str, read_timeout: float, timeout: float, ca_file: str) -> None:
    import resource
    import tracemalloc

    import anyio

    import netprobe
    import netprobe.probes.database
    import netprobe.probes.http
    import netprobe.probes.tls
    import netprobe.protocols.x509  # imported before measuring

    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm") as f:
        rss_before_kb = int(f.read().split()[1]) * page // 1024
    tracemalloc.start()
    start = time.perf_counter()
    report = anyio.run(
        lambda: netprobe.diagnose(
            target, timeout=timeout, read_timeout=read_timeout, icmp=False, ca_file=ca_file
        )
    )
    wall = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    app = report.steps[-1] if report.steps and report.steps[-1].name == "application" else None
    body = getattr(getattr(app, "http", None), "body_bytes", None)
    print(
        json.dumps(
            {
                "verdict": report.fault.code if report.fault else "ok",
                "deadline": "diagnosis.deadline" in report.warning_codes(),
                "wall_s": wall,
                "tracemalloc_peak_kb": peak / 1024,
                "rss_delta_kb": max(0, maxrss_kb - rss_before_kb),
                "body_bytes": body,
            }
        )
    )


def _one(
    behaviour: Behaviour,
    flavour: Flavour,
    args: argparse.Namespace,
    context: ssl.SSLContext,
    ca: str,
) -> dict[str, Any]:
    with hostile_peer(
        behaviour,
        flavour,
        server_context=context,
        interval=args.interval,
    ) as peer:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                target_for(flavour, peer.port),
                str(args.read_timeout),
                str(args.timeout),
                ca,
            ],
            capture_output=True,
            text=True,
            timeout=args.timeout + 30,
            check=True,
        )
        sent = peer.stats.bytes_sent
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    row["peer_sent"] = sent
    return row


def _size(n: int | None) -> str:
    if n is None:
        return "—"
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.0f} KiB"
    return f"{n} B"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--read-timeout", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=10.0, help="total deadline")
    parser.add_argument("--interval", type=float, default=1.0, help="drip/trickle period (s)")
    parser.add_argument("--only", default=",".join(BEHAVIOURS))
    parser.add_argument("--kinds", default=",".join(FLAVOURS))
    args = parser.parse_args()

    import trustme

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    with tempfile.TemporaryDirectory() as tmp:
        ca_file = str(Path(tmp) / "ca.pem")
        ca.cert_pem.write_to_path(ca_file)
        print(
            f"read_timeout {args.read_timeout:g} s, deadline {args.timeout:g} s, "
            f"drip/trickle every {args.interval:g} s, Python {sys.version.split()[0]}\n"
        )
        print(
            "| peer | kind | verdict | wall (s) | tracemalloc peak | RSS delta "
            "| peer sent | body read |"
        )
        print("|---|---|---|---:|---:|---:|---:|---:|")
        for b in args.only.split(","):
            for f in args.kinds.split(","):
                behaviour, flavour = cast(Behaviour, b), cast(Flavour, f)
                if flavour not in ONLY_FOR.get(behaviour, FLAVOURS):
                    continue
                r = _one(behaviour, flavour, args, context, ca_file)
                verdict = r["verdict"] + (" (deadline!)" if r["deadline"] else "")
                print(
                    f"| {behaviour} | {flavour} | {verdict} | {r['wall_s']:.2f} "
                    f"| {r['tracemalloc_peak_kb']:.0f} KiB | {r['rss_delta_kb']:.0f} KiB "
                    f"| {_size(r['peer_sent'])} | {_size(r['body_bytes'])} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
