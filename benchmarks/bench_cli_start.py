"""A whole ``netprobe diagnose`` process against the imports of its core dependencies.

Run: .venv/bin/python benchmarks/bench_cli_start.py [N] [BASE]
Results: benchmarks/RESULTS-import.md (section "Whole process")

Issue 16's goals: ``import netprobe`` at most 2x ``import anyio, pydantic, idna, sniffio``,
and ``netprobe diagnose`` of a refused loopback port, as a whole process, at most 1.5x
``python -c "import anyio, pydantic"``. N rounds (default 15), each running every command
once in a fresh process, interleaved and alternating the order; medians of the CPU time
(user + system: what load on a shared machine does not inflate) and of the wall time.
Byte-code caching is on (PYTHONDONTWRITEBYTECODE dropped, cache in a temporary prefix), as
for an installed package. BASE: a directory holding another netprobe (e.g. the code
before) for the same rounds.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from netprobe.testing import closed_port

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(rounds: int, base: str | None) -> None:
    port = closed_port()
    py = sys.executable
    commands = {
        "python -c 'import anyio, pydantic'": ([py, "-c", "import anyio, pydantic"], HERE),
        "core dependencies (anyio, pydantic, idna, sniffio)": (
            [py, "-c", "import anyio, pydantic, idna, sniffio"],
            HERE,
        ),
        "import netprobe": ([py, "-c", "import netprobe"], HERE),
        f"netprobe diagnose 127.0.0.1:{port} --json (refused)": (
            [py, "-m", "netprobe", "diagnose", f"127.0.0.1:{port}", "--json"],
            HERE,
        ),
    }
    if base:
        commands["import netprobe (before)"] = ([py, "-c", "import netprobe"], base)
        commands["netprobe diagnose (before)"] = (
            [py, "-m", "netprobe", "diagnose", f"127.0.0.1:{port}", "--json"],
            base,
        )
    cpu: dict[str, list[float]] = {k: [] for k in commands}
    wall: dict[str, list[float]] = {k: [] for k in commands}
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        for i in range(rounds + 1):
            items = list(commands.items())
            for name, (argv, code) in items if i % 2 == 0 else items[::-1]:
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                subprocess.run(
                    argv, env={**env, "PYTHONPATH": code}, cwd="/", check=False,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if i == 0:
                    continue  # the first round writes the byte-code caches
                used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                cpu[name].append(used * 1000.0)
                wall[name].append((time.perf_counter() - start) * 1000.0)
    load = os.getloadavg()
    print(f"N={rounds} rounds, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    ref = statistics.median(cpu["python -c 'import anyio, pydantic'"])
    core = statistics.median(cpu["core dependencies (anyio, pydantic, idna, sniffio)"])
    print("| process | CPU ms (median) | wall ms (median) | CPU / `import anyio, pydantic` "
          "| CPU / core dependencies |")  # fmt: skip
    print("|---|---|---|---|---|")
    for name in commands:
        c = statistics.median(cpu[name])
        print(f"| {name} | {c:.1f} | {statistics.median(wall[name]):.1f} | {c / ref:.2f}× "
              f"| {c / core:.2f}× |")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15, sys.argv[2] if len(sys.argv) > 2 else None)
