"""Prometheus metrics for a service's dependencies, two ways.

1. The health app's own ``/metrics``: each scrape goes through the cache (one diagnosis per
   dependency per ttl, however often Prometheus scrapes).
2. ``HealthCollector`` in a prometheus_client registry, next to the service's own metrics,
   served by prometheus_client's ASGI app.

    probe_success{dependency="db",target="postgresql://db:5432"} 0.0
    netprobe_fault{code="l4.refused",dependency="db",layer="l4",...} 1.0

Run: python examples/prometheus_scrape.py [TARGET...] [--port 9100]
     python examples/prometheus_scrape.py --once [TARGET...]   (print one scrape and exit)
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.applications import Starlette
from starlette.routing import Mount

import netprobe
from netprobe.health.metrics import HealthCollector, render_metrics


# --8<-- [start:create_app]
def create_app(targets: Sequence[str]) -> Starlette:
    health = netprobe.health_app(targets, ttl=15, icmp=False)
    registry = CollectorRegistry()
    registry.register(HealthCollector(health))  # (2): alongside your own metrics

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with health:  # runs the checker: a scrape of (2) can start due refreshes
            yield

    return Starlette(
        routes=[
            Mount("/health", app=health),  # (1): /health/metrics, /health/ready...
            Mount("/metrics", app=make_asgi_app(registry)),  # (2)
        ],
        lifespan=lifespan,
    )


# --8<-- [end:create_app]


async def scrape_once(targets: Sequence[str]) -> str:
    health = netprobe.health_app(targets, icmp=False)
    result = await health.checker.check(budget=10)
    body, _ = render_metrics(result)
    return body.decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", default=["postgresql://127.0.0.1:5432"])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--once", action="store_true", help="print one scrape and exit")
    args = parser.parse_args()
    if args.once:
        print(anyio.run(scrape_once, args.targets), end="")
        return
    uvicorn.run(create_app(args.targets), host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
