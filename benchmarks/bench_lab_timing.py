"""Timing in the fault lab (needs root): how long each L3/L4 verdict takes, and what ICMP costs.

Run: .venv/bin/python benchmarks/bench_lab_timing.py [--runs N]

Measures, with netprobe in the lab's client namespace (no default route), the in-process
wall time of ``diagnose()`` (Python start-up excluded):
* refused across a 100 ms RTT delay line (expect ~1 RTT), filtered (expect ~ the connect
  timeout), host-unreachable (ICMP admin-prohibited), ARP failure, no route;
* a healthy connect with and without ICMP (ICMP must add nothing);
* an https:// diagnosis across the 100 ms RTT line: wall time / RTT (physical minimum 3:
  SYN, TLS 1.3 handshake, HTTP request; goal <= 3.3), when the TLS layer is present;
* the two ICMP engines on loopback: 300 concurrent echoes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio

from netprobe.probes.icmp_engines import IcmpUnavailable
from netprobe.probes.icmp_sockets import open_engine
from nplab.topology import Lab, build_lab


def _median_ms(lab: Lab, target: str, options: dict[str, Any], runs: int) -> tuple[float, str]:
    walls: list[float] = []
    codes: Counter[str] = Counter()
    for _ in range(runs):
        result = lab.run(target, options)
        walls.append(result["wall_s"] * 1000.0)
        fault = result["report"]["fault"]
        codes[fault["code"] if fault else "healthy"] += 1
    # Every verdict seen, with its count: a run that differs must show, not hide behind the last.
    code = ", ".join(f"{c} ×{n}" if len(codes) > 1 else c for c, n in codes.most_common())
    return statistics.median(walls), code


async def _engine(name: str, n: int) -> tuple[int, float] | None:
    try:
        async with open_engine(socket.AF_INET, name) as engine:
            answered = 0
            start = time.perf_counter()

            async def one() -> None:
                nonlocal answered
                if (await engine.echo("127.0.0.1", 3.0)).outcome == "reply":
                    answered += 1

            async with anyio.create_task_group() as tg:
                for _ in range(n):
                    tg.start_soon(one)
            return answered, (time.perf_counter() - start) * 1000.0
    except IcmpUnavailable:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, str, float, str]] = []
    with build_lab() as lab:
        slow = lab.add_delay_line(delay_ms=50.0)  # 100 ms RTT
        cases: list[tuple[str, str, dict[str, Any], str]] = [
            ("refused, 100 ms RTT", f"{slow}:81", {}, "~100 ms (1 RTT)"),
            ("healthy tcp, 100 ms RTT, ICMP on", f"tcp://{slow}:80", {}, "~100 ms"),
            ("healthy tcp, 100 ms RTT, ICMP off", f"tcp://{slow}:80", {"icmp": False}, "~100 ms"),
            ("refused, LAN", "198.18.0.10:81", {}, "< 5 ms"),
            ("filtered (ping witness)", "198.18.0.12:81", {"connect_timeout": 1.0}, "~1000 ms"),
            ("filtered (canary witness)", "198.18.0.13:81", {"connect_timeout": 1.0}, "~1000 ms"),
            ("host unresponsive", "198.18.0.14:81", {"connect_timeout": 1.0}, "~1000 ms"),
            ("host-unreachable (admin-prohibited)", "198.18.0.17:81", {}, "< 5 ms"),
            ("host-unreachable (ARP, 1 probe x 300 ms)", "198.18.0.99:81", {}, "~300 ms"),
            ("network unreachable (no route)", "198.19.5.5:81", {}, "< 5 ms"),
        ]
        for name, target, options, expect in cases:
            ms, code = _median_ms(lab, target, options, args.runs)
            rows.append((name, code, ms, expect))
        https_line = "not measured: the TLS layer (probes/tls.py) is not there yet"
        try:
            import trustme

            ca = trustme.CA()
            cert = ca.issue_cert(slow)
            with tempfile.TemporaryDirectory() as tmp:
                cert_pem, key_pem, ca_pem = (Path(tmp) / n for n in ("c.pem", "k.pem", "ca.pem"))
                cert.cert_chain_pems[0].write_to_path(str(cert_pem))
                cert.private_key_pem.write_to_path(str(key_pem))
                ca.cert_pem.write_to_path(str(ca_pem))
                lab.start_https(443, str(cert_pem), str(key_pem))
                ms, code = _median_ms(lab, f"https://{slow}/", {"ca_file": str(ca_pem)}, args.runs)
                result = lab.run(f"https://{slow}/", {"ca_file": str(ca_pem)})
                tls = [s for s in result["report"]["steps"] if s["name"] == "tls"]
                if tls and tls[0]["status"] == "ok":
                    https_line = f"{ms:.1f} ms = {ms / 100.0:.2f} RTT ({code})"
                else:
                    https_line += f" (got {code} in {ms:.1f} ms)"
        except ImportError:
            https_line = "not measured: trustme missing"
    print(f"runs per case: {args.runs} (median wall time of diagnose())\n")
    print("| case | verdict | median ms | expected |")
    print("|---|---|---|---|")
    for name, code, ms, expect in rows:
        print(f"| {name} | {code} | {ms:.1f} | {expect} |")
    print(f"\nhttps:// across 100 ms RTT: {https_line}\n")
    print("| ICMP engine, 300 concurrent echoes to 127.0.0.1 | answered | ms |")
    print("|---|---|---|")
    for engine in ("builtin", "aioping"):
        res = anyio.run(_engine, engine, 300)
        if res is None:
            print(f"| {engine} | unavailable | - |")
        else:
            print(f"| {engine} | {res[0]}/300 | {res[1]:.1f} |")


if __name__ == "__main__":
    main()
