"""TLS deployment faults for the fault catalog (issues 11 and 15): real nginx in the lab's
server namespace, with the certificate sets of ``nplab.realservers.pki``.

``tls_scenarios(lab)`` adds ``deploy.lab`` (198.18.0.130) to the server namespace and to the
client's hosts file, starts one nginx bound to that address with a site per fault, and yields
one :class:`Scenario` per code. nginx and the certificates are removed on exit.

=====  ==================================================================================
port   nginx site
=====  ==================================================================================
4441   ``ssl_verify_client on`` (mutual TLS), TLS 1.2-1.3
4442   a valid chain; the catalog sends it plain ``http://`` (nginx's 400 page)
4443   only the leaf, issued by an intermediate; the leaf's AIA names the intermediate
4444   ``ssl_protocols TLSv1; ssl_ciphers DEFAULT:@SECLEVEL=0`` (a TLS 1.0-only server)
4445   TLS 1.2 with one SHA-1 suite, ``ECDHE-ECDSA-AES128-SHA`` (no suite in common)
4446   a valid chain; the CLI runs under libfaketime, 400 days ahead (``local.clock_skew``)
4447   the chain out of order: leaf, intermediate 1, intermediate 2 (leaf's issuer)
4448   the chain with its root CA sent last
=====  ==================================================================================

Namespaces: none of its own (the lab's client and server namespaces).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from nplab.realservers.nginx import Nginx, static
from nplab.realservers.pki import Pki
from nplab.scenario import Scenario
from nplab.topology import Lab

__all__ = ["DEPLOY_ADDR", "DEPLOY_HOST", "PORTS", "tls_scenarios"]

DEPLOY_HOST, DEPLOY_ADDR = "deploy.lab", "198.18.0.130"
PORTS = {
    "mtls": 4441,
    "plain": 4442,
    "leaf_only": 4443,
    "tls10": 4444,
    "sha1": 4445,
    "clock": 4446,
    "misordered": 4447,
    "with_root": 4448,
}
#: The intermediate's URL in the leaf's Authority Information Access (never fetched).
AIA_URL = "http://pki.deploy.lab/nplab-intermediate.crt"
#: How far ahead the clock-skew scenario's CLI runs.
CLOCK_SHIFT = "+400d"
_MODERN = "TLSv1.2 TLSv1.3"  # Debian's nginx 1.22 speaks TLS 1.3 only when listed


@contextlib.contextmanager
def tls_scenarios(lab: Lab) -> Iterator[list[Scenario]]:
    """Start nginx with every site in the lab's server namespace; yield the scenarios."""
    with tempfile.TemporaryDirectory(prefix="nplab-catalog-tls-") as tmp:
        pki = Pki(Path(tmp) / "pki")
        inter = pki.intermediate("nplab intermediate")
        inter2 = pki.intermediate("nplab intermediate 2", issuer=inter)
        full = pki.server("full", DEPLOY_HOST, issuer=inter)
        leaf_only = pki.write("leaf-only", pki.leaf(DEPLOY_HOST, issuer=inter, ca_issuers=AIA_URL))
        misordered = pki.write("misordered", pki.leaf(DEPLOY_HOST, issuer=inter2), [inter, inter2])
        with_root = pki.write("with-root", pki.leaf(DEPLOY_HOST, issuer=inter), [inter, pki.root])
        ca = str(pki.ca_file)
        lab.add_address(DEPLOY_ADDR)
        lab.add_host(DEPLOY_HOST, DEPLOY_ADDR)
        web = Nginx(host=DEPLOY_ADDR, netns=lab.server)
        web.site("mtls", static("mutual"), tls=full, client_ca=ca, protocols=_MODERN)
        web.site("plain", static("ok"), tls=full, protocols=_MODERN)
        web.site("leaf_only", static("ok"), tls=leaf_only, protocols=_MODERN)
        web.site("tls10", static("old"), tls=full, protocols="TLSv1",
                 ciphers="DEFAULT:@SECLEVEL=0")  # fmt: skip
        web.site("sha1", static("old suite"), tls=full, protocols="TLSv1.2",
                 ciphers="ECDHE-ECDSA-AES128-SHA")  # fmt: skip
        web.site("clock", static("ok"), tls=full, protocols=_MODERN)
        web.site("misordered", static("ok"), tls=misordered, protocols=_MODERN)
        web.site("with_root", static("ok"), tls=with_root, protocols=_MODERN)
        for label, port in PORTS.items():
            web.sites[label].port = port  # fixed ports: the catalog's output is stable
        with web:
            yield _scenarios(ca)


def _scenarios(ca: str) -> list[Scenario]:
    ca_args = ("--ca-file", ca)
    nginx = f"nginx on {DEPLOY_ADDR}:{{port}} (`{DEPLOY_HOST}` in the client's hosts file)"

    def https(port: int) -> str:
        return f"https://{DEPLOY_HOST}:{port}/"

    return [
        Scenario(
            "tls.client_cert_required",
            "nginx requires a client certificate; none is sent",
            nginx.format(port=PORTS["mtls"])
            + " with `ssl_verify_client on` and the lab CA as `ssl_client_certificate`: it "
            "completes the handshake (asking for a certificate), then answers `400 No "
            "required SSL certificate was sent`. The client trusts the lab CA and has no "
            "client certificate.",
            https(PORTS["mtls"]),
            ca_args,
        ),
        Scenario(
            "http.tls_required",
            "Plain http:// to nginx's TLS port",
            nginx.format(port=PORTS["plain"])
            + " with `listen ... ssl`; the client sends a plain HTTP request to it.",
            f"http://{DEPLOY_HOST}:{PORTS['plain']}/",
        ),
        Scenario(
            "tls.incomplete_chain",
            "The server sends its certificate without the intermediate",
            nginx.format(port=PORTS["leaf_only"])
            + " whose `ssl_certificate` holds only the leaf (issued by `nplab intermediate`, "
            f"its Authority Information Access naming `{AIA_URL}`); the client trusts the "
            "lab's root CA.",
            https(PORTS["leaf_only"]),
            ca_args,
        ),
        Scenario(
            "tls.protocol_version",
            "A TLS 1.0-only server",
            nginx.format(port=PORTS["tls10"])
            + " with `ssl_protocols TLSv1; ssl_ciphers DEFAULT:@SECLEVEL=0`; the client "
            "allows TLS 1.2-1.3 (Python's default context).",
            https(PORTS["tls10"]),
            ca_args,
        ),
        Scenario(
            "tls.handshake_failed",
            "No cipher suite in common",
            nginx.format(port=PORTS["sha1"])
            + " with `ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES128-SHA` (a SHA-1 "
            "suite, which Python's default cipher list leaves out).",
            https(PORTS["sha1"]),
            ca_args,
        ),
        Scenario(
            "local.clock_skew",
            "This host's clock runs 400 days ahead",
            nginx.format(port=PORTS["clock"])
            + " with a valid chain (the leaf valid for a year). The diagnosing process runs "
            f"under libfaketime (`faketime -f {CLOCK_SHIFT}`: its wall clock only; the "
            "server and the rest of the machine keep the real time).",
            https(PORTS["clock"]),
            ca_args,
            pre={"faketime": CLOCK_SHIFT},
        ),
        Scenario(
            "tls.chain_misordered",
            "The chain is sent out of order",
            nginx.format(port=PORTS["misordered"])
            + " sending leaf, `nplab intermediate`, `nplab intermediate 2`, while the leaf "
            "was issued by `nplab intermediate 2` (which `nplab intermediate` issued).",
            https(PORTS["misordered"]),
            ca_args,
            warning=True,
        ),
        Scenario(
            "tls.root_sent",
            "The root CA is sent in the chain",
            nginx.format(port=PORTS["with_root"])
            + " sending leaf, intermediate and the lab's root CA.",
            https(PORTS["with_root"]),
            ca_args,
            warning=True,
        ),
    ]
