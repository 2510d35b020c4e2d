"""TLS deployment faults against real servers (issues 11 and 15): Debian's nginx and HAProxy
with the certificate sets of ``nplab.realservers.pki``, a grpcio server with mutual TLS.

Each test asserts the exact code and the evidence that backs it. The servers start once per
module (one nginx with every site, one HAProxy with every bind).
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import re
import shutil
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from netprobe import diagnose
from netprobe.report import Report
from netprobe.steps import ApplicationStep, TlsStep
from nplab.dbservers import Postgres, _require_pg
from nplab.realservers._base import LoopbackNamespace
from nplab.realservers.faketime import run_shifted
from nplab.realservers.haproxy import HAProxy
from nplab.realservers.nginx import Nginx, static
from nplab.realservers.pki import Pki, TlsFiles
from nplab.require import require, require_root

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parent.parent
NETPROBE = str(ROOT / ".venv" / "bin" / "netprobe")

NOW = datetime.datetime.now(datetime.UTC)
DAY = datetime.timedelta(days=1)
#: Debian's nginx 1.22 speaks TLS 1.3 only when listed (its default before 1.23.4).
MODERN = "TLSv1.2 TLSv1.3"
FAST: dict[str, Any] = {"icmp": False, "timeout": 8.0, "read_timeout": 2.0}


@dataclass
class Certs:
    """Every certificate set of the module, under one root (and a foreign CA)."""

    pki: Pki
    other: Pki
    full: TlsFiles
    client: TlsFiles
    foreign_client: TlsFiles
    expired_client: TlsFiles
    leaf_only: TlsFiles
    leaf_only_no_aia: TlsFiles
    misordered: TlsFiles
    with_root: TlsFiles
    expiring_inter: TlsFiles
    sni_default: TlsFiles
    sni_a: TlsFiles
    expired: TlsFiles
    inter_pem: Path

    @property
    def ca(self) -> str:
        return str(self.pki.ca_file)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    tmp = tmp_path_factory.mktemp("deploy")
    pki = Pki(tmp / "pki")
    other = Pki(tmp / "other", name="another CA")
    inter = pki.intermediate("nplab intermediate")
    inter2 = pki.intermediate("nplab intermediate 2", issuer=inter)
    soon = pki.intermediate("nplab intermediate expiring", not_after=NOW + 5 * DAY)
    aia = "http://pki.lab.test/nplab-intermediate.crt"
    inter_pem = tmp / "intermediate-only.pem"
    inter_pem.write_bytes(inter.cert_pem)
    return Certs(
        pki=pki,
        other=other,
        inter_pem=inter_pem,
        full=pki.server("full", "localhost", "127.0.0.1", issuer=inter),
        leaf_only=pki.write(
            "leaf-only", pki.leaf("localhost", "127.0.0.1", issuer=inter, ca_issuers=aia)
        ),
        leaf_only_no_aia=pki.write("leaf-only-bare", pki.leaf("localhost", issuer=inter)),
        # The right order is leaf, inter2, inter; this one sends leaf, inter, inter2.
        misordered=pki.write("misordered", pki.leaf("localhost", issuer=inter2), [inter, inter2]),
        with_root=pki.write("with-root", pki.leaf("localhost", issuer=inter), [inter, pki.root]),
        expiring_inter=pki.server("expiring", "localhost", issuer=soon),
        sni_default=pki.server("sni-default", "default.lab.test", issuer=inter),
        sni_a=pki.server("sni-a", "a.lab.test", issuer=inter),
        expired=pki.server(
            "expired", "localhost", issuer=inter, not_before=NOW - 30 * DAY, not_after=NOW - DAY
        ),
        client=pki.write("client", pki.leaf("netprobe client", client=True)),
        foreign_client=other.write("foreign", other.leaf("foreign client", client=True)),
        expired_client=pki.write(
            "expired-client",
            pki.leaf("old client", client=True, not_before=NOW - 30 * DAY, not_after=NOW - 2 * DAY),
        ),
    )


@pytest.fixture(scope="module")
def nginx(certs: Certs) -> Iterator[Nginx]:
    web = Nginx()
    web.site("mtls", static("mutual"), tls=certs.full, client_ca=certs.ca, protocols=MODERN)
    web.site("mtls12", static("mutual"), tls=certs.full, client_ca=certs.ca, protocols="TLSv1.2")
    web.site("full", static("secure"), tls=certs.full, protocols=MODERN)
    web.site("tls10", static("old"), tls=certs.full, protocols="TLSv1",
             ciphers="DEFAULT:@SECLEVEL=0")  # fmt: skip
    web.site("tls13", static("new"), tls=certs.full, protocols="TLSv1.3")
    chains = (
        "leaf_only",
        "leaf_only_no_aia",
        "misordered",
        "with_root",
        "expiring_inter",
        "expired",
    )
    for label in chains:
        web.site(label, static(label), tls=getattr(certs, label), protocols=MODERN)
    # A TLS 1.2 server with one SHA-1 suite, which Python's default cipher list leaves out.
    web.site("sha1", static("old suite"), tls=certs.full, protocols="TLSv1.2",
             ciphers="ECDHE-ECDSA-AES128-SHA")  # fmt: skip
    with web:
        yield web


@pytest.fixture(scope="module")
def haproxy(certs: Certs) -> Iterator[HAProxy]:
    lb = HAProxy()
    answer = ["http-request return status 200 content-type text/plain string ok"]
    lb.listen("mtls13", mode="http", servers=[], tls=certs.full, client_ca=certs.ca, extra=answer)
    lb.listen("mtls12", mode="http", servers=[], tls=certs.full, client_ca=certs.ca,
              tls_version="TLSv1.2", extra=answer)  # fmt: skip
    lb.listen("tls", mode="http", servers=[], tls=certs.full, extra=answer)
    with lb:
        yield lb


def code(report: Report) -> str | None:
    return report.fault.code if report.fault else None


def tls_of(report: Report) -> TlsStep:
    step = report.step(TlsStep)
    assert step is not None, report
    return step


def url(scheme: str, port: int, host: str = "localhost") -> str:
    return f"{scheme}://{host}:{port}" + ("/" if scheme.startswith("http") else "")


def client(certs: Certs, files: TlsFiles) -> dict[str, Any]:
    return {"client_cert": str(files.chain), "client_key": str(files.key)}


# -- tls.client_cert_required ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("site", ["mtls", "mtls12"])
async def test_nginx_mtls_without_a_certificate(site: str, nginx: Nginx, certs: Certs) -> None:
    """nginx completes the handshake, then answers 400 'No required SSL certificate was
    sent' (it was http.client_error, 'check method, path and headers')."""
    report = await diagnose(f"https://localhost:{nginx.port_of(site)}/", ca_file=certs.ca, **FAST)
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    assert "none was sent" in report.fault.summary
    assert "No required SSL certificate was sent" in report.fault.summary
    assert "--client-cert" in report.fault.hints[0]
    tls = tls_of(report)
    assert tls.status == "ok" and tls.client_cert_requested is True
    assert tls.client_cert_sent is False
    app = report.step(ApplicationStep)
    assert app is not None and app.http is not None and app.http.status == 400


@pytest.mark.anyio
async def test_nginx_mtls_with_a_certificate_of_another_ca(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(
        f"https://localhost:{nginx.port_of('mtls')}/",
        ca_file=certs.ca,
        **client(certs, certs.foreign_client),
        **FAST,
    )
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    summary = report.fault.summary
    assert "did not accept the one sent" in summary and "The SSL certificate error" in summary
    assert "foreign client" in summary and "another CA" in summary  # which, and its issuer
    assert tls_of(report).client_cert_sent is True


@pytest.mark.anyio
async def test_nginx_mtls_with_an_expired_certificate(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(
        f"https://localhost:{nginx.port_of('mtls')}/",
        ca_file=certs.ca,
        **client(certs, certs.expired_client),
        **FAST,
    )
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    assert "it expired 2 days ago" in report.fault.summary


@pytest.mark.anyio
async def test_nginx_mtls_with_the_right_certificate_is_healthy(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(
        f"https://localhost:{nginx.port_of('mtls')}/",
        ca_file=certs.ca,
        **client(certs, certs.client),
        **FAST,
    )
    assert report.ok, report.fault
    assert tls_of(report).client_cert_sent is True


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("listen", "scheme", "alert", "version"),
    [
        ("mtls13", "https", "certificate_required", "TLSv1.3"),
        ("mtls13", "tls", "certificate_required", "TLSv1.3"),
        ("mtls12", "https", "handshake_failure", "TLSv1.2"),
        ("mtls12", "tls", "handshake_failure", "TLSv1.2"),
    ],
)
async def test_haproxy_verify_required_without_a_certificate(
    listen: str, scheme: str, alert: str, version: str, haproxy: HAProxy, certs: Certs
) -> None:
    """TLS 1.3: the certificate_required alert comes on the first read after the handshake
    (for tls://, which reads nothing, netprobe waits for it); TLS 1.2: a bare
    handshake_failure, told apart by the CertificateRequest seen in the handshake."""
    report = await diagnose(url(scheme, haproxy.port_of(listen)), ca_file=certs.ca, **FAST)
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    assert "none was sent" in report.fault.summary and alert in report.fault.summary
    tls = tls_of(report)
    assert tls.client_cert_requested is True and tls.client_cert_sent is False
    assert tls.version == version or tls.version is None


@pytest.mark.anyio
@pytest.mark.parametrize(("listen", "scheme"), [("mtls13", "https"), ("mtls13", "tls"),
                                                ("mtls12", "https")])  # fmt: skip
async def test_haproxy_verify_required_with_a_certificate_of_another_ca(
    listen: str, scheme: str, haproxy: HAProxy, certs: Certs
) -> None:
    report = await diagnose(
        url(scheme, haproxy.port_of(listen)),
        ca_file=certs.ca,
        **client(certs, certs.foreign_client),
        **FAST,
    )
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    summary = report.fault.summary
    assert "did not accept the one sent" in summary
    assert "the server does not trust the CA that issued it" in summary
    assert "unknown_ca" in summary


@pytest.mark.anyio
@pytest.mark.parametrize("listen", ["mtls13", "mtls12"])
async def test_haproxy_verify_required_with_the_right_certificate(
    listen: str, haproxy: HAProxy, certs: Certs
) -> None:
    for scheme in ("https", "tls"):
        report = await diagnose(
            url(scheme, haproxy.port_of(listen)),
            ca_file=certs.ca,
            **client(certs, certs.client),
            **FAST,
        )
        assert report.ok, (scheme, report.fault)


@pytest.fixture(scope="module")
def grpc_mtls(certs: Certs) -> Iterator[int]:
    """grpcio with mutual TLS (require_client_auth): it closes after the handshake, no alert."""
    require(importlib.util.find_spec("grpc") is not None, "needs grpcio (the dev extra)")
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    creds = grpc.ssl_server_credentials(
        [(certs.full.key.read_bytes(), certs.full.chain.read_bytes())],
        root_certificates=certs.pki.ca_file.read_bytes(),
        require_client_auth=True,
    )
    port: int = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    try:
        yield port
    finally:
        server.stop(None).wait(5)


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["https", "tls"])
async def test_grpcio_mtls_closes_without_an_alert(
    scheme: str, grpc_mtls: int, certs: Certs
) -> None:
    """The weakest form: no alert, no answer, only a close right after a handshake in which
    the server asked for a certificate and none was sent. Said, and said to be indirect."""
    report = await diagnose(url(scheme, grpc_mtls), ca_file=certs.ca, **FAST)
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    assert "none was sent" in report.fault.summary
    assert "the evidence is indirect" in report.fault.summary


@pytest.mark.anyio
async def test_a_close_after_a_certificate_was_sent_is_not_blamed_on_it(
    grpc_mtls: int, certs: Certs
) -> None:
    """With the right certificate grpcio still closes an HTTP/1.1 request (it speaks gRPC
    over HTTP/2): nothing says the certificate was refused."""
    report = await diagnose(
        url("https", grpc_mtls), ca_file=certs.ca, **client(certs, certs.client), **FAST
    )
    assert code(report) == "l7.connection_closed", report.fault
    assert tls_of(report).client_cert_sent is True


# -- http.tls_required ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_plain_http_to_nginx_tls_port(nginx: Nginx, certs: Certs) -> None:
    """nginx answers 400 'The plain HTTP request was sent to HTTPS port' (it was
    http.client_error, 'check the method, path and headers')."""
    port = nginx.port_of("full")
    report = await diagnose(f"http://localhost:{port}/health", **FAST)
    assert code(report) == "http.tls_required", report.fault
    assert report.fault is not None
    assert f"Use https://localhost:{port}/health" in report.fault.summary
    assert "The plain HTTP request was sent to HTTPS port" in report.fault.summary


@pytest.mark.anyio
async def test_plain_http_to_haproxy_tls_bind(haproxy: HAProxy) -> None:
    """HAProxy closes a plain request with 0 bytes; a ClientHello on a fresh connection is
    answered with a ServerHello (it was l7.connection_closed, 'the service crashed')."""
    port = haproxy.port_of("tls")
    report = await diagnose(f"http://127.0.0.1:{port}/", **FAST)
    assert code(report) == "http.tls_required", report.fault
    assert report.fault is not None
    assert "closed the connection after the plain request without sending a byte" in (
        report.fault.summary
    )
    assert "ServerHello (TLSv1.3)" in report.fault.summary
    app = report.step(ApplicationStep)
    assert app is not None and app.http is not None
    hello = app.http.tls_follow_up
    assert hello is not None and hello.outcome == "ok" and hello.purpose == "tls_required"


@pytest.mark.anyio
async def test_plain_http_to_a_python_ssl_server(certs: Certs) -> None:
    from netprobe.testing import CertBook, L7Server

    with CertBook() as book, L7Server("tls", ssl_context=book.server_context()) as server:
        report = await diagnose(f"http://127.0.0.1:{server.port}/", **FAST)
    assert code(report) == "http.tls_required", report.fault


@pytest.mark.anyio
async def test_a_plain_server_that_closes_is_not_called_tls(certs: Certs) -> None:
    """The control: a plain HTTP server that closes without answering does not answer a
    ClientHello either; the verdict stays l7.connection_closed."""
    from netprobe.testing import L7Server

    with L7Server("http") as server:
        report = await diagnose(f"http://127.0.0.1:{server.port}/close", **FAST)
    assert code(report) == "l7.connection_closed", report.fault
    app = report.step(ApplicationStep)
    assert app is not None and app.http is not None and app.http.tls_follow_up is not None
    assert app.http.tls_follow_up.outcome != "ok"


# -- tls.protocol_version, no shared cipher ---------------------------------------------------


@pytest.mark.anyio
async def test_a_tls10_only_server_names_both_ranges(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(url("https", nginx.port_of("tls10")), ca_file=certs.ca, **FAST)
    assert code(report) == "tls.protocol_version", report.fault
    assert report.fault is not None
    summary = report.fault.summary
    assert "the server speaks only TLS 1.0" in summary, summary
    assert "this client allows TLS 1.2-1.3" in summary, summary
    ranges = [e.data for e in report.fault.evidence if "server_versions" in e.data]
    assert ranges and ranges[0]["server_versions"] == "TLSv1"
    versions = {f.offered: f.outcome for f in tls_of(report).follow_ups}
    assert versions == {"TLSv1 only": "ok", "TLSv1.1 only": "alert", "TLSv1.2 only": "alert",
                        "TLSv1.3 only": "alert"}  # fmt: skip


@pytest.mark.anyio
async def test_a_tls13_only_server_and_a_client_limited_to_tls12(
    nginx: Nginx, certs: Certs
) -> None:
    context = ssl.create_default_context(cafile=certs.ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    report = await diagnose(url("https", nginx.port_of("tls13")), ssl_context=context, **FAST)
    assert code(report) == "tls.protocol_version", report.fault
    assert report.fault is not None
    assert "the server speaks only TLS 1.3; this client allows only TLS 1.2" in (
        report.fault.summary
    )
    assert "maximum_version" in report.fault.hints[0]


@pytest.mark.anyio
async def test_no_shared_cipher_is_said_as_such(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(url("https", nginx.port_of("sha1")), ca_file=certs.ca, **FAST)
    assert code(report) == "tls.handshake_failed", report.fault
    assert report.fault is not None
    assert "no cipher suite in common" in report.fault.summary
    assert "ECDHE-ECDSA-AES128-SHA (TLSv1.2)" in report.fault.summary


# -- Chains: incomplete, misordered, root sent, an intermediate expiring ----------------------


@pytest.mark.anyio
async def test_a_leaf_only_chain_is_incomplete(nginx: Nginx, certs: Certs) -> None:
    """The server sends its leaf alone; the leaf's AIA names its issuer's certificate (as every
    public CA's does): tls.incomplete_chain, not 'untrusted'."""
    report = await diagnose(url("https", nginx.port_of("leaf_only")), ca_file=certs.ca, **FAST)
    assert code(report) == "tls.incomplete_chain", report.fault
    assert report.fault is not None
    summary = report.fault.summary
    assert "sends only its own certificate" in summary
    assert "CN=nplab intermediate" in summary and "browsers fetch" in summary
    assert "http://pki.lab.test/nplab-intermediate.crt" in summary
    assert "fullchain.pem" in report.fault.hints[0]
    assert len(tls_of(report).chain) == 1


@pytest.mark.anyio
async def test_a_leaf_only_chain_found_in_the_stores_intermediates(
    nginx: Nginx, certs: Certs
) -> None:
    """No AIA, but this host's store holds the issuer as an intermediate (not an anchor)."""
    report = await diagnose(
        url("https", nginx.port_of("leaf_only_no_aia")), ca_file=str(certs.inter_pem), **FAST
    )
    assert code(report) == "tls.incomplete_chain", report.fault
    stored = tls_of(report).issuer_in_store
    assert stored is not None and "nplab intermediate" in stored.subject


@pytest.mark.anyio
async def test_an_unknown_issuer_without_a_hint_stays_untrusted(nginx: Nginx, certs: Certs) -> None:
    """No AIA, nothing of that name here: an unknown CA and a missing intermediate look the
    same, and the report says both."""
    report = await diagnose(
        url("https", nginx.port_of("leaf_only_no_aia")), ca_file=certs.ca, **FAST
    )
    assert code(report) == "tls.cert_untrusted", report.fault
    assert report.fault is not None and "incomplete chain" in report.fault.summary


@pytest.mark.anyio
async def test_a_misordered_chain_verifies_and_warns(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(url("https", nginx.port_of("misordered")), ca_file=certs.ca, **FAST)
    assert report.ok, report.fault
    assert report.warning_codes() == ["tls.chain_misordered"]
    message = report.warnings[0].message
    assert "chain[1] should be the issuer of chain[0] (CN=nplab intermediate 2" in message
    assert "comes at chain[2]" in message
    assert (
        "As presented: [0] localhost (issued by nplab intermediate 2); [1] nplab intermediate "
        "(issued by netprobe nplab root); [2] nplab intermediate 2 (issued by nplab "
        "intermediate)"
    ) in message


@pytest.mark.anyio
async def test_a_root_sent_in_the_chain_warns(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(url("https", nginx.port_of("with_root")), ca_file=certs.ca, **FAST)
    assert report.ok, report.fault
    assert report.warning_codes() == ["tls.root_sent"]
    assert "root CA (netprobe nplab root) as chain[2]" in report.warnings[0].message


@pytest.mark.anyio
async def test_an_intermediate_expiring_soon_is_named(nginx: Nginx, certs: Certs) -> None:
    report = await diagnose(url("https", nginx.port_of("expiring_inter")), ca_file=certs.ca, **FAST)
    assert report.ok, report.fault
    assert report.warning_codes() == ["tls.cert_expiring_soon"]
    message = report.warnings[0].message
    assert message.startswith("The intermediate CA (chain[1]) nplab intermediate expiring "), (
        message
    )
    assert "expires in 5 days" in message or "expires in 4 days" in message


# -- SNI -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sni_lab(certs: Certs) -> Iterator[tuple[LoopbackNamespace, Nginx]]:
    """A namespace whose hosts file knows 127.0.0.1 as a.lab.test, and nginx in it with two
    SNI virtual hosts (default.lab.test as default_server, a.lab.test), and a port that
    refuses handshakes without a known name (ssl_reject_handshake)."""
    require_root()  # a network namespace
    ns = LoopbackNamespace("t", hosts="127.0.0.1 localhost\n127.0.0.1 a.lab.test\n")
    with ns:
        web = Nginx(netns=ns.name)
        web.site("default", static("default"), tls=certs.sni_default, default=True,
                 server_name="default.lab.test", protocols=MODERN)  # fmt: skip
        web.site("a", static("a"), tls=certs.sni_a, server_name="a.lab.test",
                 same_port_as="default", protocols=MODERN)  # fmt: skip
        web.site("strict", static("none"), tls=certs.sni_default, default=True,
                 protocols=MODERN, extra=["ssl_reject_handshake on;"])  # fmt: skip
        web.site("strict_a", static("a"), tls=certs.sni_a, server_name="a.lab.test",
                 same_port_as="strict", protocols=MODERN)  # fmt: skip
        with web:
            yield ns, web


def run_in(ns: LoopbackNamespace, *args: str) -> dict[str, Any]:
    out = ns.run([NETPROBE, "diagnose", *args, "--json", "--no-icmp"], timeout=60)
    assert out.stdout, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_an_ip_target_gets_the_default_certificate_of_an_sni_server(
    sni_lab: tuple[LoopbackNamespace, Nginx], certs: Certs
) -> None:
    ns, web = sni_lab
    port = web.port_of("default")
    report = run_in(ns, f"https://127.0.0.1:{port}/", "--ca-file", certs.ca)
    fault = report["fault"]
    assert fault["code"] == "tls.hostname_mismatch", fault
    assert "The server chooses its certificate by SNI" in fault["summary"]
    assert (
        "with SNI a.lab.test the server presents certificate for a.lab.test" in (fault["summary"])
    )
    assert fault["hints"] == [f"Connect by name: https://a.lab.test:{port}/."]
    by_name = run_in(ns, f"https://a.lab.test:{port}/", "--ca-file", certs.ca)
    assert by_name["ok"], by_name["fault"]


def test_a_server_that_requires_sni(sni_lab: tuple[LoopbackNamespace, Nginx], certs: Certs) -> None:
    ns, web = sni_lab
    port = web.port_of("strict")
    report = run_in(ns, f"https://127.0.0.1:{port}/", "--ca-file", certs.ca)
    fault = report["fault"]
    assert fault["code"] == "tls.handshake_failed", fault
    assert "requires a server name (SNI)" in fault["summary"]
    assert "With SNI a.lab.test the handshake completes" in fault["summary"]


# -- This host's clock ----------------------------------------------------------------------------


def shifted(shift: str, *args: str) -> dict[str, Any]:
    """The netprobe CLI with its wall clock shifted by libfaketime (only that process)."""
    out = run_shifted([NETPROBE, "diagnose", *args, "--json", "--no-icmp"], shift)
    assert out.stdout, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@pytest.mark.parametrize(("shift", "way"), [("+400d", "ahead"), ("-2d", "behind")])
def test_a_wrong_clock_here_is_named_by_the_servers_date(
    shift: str, way: str, nginx: Nginx, certs: Certs
) -> None:
    """The certificate reads expired (+400 days) or not yet valid (-2 days) only by this
    host's clock: nginx's Date header, read over an unverified follow-up handshake, shows it."""
    report = shifted(shift, url("https", nginx.port_of("full")), "--ca-file", certs.ca)
    fault = report["fault"]
    assert fault["code"] == "local.clock_skew", fault
    assert fault["layer"] == "local"
    assert "This host's clock is wrong, not the certificate" in fault["summary"]
    assert "the server's clock (its HTTP Date header)" in fault["summary"]
    clock = fault["evidence"][0]["data"]
    assert clock["reference"] == "server Date header"
    expected = 400 * 86400 if shift == "+400d" else -2 * 86400
    assert abs(clock["skew_s"] - expected) < 120, clock
    here = datetime.datetime.fromisoformat(clock["local_time"])
    assert abs((here - NOW).total_seconds() - expected) < 3600


def test_a_clock_behind_without_http_is_read_from_a_fresh_chain(nginx: Nginx, certs: Certs) -> None:
    """tls:// has no Date header: every certificate of the chain starts after this host's
    now (the lab's chain was issued yesterday, the clock reads two days ago)."""
    report = shifted("-2d", url("tls", nginx.port_of("full")), "--ca-file", certs.ca)
    fault = report["fault"]
    assert fault["code"] == "local.clock_skew", fault
    assert re.search(r"at least (24 hours|1 day) behind", fault["summary"]), fault["summary"]
    assert "No server clock was read" in fault["summary"]


@pytest.mark.parametrize(
    ("shift", "expected"),
    [("+400d", "tls.cert_expired"), ("+10m", None)],
)
def test_without_proof_the_certificate_is_blamed_and_a_small_skew_passes(
    shift: str, expected: str | None, nginx: Nginx, certs: Certs
) -> None:
    """+400 days on tls:// (no Date to compare with) stays tls.cert_expired (with the hint to
    check the clock); ten minutes ahead is healthy."""
    report = shifted(shift, url("tls", nginx.port_of("full")), "--ca-file", certs.ca)
    assert (report["fault"] or {}).get("code") == expected, report["fault"]


@pytest.mark.anyio
async def test_a_certificate_really_expired_is_not_called_a_clock_problem(
    nginx: Nginx, certs: Certs
) -> None:
    """The control of the Date rule: the server's clock agrees with this host's."""
    report = await diagnose(url("https", nginx.port_of("expired")), ca_file=certs.ca, **FAST)
    assert code(report) == "tls.cert_expired", report.fault
    clock = [f for f in tls_of(report).follow_ups if f.purpose == "server_clock"]
    assert clock and clock[0].server_date is not None  # asked, and it agreed


# -- PostgreSQL with clientcert=verify-full ---------------------------------------------------


@pytest.fixture(scope="module")
def postgres_mtls(certs: Certs) -> Iterator[Postgres]:
    """PostgreSQL whose pg_hba.conf line says ``clientcert=verify-full`` and whose
    ``ssl_ca_file`` is the module's CA: it asks for a client certificate in the handshake
    (verify optional) and refuses the login without one (28000)."""
    _require_pg()
    server = Postgres()
    try:
        server.start()
        data = server.dir / "data"
        shutil.copy(certs.pki.ca_file, data / "client-ca.pem")
        shutil.chown(data / "client-ca.pem", "postgres", "postgres")
        (data / "pg_hba.conf").write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full\n"
        )
        server.psql(f"ALTER SYSTEM SET ssl_ca_file = '{data / 'client-ca.pem'}'")
        server.psql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while "ssl_ca_file" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


@pytest.mark.anyio
async def test_postgres_clientcert_verify_full_without_a_certificate(
    postgres_mtls: Postgres,
) -> None:
    """It was db.access_denied ('check pg_hba.conf for this client address')."""
    target = f"postgresql://127.0.0.1:{postgres_mtls.port}/postgres?sslmode=verify-ca"
    report = await diagnose(target, ca_file=postgres_mtls.ca_file, **FAST)
    assert code(report) == "tls.client_cert_required", report.fault
    assert report.fault is not None
    assert "none was sent" in report.fault.summary
    assert "connection requires a valid client certificate" in report.fault.summary
    tls = tls_of(report)
    assert tls.client_cert_requested is True and tls.client_cert_sent is False


@pytest.mark.anyio
async def test_postgres_clientcert_verify_full_with_a_certificate(
    postgres_mtls: Postgres, certs: Certs
) -> None:
    target = f"postgresql://127.0.0.1:{postgres_mtls.port}/postgres?sslmode=verify-ca"
    report = await diagnose(
        target, ca_file=postgres_mtls.ca_file, **client(certs, certs.client), **FAST
    )
    assert report.ok, report.fault
