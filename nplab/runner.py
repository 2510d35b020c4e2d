"""Runs one diagnosis inside the lab's client namespace and prints the report as JSON.

``runner.py '{"target": ..., "options": {...}, "pre": {...}}'``. ``pre`` builds local state
first, in this process and namespace: ``close_wait`` (N connections the server closes and we
keep), ``time_wait`` (N connections we close first), ``fds`` (fill the fd table up to a share
of a lowered soft limit). The last line of output is {"report": ..., "wall_s": ...}.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import sys
import time
from typing import Any

import anyio

from netprobe import diagnose


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def prepare(pre: dict[str, Any], keep: list[Any]) -> None:
    if "close_wait" in pre:
        n, where = pre["close_wait"]
        socks = [socket.create_connection(_endpoint(where), timeout=2) for _ in range(n)]
        keep.extend(socks)
        deadline = time.monotonic() + 2
        for s in socks:  # wait for the server's FIN: our end is then in CLOSE_WAIT
            s.settimeout(max(0.01, deadline - time.monotonic()))
            with contextlib.suppress(OSError):
                s.recv(1)
    if "time_wait" in pre:
        n, where = pre["time_wait"]
        for _ in range(n):
            s = socket.create_connection(_endpoint(where), timeout=2)
            s.close()  # we close first: our end goes through FIN_WAIT to TIME_WAIT
        time.sleep(0.2)
    if "fds" in pre:
        limit, share = pre["fds"]
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        )
        while len(os.listdir("/proc/self/fd")) < int(limit * share):
            keep.append(open(os.devnull, "rb"))  # noqa: SIM115


def main() -> None:
    spec = json.loads(sys.argv[1])
    keep: list[Any] = []
    prepare(spec.get("pre", {}), keep)
    start = time.perf_counter()
    report = anyio.run(
        lambda: diagnose(spec["target"], **spec.get("options", {})),
        backend=spec.get("backend", "asyncio"),
    )
    wall = time.perf_counter() - start
    for item in keep:
        item.close()
    print(json.dumps({"report": json.loads(report.model_dump_json()), "wall_s": wall}))


if __name__ == "__main__":
    main()
