"""A service that refuses to start without its dependencies, and says why.

The lifespan waits for the database (with retries, backoff and jitter). If it is still not
ready at the deadline, it prints the diagnosis of each failing dependency and the server
exits instead of serving requests it cannot answer.

Run: python examples/lifespan_startup.py [DEPENDENCY...] [--timeout 30] [--port 8000]
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

import netprobe


# --8<-- [start:create_app]
def create_app(dependencies: Sequence[str], *, timeout: float) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            reports = await netprobe.wait_until_ready(dependencies, timeout=timeout, icmp=False)
        except netprobe.DependencyUnavailable as exc:
            print(f"refusing to start: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        for r in reports:
            print(f"dependency ready: {r.target} ({r.timings_ms.total:.1f} ms)", flush=True)
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"status": "serving"}

    return app


# --8<-- [end:create_app]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dependencies", nargs="*", default=["postgresql://127.0.0.1:5432"])
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    # Each change of a dependency's verdict is logged once, not every attempt.
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    app = create_app(args.dependencies, timeout=args.timeout)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info", lifespan="on")


if __name__ == "__main__":
    main()
