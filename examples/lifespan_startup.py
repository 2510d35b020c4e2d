"""A service that refuses to start without its dependencies, and says why.

At startup the server waits for the database (with retries, backoff and jitter). If it is
still not ready at the deadline, the server prints the diagnosis of each failing dependency
and exits (uvicorn's status 3, "startup failed"), instead of serving requests it cannot
answer. No traceback: the startup gate fails the ASGI lifespan with the diagnosis as its
message, and the app's own lifespan never runs.

Run: python examples/lifespan_startup.py [DEPENDENCY...] [--timeout 30] [--port 8000]
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from netprobe.health import startup_gate
from netprobe.health.startup import ASGIApp


# --8<-- [start:create_app]
def create_app(dependencies: Sequence[str], *, timeout: float) -> ASGIApp:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Runs only once every dependency is ready: open pools, warm caches...
        print("dependencies ready: starting", flush=True)
        yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"status": "serving"}

    # The gate waits before the app's lifespan; at the deadline it stops the server with
    # the diagnosis of each dependency that is not ready.
    return startup_gate(app, dependencies, timeout=timeout, icmp=False)


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
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
