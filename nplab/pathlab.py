"""The middle of the path: two routers between the lab's client and a server, real nftables.

``build_path(lab)`` hangs a routed path off the lab's client namespace (so the catalog, which
runs the CLI there, reaches it too)::

    client (lab.client)  --  r1 (h)  --  r2 (m)  --  server (g)
    198.18.64.2          .64.1 .65.1   .65.2 .66.1   198.18.66.x
    fd00:198:18:64::2    ...                         fd00:198:18:66::x

The client gets a route to 198.18.64.0/18 (and the ULA fd00:198:18::/48) via r1 and still
no default route; r1 and r2 forward; nothing else routes anywhere. IPv6 uses the unique-local
prefix fd00:198:18::/48 of the namespaces made here (the IPv4 addresses are in 198.18.64.0/18,
unused by the rest of the lab). Namespaces are ``nplab<pid>h`` (r1), ``m`` (r2) and ``g``
(server); the kernel's ICMP rate limits are off on the routers, so every probe gets its
answer when diagnoses run at once.

=====================  ======================================================================
destination            fault
=====================  ======================================================================
198.18.66.10 / ::10    r2 drops ``tcp dport 80`` in its forward chain (a drop at hop 2)
198.18.66.11 / ::11    r1 rejects everything to it ``with icmp(v6) admin-prohibited`` (hop 1)
198.18.66.12           healthy: the server's port 80 answers
=====================  ======================================================================
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from nplab.topology import HERE, PREFIX, PY, Lab, sh

__all__ = ["ADMIN_PROHIBITED", "DROP_AT_HOP2", "HEALTHY", "Path", "build_path"]

R1_NEAR, R1_FAR = "198.18.64.1", "198.18.65.1"
R2_NEAR, R2_FAR = "198.18.65.2", "198.18.66.1"
CLIENT = "198.18.64.2"
DROP_AT_HOP2 = ("198.18.66.10", "fd00:198:18:66::10")
ADMIN_PROHIBITED = ("198.18.66.11", "fd00:198:18:66::11")
HEALTHY = "198.18.66.12"

R1_RULES = """
table inet nppath {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.66.11 reject with icmp type admin-prohibited
    ip6 daddr fd00:198:18:66::11 reject with icmpv6 type admin-prohibited
  }
}
"""
R2_RULES = """
table inet nppath {
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr 198.18.66.10 tcp dport 80 drop
    ip6 daddr fd00:198:18:66::10 tcp dport 80 drop
  }
}
"""


def _v6(v4: str) -> str:
    """The lab's IPv6 twin of an IPv4 address: 198.18.65.2 -> fd00:198:18:65::2."""
    a, b, c, d = v4.split(".")
    return f"fd00:{a}:{b}:{c}::{d}"


@dataclass
class Path:
    """The routed path; its namespaces and the server process are removed by ``build_path``."""

    client: str
    r1: str
    r2: str
    server: str
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
def build_path(lab: Lab) -> Iterator[Path]:
    """Build the routed path off ``lab``'s client namespace; everything is removed on exit."""
    pid = os.getpid()
    names = [f"{PREFIX}{pid}{x}" for x in "hmg"]
    r1, r2, srv = names
    c = lab.client
    tag = pid % 10000
    server: subprocess.Popen[str] | None = None
    try:
        for ns in names:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        _link(f"c{tag}", c, CLIENT, r1, R1_NEAR)
        _link(f"r{tag}", r1, R1_FAR, r2, R2_NEAR)
        _link(f"s{tag}", r2, R2_FAR, srv, "198.18.66.2")
        dev = f"pbs{tag}"
        for host in (DROP_AT_HOP2[0], ADMIN_PROHIBITED[0], HEALTHY):
            sh("ip", "-n", srv, "addr", "add", f"{host}/24", "dev", dev)
        for host in (DROP_AT_HOP2[1], ADMIN_PROHIBITED[1]):
            sh("ip", "-n", srv, "addr", "add", f"{host}/64", "dev", dev, "nodad")
        # Routes: only the lab's own prefixes, never a default route.
        routes = {
            c: [("198.18.64.0/18", R1_NEAR), ("fd00:198:18::/48", _v6(R1_NEAR))],
            r1: [("198.18.66.0/24", R2_NEAR), ("fd00:198:18:66::/64", _v6(R2_NEAR))],
            r2: [("198.18.64.0/24", R1_FAR), ("fd00:198:18:64::/64", _v6(R1_FAR))],
            srv: [("198.18.64.0/18", R2_FAR), ("fd00:198:18::/48", _v6(R2_FAR))],
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
        _nft(r1, R1_RULES)
        _nft(r2, R2_RULES)
        server = subprocess.Popen(
            ["ip", "netns", "exec", srv, PY, str(HERE / "servers.py"), "80:hold"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("the path's server did not start")
        for family in ("-4", "-6"):
            out = sh("ip", family, "-n", c, "route", "show").stdout
            assert "default" not in out, out
        yield Path(client=c, r1=r1, r2=r2, server=srv)
    finally:
        if server is not None:
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
