"""A FastAPI service with a database dependency and Kubernetes-style health endpoints.

    /health/live     200 while the process answers (never looks at the database)
    /health/ready    200 when the database is healthy, 503 with the fault otherwise
    /health/startup  like /ready until the first success, then 200 for good
    /health/metrics  Prometheus series (blackbox-compatible, plus netprobe_fault)

Run: python examples/fastapi_health.py [DATABASE] [--port 8000] [--ttl 5]
     (default database: redis://127.0.0.1:6379)
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

import netprobe


# --8<-- [start:create_app]
def create_app(database: str, *, ttl: float = 5.0) -> FastAPI:
    health = netprobe.health_app(
        [netprobe.Dependency(database, name="database")],
        ttl=ttl,  # at most one diagnosis of the database per ttl, however many probes come
        budget=0.8,  # under Kubernetes' default probe timeout (1 s)
        connect_timeout=1.0,
        icmp=False,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A mounted app gets no lifespan events of its own: run its checker here. The
        # diagnoses belong to it, and end (cancelled, awaited) when the service stops.
        async with health:
            yield

    app = FastAPI(lifespan=lifespan)
    app.mount("/health", health)

    @app.get("/")
    async def index() -> dict[str, str]:
        return {"service": "orders"}

    return app


# --8<-- [end:create_app]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", nargs="?", default="redis://127.0.0.1:6379")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--ttl", type=float, default=5.0)
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.database, ttl=args.ttl), host="127.0.0.1", port=args.port, log_level="info"
    )


if __name__ == "__main__":
    main()
