"""What the middle of the path costs: the TCP trace after an L4 failure (issue 13).

Builds the namespace lab and its routed path (nplab/pathlab.py: client -> r1 -> r2 ->
server), then, in the client namespace:

* ``trace_path()`` alone to the drop at hop 2 and to the reject at hop 1 (hops x RTT: all
  TTLs are sent at once, so a trace costs one wait, not one per hop);
* ``diagnose()`` of the drop at hop 2 with the trace and with ``trace=False``: the trace
  runs inside the connect timeout, so the wall time must not grow;
* ``diagnose()`` of the reject at hop 1, with and without the trace (there the connect
  fails at once and the trace comes after it);
* ``diagnose()`` of the MTU black hole (a 64 KiB response, a 3 KB certificate): the read
  timeout (3 s) runs out first, then the small-MSS retry (its own duration in brackets).

    .venv/bin/python benchmarks/bench_path.py [ROUNDS]

Needs root (namespaces, nftables). Prints a markdown table (milliseconds).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nplab.pathlab import ADMIN_PROHIBITED, DROP_AT_HOP2, MTU_BLACKHOLE, build_path  # noqa: E402
from nplab.topology import PY, build_lab  # noqa: E402

_INNER = """
import json, sys, time, anyio
from netprobe import diagnose
from netprobe.probes.trace import trace_path
spec = json.loads(sys.argv[1])
out = []
async def main():
    for _ in range(spec["rounds"]):
        t = time.perf_counter()
        if spec["kind"] == "trace":
            step = await trace_path(spec["address"], 80, max_hops=12, wait_s=1.5)
            extra = len(step.hops)
        else:
            r = await diagnose(spec["target"], **spec["options"])
            extra = r.fault.code if r.fault else None
            tcp = next((s for s in r.steps if s.name == "tcp"), None)
            probe = getattr(tcp, "pmtu_probe", None)
            if probe is not None:
                extra = f"{extra} (retry {probe.duration_ms:.0f} ms)"
        out.append(((time.perf_counter() - t) * 1000, extra))
anyio.run(main)
print(json.dumps(out))
"""


def run(client: str, rounds: int, **spec: object) -> list[tuple[float, object]]:
    arg = json.dumps({"rounds": rounds, **spec})
    done = subprocess.run(
        ["ip", "netns", "exec", client, PY, "-c", _INNER, arg],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        check=True,
    )
    result: list[tuple[float, object]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    drop, reject = DROP_AT_HOP2[0], ADMIN_PROHIBITED[0]
    cases: list[tuple[str, dict[str, object]]] = [
        ("trace_path() to the drop at hop 2", {"kind": "trace", "address": drop}),
        ("trace_path() to the reject at hop 1", {"kind": "trace", "address": reject}),
        (
            "diagnose drop at hop 2 (trace)",
            {"kind": "diagnose", "target": f"tcp://{drop}:80", "options": {}},
        ),
        (
            "diagnose drop at hop 2 (trace=False)",
            {"kind": "diagnose", "target": f"tcp://{drop}:80", "options": {"trace": False}},
        ),
        (
            "diagnose reject at hop 1 (trace)",
            {"kind": "diagnose", "target": f"tcp://{reject}:80", "options": {}},
        ),
        (
            "diagnose reject at hop 1 (trace=False)",
            {"kind": "diagnose", "target": f"tcp://{reject}:80", "options": {"trace": False}},
        ),
        (
            "diagnose MTU black hole, 64 KiB response",
            {"kind": "diagnose", "target": f"http://{MTU_BLACKHOLE}/big", "options": {}},
        ),
        (
            "diagnose MTU black hole, 3 KB certificate",
            {
                "kind": "diagnose",
                "target": f"https://{MTU_BLACKHOLE}/",
                "options": {"verify": False},
            },
        ),
    ]
    with build_lab() as lab, build_path(lab):
        print(f"rounds per case: {rounds}\n")
        print("| case | median ms | max ms | result |")
        print("|---|---|---|---|")
        for name, spec in cases:
            results = run(lab.client, rounds, **spec)
            ms = [r[0] for r in results]
            what = sorted({str(r[1]) for r in results})
            print(
                f"| {name} | {statistics.median(ms):.1f} | {max(ms):.1f} | {', '.join(what)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
