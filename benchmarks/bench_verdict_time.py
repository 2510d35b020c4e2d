"""Time to verdict per fault class, across a delay line of known RTT (needs root: the lab).

Run: .venv/bin/python benchmarks/bench_verdict_time.py [--runs 5] [--delay-ms 50]
Results: benchmarks/RESULTS-lab.md

One delay line (``--delay-ms`` each way, so RTT = 2 × delay) between the lab's namespaces.
Behind it, in the server namespace: nothing on port 83 (RST), ``tcp dport 84 drop``
(nftables, the host answers ping) and a name server on port 53 (benchmarks/lab_dns_server.py:
``ok.lab``, ``nodata.lab``, ``broken.lab`` SERVFAIL, ``slow.lab`` silent, others NXDOMAIN).
The DNS cases run twice: with ``nameservers=`` (netprobe asks the server directly) and through
the system resolver (the client namespace's resolv.conf points at the same server, ``options
timeout:1 attempts:1``; netprobe calls getaddrinfo and, when it fails, asks again directly).

Each run is a fresh process in the client namespace that diagnoses the target twice: "cold"
is the first call's in-process wall time of ``diagnose()`` (it includes first-use imports and
event-loop start, like a CLI run), "warm" the second's (the verdict time proper). The
verdict time is reported as a multiple of the RTT (answered faults) or of the timeout that
decides it (silent faults).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from netprobe.steps import TcpStep
from nplab.topology import PY, Lab, build_lab, sh

HERE = Path(__file__).resolve().parent


def worker(spec_json: str) -> None:
    """In the client namespace: diagnose the target twice in one process, time both."""
    import anyio

    from netprobe import diagnose

    spec = json.loads(spec_json)
    out: list[dict[str, Any]] = []
    for _ in range(2):
        start = time.perf_counter()
        report = anyio.run(lambda: diagnose(spec["target"], **spec["options"]))
        wall = time.perf_counter() - start
        tcp = report.step(TcpStep)
        connect = [a.connect_ms for a in tcp.attempts] if tcp is not None else []
        out.append(
            {
                "wall_s": wall,
                "code": report.fault.code if report.fault else "healthy",
                "connect_ms": [c for c in connect if c is not None],
            }
        )
    print(json.dumps(out))


def _measure(lab: Lab, target: str, options: dict[str, Any], runs: int) -> dict[str, Any]:
    cold: list[float] = []
    warm: list[float] = []
    codes: Counter[str] = Counter()
    connect_ms: list[float] = []
    spec = json.dumps({"target": target, "options": options})
    for _ in range(runs):
        proc = subprocess.run(
            ["ip", "netns", "exec", lab.client, PY, __file__, "--worker", spec],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=HERE.parent,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"worker failed for {target}: {proc.stderr[-2000:]}")
        first, second = json.loads(proc.stdout.strip().splitlines()[-1])
        cold.append(first["wall_s"] * 1000.0)
        warm.append(second["wall_s"] * 1000.0)
        codes.update((first["code"], second["code"]))
        connect_ms.extend(first["connect_ms"] + second["connect_ms"])
    code = ", ".join(f"{c} ×{n}" if len(codes) > 1 else c for c, n in codes.most_common())
    return {
        "cold": statistics.median(cold),
        "warm": statistics.median(warm),
        "min": min(warm),
        "max": max(warm),
        "code": code,
        "connect_ms": connect_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    rtt = 2 * args.delay_ms
    rows: list[tuple[str, str, dict[str, Any], str, float]] = []
    with build_lab() as lab:
        slow = lab.add_delay_line(delay_ms=args.delay_ms)
        sh(
            "nft",
            *("add", "rule", "inet", "nplab", "input", "ip", "daddr", slow),
            *("tcp", "dport", "84", "drop"),
            ns=lab.server,
        )
        lab._start(["ip", "netns", "exec", lab.server, PY, str(HERE / "lab_dns_server.py"), slow])
        ns = {"nameservers": [slow]}
        ct, dt = "1 × connect timeout", "1 × dns timeout"
        two = "2 RTT (getaddrinfo, then direct)"
        # (case, target, options, expected, unit in ms for the multiple)
        cases: list[tuple[str, str, dict[str, Any], str, float]] = [
            ("healthy tcp (reference)", f"tcp://{slow}:80", {}, "1 RTT", rtt),
            ("refused", f"tcp://{slow}:83", {}, "1 RTT", rtt),
            (
                "filtered, connect_timeout=1",
                f"tcp://{slow}:84",
                {"connect_timeout": 1.0},
                ct,
                1000.0,
            ),
            (
                "filtered, connect_timeout=0.5",
                f"tcp://{slow}:84",
                {"connect_timeout": 0.5},
                ct,
                500.0,
            ),
            ("NXDOMAIN (nameservers=)", "tcp://nope.lab:83", ns, "1 RTT", rtt),
            ("SERVFAIL (nameservers=)", "tcp://broken.lab:83", ns, "1 RTT", rtt),
            ("NODATA (nameservers=)", "tcp://nodata.lab:83", ns, "1 RTT", rtt),
            (
                "silent name server, dns_timeout=1 (nameservers=)",
                "tcp://slow.lab:83",
                {**ns, "dns_timeout": 1.0},
                dt,
                1000.0,
            ),
            (
                "silent name server, dns_timeout=0.5 (nameservers=)",
                "tcp://slow.lab:83",
                {**ns, "dns_timeout": 0.5},
                dt,
                500.0,
            ),
            ("name resolves, port refused (nameservers=)", "tcp://ok.lab:83", ns, "2 RTT", rtt),
        ]
        for name, target, options, expect, unit in cases:
            rows.append((name, expect, _measure(lab, target, options, args.runs), "", unit))
        # The same DNS faults through the system resolver of the client namespace.
        resolv = Path(f"/etc/netns/{lab.client}/resolv.conf")
        resolv.write_text(f"nameserver {slow}\noptions timeout:1 attempts:1\n")
        system_cases: list[tuple[str, str, dict[str, Any], str, float]] = [
            ("NXDOMAIN (system resolver)", "tcp://nope.lab:83", {}, two, rtt),
            ("SERVFAIL (system resolver)", "tcp://broken.lab:83", {}, two, rtt),
            (
                "silent name server, dns_timeout=2 (system resolver, timeout:1)",
                "tcp://slow.lab:83",
                {},
                "1 × dns timeout?",
                2000.0,
            ),
            (
                "silent name server, dns_timeout=1 (system resolver, timeout:1)",
                "tcp://slow.lab:83",
                {"dns_timeout": 1.0},
                "1 × dns timeout?",
                1000.0,
            ),
            ("name resolves, port refused (system resolver)", "tcp://ok.lab:83", {}, "2 RTT", rtt),
        ]
        for name, target, options, expect, unit in system_cases:
            rows.append((name, expect, _measure(lab, target, options, args.runs), "", unit))
    measured_rtt = statistics.median(rows[0][2]["connect_ms"]) if rows[0][2]["connect_ms"] else 0
    print(
        f"delay line {args.delay_ms:g} ms each way: RTT {rtt:g} ms configured, "
        f"{measured_rtt:.1f} ms measured (TCP connect of the healthy case); "
        f"{args.runs} runs per case, one fresh process each\n"
    )
    print(
        "| case | verdict (every run) | warm median ms | warm min–max | multiple (warm) "
        "| expected | cold median ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, expect, m, _, unit in rows:
        unit_name = "RTT" if unit == rtt else "× timeout"
        multiple = f"{m['warm'] / unit:.2f} {unit_name}"
        print(
            f"| {name} | {m['code']} | {m['warm']:.1f} | {m['min']:.0f}–{m['max']:.0f} "
            f"| {multiple} | {expect} | {m['cold']:.1f} |"
        )


if __name__ == "__main__":
    main()
