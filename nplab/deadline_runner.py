"""Runs many diagnoses at once in the lab's client namespace: ``deadline_runner.py JOBS``.

JOBS is a JSON object: ``{"jobs": [{"target": ..., "options": {...}}, ...], "pre": {...}}``.
``pre`` builds local state first, in this process (``close_wait``, ``time_wait``, ``fds`` as
in runner.py; ``fd_exhaustion`` as in catalog_cli.py), so a job list with a ``pre`` should
hold that scenario's jobs only. Prints one JSON line: a list, per job in order, of the report
(``model_dump`` in JSON mode) or ``{"exception": "Type: message"}`` when ``diagnose`` raised.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio

from netprobe import diagnose
from nplab.runner import prepare


async def _all(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{} for _ in jobs]
    limiter = anyio.CapacityLimiter(16)

    async def one(i: int, job: dict[str, Any]) -> None:
        async with limiter:
            try:
                report = await diagnose(job["target"], **job["options"])
            except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
                out[i] = {"exception": f"{type(exc).__name__}: {exc}"}
            else:
                out[i] = report.model_dump(mode="json")

    async with anyio.create_task_group() as tg:
        for i, job in enumerate(jobs):
            tg.start_soon(one, i, job)
    return out


def main() -> None:
    spec = json.loads(sys.argv[1])
    pre = spec.get("pre", {})
    keep: list[Any] = []
    prepare({k: v for k, v in pre.items() if k in ("close_wait", "time_wait", "fds")}, keep)
    if pre.get("fd_exhaustion"):
        from nplab.catalog_cli import _exhaust_fds_at_first_socket

        _exhaust_fds_at_first_socket()
    results = anyio.run(_all, spec["jobs"])
    for item in keep:
        item.close()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
