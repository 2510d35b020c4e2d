"""The real-server harness (nplab/realservers/): each server starts, answers as the real
software does, and leaves nothing behind (no process, no listening port, no directory).

What the servers send in each fault situation is recorded in tests/fixtures/realservers/.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from nplab.dbservers import APP_PASSWORD, Postgres, postgres  # noqa: F401 - session fixture
from nplab.realservers._base import (
    LoopbackNamespace,
    RealServer,
    SilentUdp,
    StartError,
    free_port,
    listening,
)
from nplab.realservers.bind import Bind
from nplab.realservers.conntrack import SERVER_IP, ConntrackPath
from nplab.realservers.dnsmasq import Dnsmasq
from nplab.realservers.faketime import run_shifted
from nplab.realservers.grpc_server import GrpcHealthServer
from nplab.realservers.haproxy import HAProxy
from nplab.realservers.nginx import Nginx, proxy, static
from nplab.realservers.pgbouncer import PgBouncer
from nplab.realservers.pki import Pki, TlsFiles
from nplab.realservers.prometheus import Prometheus, promtool
from nplab.realservers.squid import Squid
from nplab.require import require_root

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def web_cert(pki: Pki) -> TlsFiles:
    return pki.server("web", "localhost", "127.0.0.1", issuer=pki.intermediate("web inter"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def leaves_nothing(server: RealServer) -> Iterator[RealServer]:
    """Start ``server``; after the block, its process group, ports and directory are gone."""
    with server:
        assert server.proc is not None
        pid = server.proc.pid
        ports = {server.port}
        yield server
    assert not _pid_alive(pid), f"{server.name} still runs"
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, 0)
        pytest.fail(f"{server.name}: a process of its group still runs")
    assert not server.dir.exists(), server.dir
    for port in ports:
        assert not listening(server.host, port), port


def http_get(
    url_host: str, port: int, *, context: ssl.SSLContext | None = None, path: str = "/"
) -> tuple[int, dict[str, str], bytes]:
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection(url_host, port, context=context, timeout=5)
    else:
        conn = http.client.HTTPConnection(url_host, port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def dns_query(name: str, port: int, host: str = "127.0.0.1") -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, "A"), host, port=port, timeout=3)


# ------------------------------------------------------------------------------------ nginx


def test_nginx_static_tls_mtls_and_proxy(pki: Pki, web_cert: TlsFiles) -> None:
    dead = free_port()
    web = (
        Nginx()
        .site("static", static("hello"))
        .site("tls", static("secure"), tls=web_cert)
        .site("mtls", static("mutual"), tls=web_cert, client_ca=str(pki.ca_file))
        .site("proxy", proxy(f"127.0.0.1:{dead}"))
    )
    with leaves_nothing(web):
        status, headers, body = http_get("127.0.0.1", web.port_of("static"))
        assert (status, body) == (200, b"hello\n") and headers["server"].startswith("nginx/")
        ctx = ssl.create_default_context(cafile=str(web_cert.ca))
        assert http_get("127.0.0.1", web.port_of("tls"), context=ctx)[2] == b"secure\n"
        status, _, body = http_get("127.0.0.1", web.port_of("mtls"), context=ctx)
        assert status == 400 and b"No required SSL certificate was sent" in body
        status, _, body = http_get("127.0.0.1", web.port_of("proxy"))
        assert status == 502 and b"Bad Gateway" in body
        assert "Connection refused" in web.error_log


def test_nginx_start_failure_cleans_up() -> None:
    web = Nginx().site("broken", "no_such_directive on;")
    with pytest.raises(StartError, match="no_such_directive"):
        web.start()
    assert web.proc is None and not web.dir.exists()


# ------------------------------------------------------------------------------------ HAProxy


def test_haproxy_all_backends_down_and_tcp_mode() -> None:
    dead = free_port()
    lb = (
        HAProxy()
        .listen("web", mode="http", servers=[f"127.0.0.1:{dead}"], check=True)
        .listen("tcp", mode="tcp", servers=[f"127.0.0.1:{dead}"], check=True)
    )
    with leaves_nothing(lb):
        lb.wait_backends_down("web")
        status, _, body = http_get("127.0.0.1", lb.port_of("web"))
        assert status == 503 and b"No server is available to handle this request." in body
        with socket.create_connection(("127.0.0.1", lb.port_of("tcp")), timeout=3) as s:
            s.settimeout(3)
            assert s.recv(100) == b""  # accepted, then closed: the backend is dead


def test_haproxy_mtls_bind_requires_a_client_certificate(pki: Pki, web_cert: TlsFiles) -> None:
    lb = HAProxy().listen(
        "mtls",
        mode="http",
        servers=[f"127.0.0.1:{free_port()}"],
        tls=web_cert,
        client_ca=str(pki.ca_file),
    )
    with leaves_nothing(lb):
        ctx = ssl.create_default_context(cafile=str(web_cert.ca))
        with (
            pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"),
            socket.create_connection(("127.0.0.1", lb.port_of("mtls")), timeout=3) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            tls.recv(100)


# ------------------------------------------------------------------------------------ DNS


def test_bind_answers_refuses_and_forwards_to_a_silent_upstream() -> None:
    zones = {"lab.test": "www A 127.0.0.1\nalias CNAME missing.lab.test.\n"}
    with leaves_nothing(Bind(zones=zones)) as ns:
        answer = dns_query("www.lab.test", ns.port)
        assert answer.rcode() == dns.rcode.NOERROR
        assert answer.answer[0].to_text().endswith("A 127.0.0.1")
        assert dns_query("alias.lab.test", ns.port).rcode() == dns.rcode.NXDOMAIN
    with leaves_nothing(Bind(zones=zones, allow_query="none")) as ns:
        assert dns_query("www.lab.test", ns.port).rcode() == dns.rcode.REFUSED
    with SilentUdp() as silent, Bind(zones=zones, forwarders=[("127.0.0.1", silent.port)]) as ns:
        assert dns_query("www.lab.test", ns.port).rcode() == dns.rcode.NOERROR
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(
                dns.message.make_query("x.example", "A"), "127.0.0.1", port=ns.port, timeout=1
            )
        assert silent.received >= 1


def test_dnsmasq_records() -> None:
    records = ["host-record=www.lab.test,127.0.0.1", "address=/wild.lab.test/127.0.0.9"]
    with leaves_nothing(Dnsmasq(records=records)) as ns:
        assert dns_query("www.lab.test", ns.port).answer[0].to_text().endswith("127.0.0.1")
        assert dns_query("any.wild.lab.test", ns.port).answer[0].to_text().endswith("127.0.0.9")
        assert dns_query("elsewhere.test", ns.port).rcode() == dns.rcode.REFUSED


def test_getaddrinfo_in_a_namespace_asks_a_real_server_on_port_53() -> None:
    require_root()
    with (
        LoopbackNamespace("d", resolv_conf="nameserver 127.0.0.1\noptions timeout:1\n") as ns,
        Dnsmasq(records=["host-record=www.lab.test,127.0.0.7"], port=53, netns=ns.name),
    ):
        code = "import socket; print(socket.getaddrinfo('www.lab.test', 80)[0][4][0])"
        out = ns.run([sys.executable, "-c", code])
        assert out.stdout.strip() == "127.0.0.7", out.stderr
    assert not Path(f"/etc/netns/{ns.name}").exists()


# ------------------------------------------------------------------------------------ PgBouncer


def test_pgbouncer_in_front_of_postgres(postgres: Postgres) -> None:  # noqa: F811
    from netprobe.protocols import postgres as pg

    bouncer = PgBouncer(
        upstream=("127.0.0.1", postgres.port), users={"app": APP_PASSWORD}, max_client_conn=1
    )
    with leaves_nothing(bouncer):
        with socket.create_connection(("127.0.0.1", bouncer.port), timeout=3) as first:
            first.sendall(pg.build_startup("app", "appdb"))
            assert first.recv(4096)[:1] == b"R"  # SCRAM authentication request
            with socket.create_connection(("127.0.0.1", bouncer.port), timeout=3) as second:
                second.sendall(pg.build_startup("app", "appdb"))
                data = second.recv(4096)
        assert data[:1] == b"E" and b"max_client_conn" in data and b"08P01" in data


# ------------------------------------------------------------------------------------ Squid


def test_squid_forward_proxy_allows_and_denies() -> None:
    with Nginx().site("origin", static("origin")) as web:
        squid = Squid(deny=["127.0.0.2"])
        with leaves_nothing(squid):
            conn = http.client.HTTPConnection("127.0.0.1", squid.port, timeout=5)
            conn.request("GET", f"http://127.0.0.1:{web.port}/")
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"origin\n")
            assert "squid" in (resp.getheader("Via") or "")
            conn.request("GET", f"http://127.0.0.2:{web.port}/")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 403
            assert resp.getheader("X-Squid-Error") == "ERR_ACCESS_DENIED 0"
            conn.close()


# ------------------------------------------------------------------------------------ Prometheus


def test_prometheus_scrapes_a_loopback_target() -> None:
    metrics = "default_type text/plain; location / { return 200 'probe_success 1\\n'; }"
    with Nginx().site("metrics", metrics) as web:
        prom = Prometheus(targets=[f"127.0.0.1:{web.port}"])
        with leaves_nothing(prom):
            up = prom.wait_scraped(timeout=15)
            assert up[0]["value"][1] == "1"
            assert prom.query("probe_success")[0]["value"][1] == "1"
    checked = promtool("check", "metrics", stdin="# HELP x A gauge.\n# TYPE x gauge\nx 1\n")
    assert checked.returncode == 0, checked.stderr


# ------------------------------------------------------------------------------------ libfaketime


def test_faketime_shifts_only_the_child_wall_clock() -> None:
    code = "import time; print(time.time(), time.monotonic())"
    real_wall, real_mono = time.time(), time.monotonic()
    out = run_shifted([sys.executable, "-c", code], "+400d")
    wall, mono = (float(x) for x in out.stdout.split())
    assert 399 * 86400 < wall - real_wall < 401 * 86400, out
    assert abs(mono - real_mono) < 30  # the monotonic clock is the real one
    assert abs(time.time() - real_wall) < 30  # and ours never moved


# ------------------------------------------------------------------------------------ gRPC


def test_grpc_health_server() -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    def check(address: str, service: str) -> str:
        with grpc.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=3)
            except grpc.RpcError as e:
                return str(e.code().name)
            return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    with GrpcHealthServer({"": "SERVING", "app.Orders": "NOT_SERVING"}) as server:
        assert check(server.address, "") == "SERVING"
        assert check(server.address, "app.Orders") == "NOT_SERVING"
        assert check(server.address, "app.Missing") == "NOT_FOUND"
        port = server.port
    assert not listening("127.0.0.1", port)
    with GrpcHealthServer(None) as bare:
        assert check(bare.address, "") == "UNIMPLEMENTED"


# ------------------------------------------------------------------------------------ conntrack

CT_CLIENT = """
import socket, sys
s = socket.create_connection((sys.argv[1], 7), timeout=3)
s.sendall(b"one"); assert s.recv(10) == b"one"
print("ready", flush=True); sys.stdin.readline()
s.settimeout(1.5)
try:
    s.sendall(b"two"); print(s.recv(10) or b"EOF")
except OSError as e:
    print(type(e).__name__)
"""


@pytest.mark.parametrize(
    ("action", "loose", "seen"),
    [("drop", False, "TimeoutError"), ("reset", False, "ConnectionResetError"),
     ("drop", True, "b'two'")],
)  # fmt: skip
def test_conntrack_expiry_through_a_stateful_router(action: str, loose: bool, seen: str) -> None:
    with ConntrackPath(invalid_action=action, loose=loose) as path:
        client = subprocess.Popen(
            ["ip", "netns", "exec", path.client, sys.executable, "-c", CT_CLIENT, SERVER_IP],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert client.stdout is not None and client.stdin is not None
            assert client.stdout.readline().strip() == "ready"
            assert "ESTABLISHED" in path.entries()
            path.expire()
            assert "ESTABLISHED" not in path.entries()
            client.stdin.write("go\n")
            client.stdin.flush()
            assert client.stdout.readline().strip() == seen
        finally:
            client.kill()
            client.communicate(timeout=5)
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert path.client not in namespaces
