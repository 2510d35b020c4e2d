"""The middle of the path: two routers between the lab's client and a server, real nftables.

``build_path(lab)`` hangs a routed path off the lab's client namespace (so the catalog, which
runs the CLI there, reaches it too)::

    client (lab.client)  --  r1 (h)  --  r2 (m)  --  server (g)
    198.18.64.2          .64.1 .65.1   .65.2 .66.1   198.18.66.x
    2001:2:0:64::2    ...                         2001:2:0:66::x

The client gets a route to 198.18.64.0/18 (and 2001:2::/48) via r1 and still no default
route; r1 and r2 forward; nothing else routes anywhere. IPv6 uses 2001:2::/48, the IPv6
benchmarking prefix (RFC 5180, the twin of 198.18.0.0/15), inside the namespaces made here;
the IPv4 addresses are in 198.18.64.0/18, unused by the rest of the lab.
Namespaces are ``nplab<pid>h`` (r1), ``m`` (r2), ``g`` (server) and ``p`` (the MTU black
hole's server); the kernel's ICMP rate limits are off on the routers, so every probe gets its
answer when diagnoses run at once.

=====================  ======================================================================
destination            fault
=====================  ======================================================================
198.18.66.10 / ::10    r2 drops ``tcp dport 80`` in its forward chain (a drop at hop 2)
198.18.66.11 / ::11    r1 rejects everything to it ``with icmp(v6) admin-prohibited`` (hop 1)
198.18.66.12           healthy: the server's port 80 answers
198.18.66.13           r2 drops the first SYN of every flow (an nftables set of the source
                       address and port, 60 s): the retransmitted SYN gets through
198.18.67.10           the MTU black hole: a second server (``nplab<pid>p``) behind r2, whose
                       routes to and from it have ``mtu lock 1280`` while every interface
                       says 1500, and r2's output chain drops ICMP "fragmentation needed".
                       Port 80: plain HTTP (``/big``: 64 KiB), port 443: TLS with a ~3 KB
                       self-signed RSA-4096 certificate (its flight is larger than 1280)
=====================  ======================================================================
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nplab.topology import HERE, PREFIX, PY, Lab, sh

__all__ = [
    "ADMIN_PROHIBITED",
    "DROP_AT_HOP2",
    "FIRST_SYN_DROPPED",
    "HEALTHY",
    "MTU_BLACKHOLE",
    "PATH_MTU",
    "PathLab",
    "build_path",
]

R1_NEAR, R1_FAR = "198.18.64.1", "198.18.65.1"
R2_NEAR, R2_FAR = "198.18.65.2", "198.18.66.1"
CLIENT = "198.18.64.2"
DROP_AT_HOP2 = ("198.18.66.10", "2001:2:0:66::10")
ADMIN_PROHIBITED = ("198.18.66.11", "2001:2:0:66::11")
HEALTHY = "198.18.66.12"
FIRST_SYN_DROPPED = "198.18.66.13"
MTU_BLACKHOLE = "198.18.67.10"
#: The MTU of the routes to and from the black-hole server (the interfaces say 1500).
PATH_MTU = 1280

R1_RULES = """
table inet nppath {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.66.11 reject with icmp type admin-prohibited
    ip6 daddr 2001:2:0:66::11 reject with icmpv6 type admin-prohibited
  }
}
"""
R2_RULES = """
table inet nppath {
  set syn_seen {
    type ipv4_addr . inet_service; flags timeout;
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.66.13 tcp flags syn ip saddr . tcp sport @syn_seen accept
    ip daddr 198.18.66.13 tcp flags syn add @syn_seen { ip saddr . tcp sport timeout 60s } drop
    ip daddr 198.18.66.10 tcp dport 80 drop
    ip6 daddr 2001:2:0:66::10 tcp dport 80 drop
  }
  chain output {
    type filter hook output priority 0; policy accept;
    icmp type destination-unreachable icmp code frag-needed drop
    icmpv6 type packet-too-big drop
  }
}
"""


def _v6(v4: str) -> str:
    """The lab's IPv6 twin of an IPv4 address: 198.18.65.2 -> 2001:2:0:65::2."""
    _, _, c, d = v4.split(".")
    return f"2001:2:0:{c}::{d}"


@dataclass
class PathLab:
    """The routed path; its namespaces and the server processes are removed by ``build_path``."""

    client: str
    r1: str
    r2: str
    server: str
    mtu_server: str
    r1_address: str = R1_NEAR
    r2_address: str = R2_NEAR


def _nft(ns: str, rules: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "nft", "-f", "-"],
        input=rules,
        text=True,
        check=True,
        capture_output=True,
        timeout=30,
    )


def _link(tag: str, a: str, a_addr: str, b: str, b_addr: str, plen: int = 24) -> None:
    """A veth pair between namespaces a and b, with an IPv4 address and its IPv6 twin each."""
    va, vb = f"pa{tag}", f"pb{tag}"
    sh("ip", "link", "add", va, "netns", a, "type", "veth", "peer", "name", vb, "netns", b)
    for ns, dev, addr in ((a, va, a_addr), (b, vb, b_addr)):
        sh("ip", "-n", ns, "addr", "add", f"{addr}/{plen}", "dev", dev)
        sh("ip", "-n", ns, "addr", "add", f"{_v6(addr)}/64", "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "up")


@contextlib.contextmanager
def build_path(lab: Lab) -> Iterator[PathLab]:
    """Build the routed path off ``lab``'s client namespace; everything is removed on exit."""
    pid = os.getpid()
    names = [f"{PREFIX}{pid}{x}" for x in "hmgp"]
    r1, r2, srv, mtu = names
    c = lab.client
    tag = pid % 10000
    servers: list[subprocess.Popen[str]] = []
    tmp = tempfile.TemporaryDirectory(prefix="nplab-path-")
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        _link(f"c{tag}", c, CLIENT, r1, R1_NEAR)
        _link(f"r{tag}", r1, R1_FAR, r2, R2_NEAR)
        _link(f"s{tag}", r2, R2_FAR, srv, "198.18.66.2")
        _link(f"m{tag}", r2, "198.18.67.1", mtu, "198.18.67.2")
        sh("ip", "-n", mtu, "addr", "add", f"{MTU_BLACKHOLE}/24", "dev", f"pbm{tag}")
        dev = f"pbs{tag}"
        for host in (DROP_AT_HOP2[0], ADMIN_PROHIBITED[0], HEALTHY, FIRST_SYN_DROPPED):
            sh("ip", "-n", srv, "addr", "add", f"{host}/24", "dev", dev)
        for host in (DROP_AT_HOP2[1], ADMIN_PROHIBITED[1]):
            sh("ip", "-n", srv, "addr", "add", f"{host}/64", "dev", dev, "nodad")
        # Routes: only the lab's own prefixes, never a default route.
        routes = {
            c: [("198.18.64.0/18", R1_NEAR), ("2001:2::/48", _v6(R1_NEAR))],
            r1: [
                ("198.18.66.0/24", R2_NEAR),
                ("198.18.67.0/24", R2_NEAR),
                ("2001:2:0:66::/64", _v6(R2_NEAR)),
            ],
            mtu: [("198.18.64.0/18", "198.18.67.1")],
            r2: [("198.18.64.0/24", R1_FAR), ("2001:2:0:64::/64", _v6(R1_FAR))],
            srv: [("198.18.64.0/18", R2_FAR), ("2001:2::/48", _v6(R2_FAR))],
        }
        for ns, table in routes.items():
            for prefix, via in table:
                sh("ip", "-n", ns, "route", "add", prefix, "via", via)
        for ns in (r1, r2):
            sh("sysctl", "-qw", "net.ipv4.ip_forward=1", ns=ns)
            sh("sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", ns=ns)
            sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", ns=ns)
            sh("sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=100000", ns=ns)
            sh("sysctl", "-qw", "net.ipv6.icmp.ratelimit=0", ns=ns)
        sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", ns=srv)
        # The black hole: r2 forwards at most PATH_MTU bytes to and from the MTU server
        # (``mtu lock``: the forward path uses the route's MTU, not the device's), and the
        # ICMP "fragmentation needed" it then owes the sender is dropped on its way out.
        sh(
            "ip", "-n", r2, "route", "replace", "198.18.67.0/24", "dev", f"pam{tag}",
            "proto", "kernel", "scope", "link", "src", "198.18.67.1", "mtu", "lock",
            str(PATH_MTU),
        )  # fmt: skip
        sh("ip", "-n", r2, "rule", "add", "from", "198.18.67.0/24", "lookup", "167")
        sh(
            "ip", "-n", r2, "route", "add", "198.18.64.0/24", "via", R1_FAR, "mtu", "lock",
            str(PATH_MTU), "table", "167",
        )  # fmt: skip
        _nft(r1, R1_RULES)
        _nft(r2, R2_RULES)
        cert, key = _big_certificate(Path(tmp.name))
        for ns, kinds in ((srv, ["80:hold"]), (mtu, ["80:http", "443:https"])):
            server = subprocess.Popen(
                ["ip", "netns", "exec", ns, PY, str(HERE / "servers.py"), *kinds],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "LAB_CERT": str(cert), "LAB_KEY": str(key)},
            )
            servers.append(server)
            assert server.stdout is not None
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the path's server in {ns} did not start")
        for family in ("-4", "-6"):
            out = sh("ip", family, "-n", c, "route", "show").stdout
            assert "default" not in out, out
        yield PathLab(client=c, r1=r1, r2=r2, server=srv, mtu_server=mtu)
    finally:
        for server in servers:
            with contextlib.suppress(OSError):
                if server.stdin is not None:
                    server.stdin.close()
            try:
                server.wait(timeout=3)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=3)
            for stream in (server.stdout, server.stderr):
                if stream is not None:
                    stream.close()
        # The client's end of its veth goes with its peer in r1.
        for ns in names:
            sh("ip", "netns", "del", ns, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)
        tmp.cleanup()


def _big_certificate(where: Path) -> tuple[Path, Path]:
    """A self-signed RSA-4096 certificate with 60 names: ~3 KB, so the server's TLS flight
    needs packets larger than the path's MTU."""
    cert, key = where / "big.crt", where / "big.key"
    names = ",".join(f"DNS:service-{i:02d}.mtu-blackhole.lab" for i in range(60))
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:4096", "-nodes", "-days", "30",
         "-subj", "/CN=mtu-blackhole.lab", "-addext", f"subjectAltName={names}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
