"""The L7 middleboxes and gRPC faults for the fault catalog: real servers in the lab's server
namespace (issue 14).

``l7_scenarios(lab)`` adds the lab addresses below to the server namespace, starts real
grpcio, nginx, HAProxy and Squid there (each bound to its lab address only), and yields one
:class:`Scenario` per code; everything is stopped on exit, also when starting fails half-way.
The CLI runs in the client namespace, as for every catalog scenario.

============  =====================================================================
198.18.0.70   ``orders.lab``: grpcio servers (health service with statuses, without
              it, failing with PERMISSION_DENIED, a handler slower than the check)
198.18.0.71   ``edge.lab``: nginx: a plain web site (8080), reverse proxies to a dead
              (8081) and a silent (8082) upstream
198.18.0.72   the upstreams: nothing on port 9, a server that accepts and never
              answers on 8000, HTTPS with an expired certificate on 8443
198.18.0.73   ``lb.lab``: HAProxy, mode http, its one server dead (8080)
198.18.0.74   ``cdn.lab``: a reverse proxy that reports with RFC 9209 Proxy-Status
              (nplab/rfc9209proxy.py): to the dead upstream (8080), to the expired
              certificate (8081)
198.18.0.75   ``proxy.lab``: Squid as the forward proxy the client goes through: 3128
              denies 198.18.0.76 (``denied.lab``), 3129 wants a password; Squid's own
              hosts file names ``api.lab`` (198.18.0.72) and ``denied.lab``
============  =====================================================================

The prose of each section (what is on the wire, the look-alikes, what to check next) is in
``nplab/catalog_l7_prose.py``, merged into ``nplab/catalog_prose.py``'s table.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from typing import Any

from netprobe.testing import CertBook
from nplab.realservers.grpc_server import GrpcServers
from nplab.realservers.haproxy import HAProxy
from nplab.realservers.nginx import Nginx, proxy, static
from nplab.realservers.squid import Squid
from nplab.scenario import Scenario
from nplab.topology import HERE, PY, Lab

__all__ = ["ADDRESSES", "l7_scenarios"]

GRPC_HOST, GRPC_ADDR = "orders.lab", "198.18.0.70"
EDGE_HOST, EDGE_ADDR = "edge.lab", "198.18.0.71"
UPSTREAM_ADDR = "198.18.0.72"
LB_HOST, LB_ADDR = "lb.lab", "198.18.0.73"
CDN_HOST, CDN_ADDR = "cdn.lab", "198.18.0.74"
PROXY_HOST, PROXY_ADDR = "proxy.lab", "198.18.0.75"
DENIED_ADDR = "198.18.0.76"
ADDRESSES = (GRPC_ADDR, EDGE_ADDR, UPSTREAM_ADDR, LB_ADDR, CDN_ADDR, PROXY_ADDR)
DEAD = f"{UPSTREAM_ADDR}:9"

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
        lab.add_host(LB_HOST, LB_ADDR)
        lab.add_host(CDN_HOST, CDN_ADDR)
        book = stack.enter_context(CertBook(names=("upstream.lab",)))
        cert, key = book.cert_files("expired")
        upstreams = [
            ["silent", UPSTREAM_ADDR, 8000, {}],
            ["tls", UPSTREAM_ADDR, 8443, {"cert": cert, "key": key}],
        ]
        _start(stack, lab, [PY, str(HERE / "catalog_servers.py"), json.dumps(upstreams)])
        stack.enter_context(GrpcServers(_GRPC, host=GRPC_ADDR, netns=lab.server))
        web = Nginx(host=EDGE_ADDR, netns=lab.server)
        web.site("web", static("edge web site"), port=_WEB_PORT)
        web.site("refused", proxy(DEAD), port=8081)
        web.site("silent", proxy(f"{UPSTREAM_ADDR}:8000", read_timeout=1.0), port=8082)
        stack.enter_context(web)
        lb = HAProxy(host=LB_ADDR, netns=lab.server)
        # A client slow to send its request (a loaded machine) must not meet HAProxy's 5 s
        # request timeout (408) before it meets the dead backend.
        slow_client = ["timeout http-request 30s", "timeout client 30s"]
        lb.listen("web", mode="http", servers=[DEAD], port=8080, extra=slow_client)
        stack.enter_context(lb)
        for port, upstream, extra in (
            (8080, DEAD, []),
            (8081, f"{UPSTREAM_ADDR}:8443", ["--tls-ca", book.ca_file, "--server-name",
                                            "upstream.lab"]),
        ):  # fmt: skip
            host, _, up_port = upstream.rpartition(":")
            argv = [PY, "-m", "nplab.rfc9209proxy", CDN_ADDR, str(port), host, up_port, *extra]
            _start(stack, lab, argv)
        lab.add_host(PROXY_HOST, PROXY_ADDR)
        names = {"api.lab": UPSTREAM_ADDR, "denied.lab": DENIED_ADDR}
        for port, options in ((3128, {"deny": [DENIED_ADDR]}), (3129, {"users": {"app": "pw"}})):
            squid = Squid(host=PROXY_ADDR, port=port, netns=lab.server, hosts=names, **options)
            stack.enter_context(squid)
        yield _scenarios()


def _start(stack: contextlib.ExitStack, lab: Lab, argv: list[str]) -> None:
    """A helper process in the server namespace that prints "ready" and ends when its stdin
    closes (catalog_servers.py, rfc9209proxy.py)."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.server, *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
    )

    def stop() -> None:
        with contextlib.suppress(OSError):
            if proc.stdin is not None:
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    stack.callback(stop)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        stop()
        raise RuntimeError(f"{argv[1:3]} did not start: {line!r}")


def _scenarios() -> list[Scenario]:
    grpc = f"{GRPC_HOST}"
    via = ("--proxy", f"http://{PROXY_HOST}:3128")
    return [
        # --- a forward proxy on the way ---------------------------------------------------
        Scenario(
            "proxy.denied",
            "The forward proxy's ACL denies the destination",
            f"Squid 5.7 on {PROXY_ADDR}:3128 (`{PROXY_HOST}`) with `acl denied dst "
            f"{DENIED_ADDR}` and `http_access deny denied`; the client goes through it "
            "(`--proxy`, as HTTPS_PROXY would) to `denied.lab`, which Squid's hosts file "
            f"maps to {DENIED_ADDR}: the CONNECT is answered 403.",
            "https://denied.lab:8443/health",
            via,
        ),
        Scenario(
            "proxy.connect_failed",
            "The forward proxy cannot reach the target",
            f"The same Squid; the target `api.lab` (Squid's hosts file: {UPSTREAM_ADDR}) "
            "refuses connections on port 9: Squid answers the forwarded GET with 503 and "
            "`X-Squid-Error: ERR_CONNECT_FAIL 111`.",
            "http://api.lab:9/health",
            via,
        ),
        Scenario(
            "proxy.auth_required",
            "The forward proxy wants a password",
            f"Squid 5.7 on {PROXY_ADDR}:3129 with basic authentication (basic_ncsa_auth); "
            "the proxy URL carries no credentials: the CONNECT is answered 407 with "
            '`Proxy-Authenticate: Basic realm="netprobe-squid"`.',
            "https://api.lab:8443/health",
            ("--proxy", f"http://{PROXY_HOST}:3129"),
        ),
        # --- a proxy about its upstream ---------------------------------------------------
        Scenario(
            "http.upstream_error",
            "nginx in front of a dead upstream",
            f"nginx on {EDGE_ADDR}:8081 (`{EDGE_HOST}`) with `proxy_pass http://{DEAD}`, where "
            "nothing listens: nginx answers its own 502 page (its error.log says `connect() "
            "failed (111: Connection refused)`, the page does not).",
            f"http://{EDGE_HOST}:8081/health",
        ),
        Scenario(
            "http.upstream_timeout",
            "nginx in front of an upstream that never answers",
            f"nginx on {EDGE_ADDR}:8082 with `proxy_pass http://{UPSTREAM_ADDR}:8000` (a "
            "server that accepts and never answers) and `proxy_read_timeout 1s`: after 1 s "
            "nginx answers 504.",
            f"http://{EDGE_HOST}:8082/health",
        ),
        Scenario(
            "http.upstream_unavailable",
            "HAProxy with no server left",
            f"HAProxy (mode http) on {LB_ADDR}:8080 (`{LB_HOST}`), its only server "
            f"`{DEAD}` refusing connections (`retries 0`): HAProxy answers its fixed 503 "
            "page, 'No server is available to handle this request.'",
            f"http://{LB_HOST}:8080/health",
        ),
        Scenario(
            "http.upstream_refused",
            "A proxy reports connection_refused (RFC 9209)",
            f"A reverse proxy on {CDN_ADDR}:8080 (`{CDN_HOST}`, nplab/rfc9209proxy.py) whose "
            f"upstream `{DEAD}` refuses its connection: it answers 502 with `Proxy-Status: "
            'nplab-proxy; error=connection_refused; next-hop="198.18.0.72:9"`, as CDNs and '
            "proxies that implement RFC 9209 do.",
            f"http://{CDN_HOST}:8080/health",
        ),
        Scenario(
            "http.upstream_tls",
            "A proxy reports tls_certificate_error (RFC 9209)",
            f"The same kind of proxy on {CDN_ADDR}:8081, whose upstream "
            f"`{UPSTREAM_ADDR}:8443` presents an expired certificate: its TLS handshake "
            "fails verification, and it answers 502 with `Proxy-Status: nplab-proxy; "
            "error=tls_certificate_error`.",
            f"http://{CDN_HOST}:8081/health",
        ),
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
