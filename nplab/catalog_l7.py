"""The L7 middleboxes and gRPC faults for the fault catalog: real servers in the lab's server
namespace (issue 14).

``l7_scenarios(lab)`` adds the lab addresses below to the server namespace, starts real
grpcio, nginx, HAProxy and Squid there (each bound to its lab address only), and yields one
:class:`Scenario` per code; everything is stopped on exit, also when starting fails half-way.
The CLI runs in the client namespace, as for every catalog scenario.

============  =====================================================================
198.18.0.70   ``orders.lab``: grpcio servers (health service with statuses, without
              it, failing with PERMISSION_DENIED, a handler slower than the check)
198.18.0.71   ``edge.lab``: nginx: a plain web site, reverse proxies to dead, silent
              and slow upstreams, ``grpc_pass`` to a dead gRPC server
============  =====================================================================

The prose of each section (what is on the wire, the look-alikes, what to check next) is in
``nplab/catalog_l7_prose.py``, merged into ``nplab/catalog_prose.py``'s table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from nplab.realservers.grpc_server import GrpcServers
from nplab.realservers.nginx import Nginx, static
from nplab.scenario import Scenario
from nplab.topology import Lab

__all__ = ["ADDRESSES", "l7_scenarios"]

GRPC_HOST, GRPC_ADDR = "orders.lab", "198.18.0.70"
EDGE_HOST, EDGE_ADDR = "edge.lab", "198.18.0.71"
ADDRESSES = (GRPC_ADDR, EDGE_ADDR)

#: grpcio servers on GRPC_ADDR, by port.
_GRPC: dict[str, dict[str, Any]] = {
    "health": {
        "kind": "health",
        "port": 50051,
        "statuses": {"": "SERVING", "shop.Orders": "NOT_SERVING", "shop.Stock": "SERVING"},
    },
    "no_health": {"kind": "no_health", "port": 50052},
    "denied": {
        "kind": "error",
        "port": 50053,
        "code": "PERMISSION_DENIED",
        "message": "missing bearer token",
    },
    "slow": {"kind": "slow", "port": 50054, "delay": 5.0},
}
_WEB_PORT = 8080


@contextlib.contextmanager
def l7_scenarios(lab: Lab) -> Iterator[list[Scenario]]:
    """Start the servers in the lab's server namespace; yield the scenarios; stop them."""
    with contextlib.ExitStack() as stack:
        for address in ADDRESSES:
            lab.add_address(address)
        lab.add_host(GRPC_HOST, GRPC_ADDR)
        lab.add_host(EDGE_HOST, EDGE_ADDR)
        stack.enter_context(GrpcServers(_GRPC, host=GRPC_ADDR, netns=lab.server))
        web = Nginx(host=EDGE_ADDR, netns=lab.server)
        web.site("web", static("edge web site"), port=_WEB_PORT)
        stack.enter_context(web)
        yield _scenarios()


def _scenarios() -> list[Scenario]:
    grpc = f"{GRPC_HOST}"
    return [
        Scenario(
            "grpc.not_serving",
            "The gRPC server reports the service NOT_SERVING",
            f"grpcio with grpcio-health-checking on {GRPC_ADDR}:50051 (`{GRPC_HOST}`); its "
            "health servicer has `shop.Orders` set to NOT_SERVING (the server as a whole is "
            "SERVING).",
            f"grpc://{grpc}:50051/shop.Orders",
        ),
        Scenario(
            "grpc.unknown_service",
            "The health service does not know the service asked for",
            f"The same grpcio server on {GRPC_ADDR}:50051; no status was ever set for "
            "`shop.Payments`, so `Check` answers NOT_FOUND.",
            f"grpc://{grpc}:50051/shop.Payments",
        ),
        Scenario(
            "grpc.no_health_service",
            "The gRPC server does not expose the health service",
            f"grpcio on {GRPC_ADDR}:50052 with one service of its own and no "
            "`grpc.health.v1.Health`: the call ends with UNIMPLEMENTED.",
            f"grpc://{grpc}:50052",
        ),
        Scenario(
            "grpc.error",
            "The health check fails with PERMISSION_DENIED",
            f"grpcio on {GRPC_ADDR}:50053 whose `Health/Check` aborts with "
            "PERMISSION_DENIED, `missing bearer token` (an authorisation interceptor that "
            "does not exempt the health service).",
            f"grpc://{grpc}:50053",
        ),
        Scenario(
            "grpc.timeout",
            "The health handler is slower than the check",
            f"grpcio on {GRPC_ADDR}:50054 whose `Health/Check` answers after 5 s; read "
            "timeout 1 s.",
            f"grpc://{grpc}:50054",
            ("--read-timeout", "1"),
        ),
        Scenario(
            "grpc.not_grpc",
            "A web server on the gRPC target's port",
            f"nginx (HTTP/1.1 only) on {EDGE_ADDR}:{_WEB_PORT} (`{EDGE_HOST}`): it answers "
            "the HTTP/2 preface with `400 Bad Request`.",
            f"grpc://{EDGE_HOST}:{_WEB_PORT}",
        ),
    ]
