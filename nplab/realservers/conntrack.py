"""A stateful firewall in the middle: client namespace -> router namespace (nftables with
conntrack) -> server namespace, for idle-session faults (issue 11, pool hold).

    client 198.18.230.1/30 --- 198.18.230.2 [router] 198.18.231.1 --- 198.18.231.2/30 server

No namespace has a default route; the client's only route is the server's /30 via the router.
The router forwards with ``ct state established,related accept`` and, for packets conntrack
cannot place, ``invalid_action``: ``"drop"`` (silence, as cloud security groups and most
firewalls do) or ``"reset"`` (``reject with tcp reset``). ``loose=False`` sets
``nf_conntrack_tcp_loose=0`` in the router: a mid-stream segment of a connection whose entry
is gone is then INVALID instead of being picked up again (Linux's default, loose=1, silently
re-creates the entry: the connection survives).

``expire()`` deletes the router's conntrack entries (``conntrack -D``, conntrack-tools), as an
idle timeout would; ``established_timeout`` sets the router's
``nf_conntrack_tcp_timeout_established`` to expire them by idling instead.

Namespace names: ``nplab<pid>x`` (client), ``y`` (router), ``z`` (server); ``letters`` and
``addresses`` give another instance its own (``SessionTablePath``).

``session_table=N`` adds a session-table emulation to the router (issue 13): the 4-tuple of
each connection that sent a FIN or an RST is remembered N seconds in an nftables dynamic set,
and a new SYN reusing one is dropped, as a firewall or NAT that still holds the closed
session does. ``SessionTablePath`` is that router on its own namespaces (``k`` client, ``u``
router, ``v`` server) and addresses (198.18.128.0/30 and 198.18.129.0/30).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Self

from nplab.realservers._base import is_root
from nplab.require import require, require_binary

__all__ = ["CLIENT_IP", "SERVER_IP", "ConntrackPath", "SessionTablePath"]

CLIENT_IP = "198.18.230.1"
ROUTER_CLIENT_IP = "198.18.230.2"
ROUTER_SERVER_IP = "198.18.231.1"
SERVER_IP = "198.18.231.2"

ECHO_SERVER = r"""
import socket, sys, threading
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind((sys.argv[1], int(sys.argv[2]))); ls.listen(16)
print("ready", flush=True)
def serve(c):
    with c:
        while True:
            try:
                data = c.recv(4096)
            except OSError:
                return
            if not data:
                return
            c.sendall(data)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


def _session_table_rules(seconds: float) -> str:
    """A firewall's session table that outlives the connections it tracked: the 4-tuple of
    every connection that sent a FIN or an RST is remembered for ``seconds`` (an nftables
    dynamic set with timeouts), and a new SYN that reuses one is dropped (silence), as a
    stateful firewall or NAT that still holds the old session does."""
    ms = max(1, round(seconds * 1000))
    return f"""
table inet npst {{
  set closed {{
    type ipv4_addr . inet_service . ipv4_addr . inet_service
    flags dynamic, timeout
    timeout {ms}ms
  }}
  chain forward {{
    type filter hook forward priority -10; policy accept;
    tcp flags & (syn | ack) == syn ip saddr . tcp sport . ip daddr . tcp dport @closed counter drop
    tcp flags & (fin | rst) != 0 update @closed {{ ip saddr . tcp sport . ip daddr . tcp dport }}
  }}
}}
"""


def _nft_rules(invalid_action: str) -> str:
    action = "reject with tcp reset" if invalid_action == "reset" else "drop"
    return f"""
table inet npct {{
  chain forward {{
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    ct state invalid meta l4proto tcp {action}
    ct state invalid drop
    ct state new accept
  }}
}}
"""


class ConntrackPath:
    """Three namespaces and an nftables router; ``server_port`` runs an echo server."""

    def __init__(
        self,
        *,
        invalid_action: str = "drop",
        loose: bool = False,
        established_timeout: int | None = None,
        server_port: int = 7,
        session_table: float | None = None,
        letters: str = "xyz",
        addresses: tuple[str, str, str, str] = (
            CLIENT_IP,
            ROUTER_CLIENT_IP,
            ROUTER_SERVER_IP,
            SERVER_IP,
        ),
    ) -> None:
        assert invalid_action in ("drop", "reset"), invalid_action
        assert len(letters) == 3, letters
        tag = os.getpid()
        self.client, self.router, self.server = (f"nplab{tag}{x}" for x in letters)
        short = tag % 100000
        a, b, c = letters[0], letters[1], letters[2]
        self.links = (f"np{a}{short}", f"np{b}{a}{short}", f"np{b}{c}{short}", f"np{c}{short}")
        self.client_ip, self.router_client_ip, self.router_server_ip, self.server_ip = addresses
        self.session_table = session_table
        self.invalid_action = invalid_action
        self.loose = loose
        self.established_timeout = established_timeout
        self.server_port = server_port
        self.echo: subprocess.Popen[str] | None = None

    def _ip(self, *args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    def _sysctl(self, ns: str, setting: str) -> None:
        subprocess.run(
            ["ip", "netns", "exec", ns, "sysctl", "-qw", setting],
            check=True, capture_output=True, timeout=10,
        )  # fmt: skip

    def start(self) -> Self:
        require(is_root(), "needs root (network namespaces, nftables)")
        for binary in ("ip", "nft", "conntrack"):
            require_binary(binary)
        from nplab.topology import cleanup_stale

        cleanup_stale()
        self.stop()
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        return self

    def _build(self) -> None:
        c, r, s = self.client, self.router, self.server
        cx, rx, rz, sz = self.links
        for ns in (c, r, s):
            self._ip("netns", "add", ns)
            self._ip("-n", ns, "link", "set", "lo", "up")
        self._ip("link", "add", cx, "netns", c, "type", "veth", "peer", "name", rx, "netns", r)
        self._ip("link", "add", sz, "netns", s, "type", "veth", "peer", "name", rz, "netns", r)
        for ns, link, addr in (
            (c, cx, f"{self.client_ip}/30"),
            (r, rx, f"{self.router_client_ip}/30"),
            (r, rz, f"{self.router_server_ip}/30"),
            (s, sz, f"{self.server_ip}/30"),
        ):
            self._ip("-n", ns, "addr", "add", addr, "dev", link)
            self._ip("-n", ns, "link", "set", link, "up")
        self._ip("-n", c, "route", "add", f"{self.server_ip}/32", "via", self.router_client_ip)
        self._ip("-n", s, "route", "add", f"{self.client_ip}/32", "via", self.router_server_ip)
        self._sysctl(r, "net.ipv4.ip_forward=1")
        rules = _nft_rules(self.invalid_action)
        if self.session_table is not None:
            rules += _session_table_rules(self.session_table)
        subprocess.run(
            ["ip", "netns", "exec", r, "nft", "-f", "-"],
            input=rules, text=True, check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        # The conntrack sysctls exist in a namespace once its nftables rules use conntrack.
        self._sysctl(r, f"net.netfilter.nf_conntrack_tcp_loose={1 if self.loose else 0}")
        if self.established_timeout is not None:
            self._sysctl(
                r, f"net.netfilter.nf_conntrack_tcp_timeout_established={self.established_timeout}"
            )
        for ns in (c, s):
            routes = subprocess.run(
                ["ip", "-n", ns, "route", "show"], capture_output=True, text=True, timeout=10
            ).stdout
            assert "default" not in routes, routes
        self.echo = subprocess.Popen(
            ["ip", "netns", "exec", s, sys.executable, "-c", ECHO_SERVER, self.server_ip,
             str(self.server_port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert self.echo.stdout is not None
        line = self.echo.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"echo server did not start: {line!r}")

    def entries(self) -> str:
        """The router's conntrack table (``conntrack -L``)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.router, "conntrack", "-L"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip

    def session_drops(self) -> int:
        """SYNs the session-table emulation dropped so far (its rule's counter)."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.router, "nft", "list", "chain", "inet", "npst",
             "forward"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout  # fmt: skip
        for line in out.splitlines():
            if "@closed" in line and "drop" in line and "packets" in line:
                return int(line.split("packets", 1)[1].split()[0])
        return 0

    def expire(self) -> None:
        """Delete every conntrack entry of the router, as an idle timeout would."""
        subprocess.run(
            ["ip", "netns", "exec", self.router, "conntrack", "-D"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip

    def run_client(
        self, argv: list[str], *, timeout: float = 60, cwd: str | Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the client namespace (not checked)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.client, *argv],
            capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd,
        )  # fmt: skip

    def stop(self) -> None:
        if self.echo is not None:
            self.echo.kill()
            self.echo.wait(5)
            for stream in (self.echo.stdout, self.echo.stderr):
                if stream is not None:
                    stream.close()
            self.echo = None
        for ns in (self.client, self.router, self.server):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: The session-table lab's client and server addresses (198.18.128.0/18).
ST_CLIENT_IP, ST_SERVER_IP = "198.18.128.1", "198.18.129.2"


class SessionTablePath(ConntrackPath):
    """The stateful router with a session table that remembers closed 4-tuples for
    ``seconds`` and drops a new SYN that reuses one (namespaces ``k``/``u``/``v``)."""

    def __init__(self, seconds: float | None = 3.0, **kwargs: Any) -> None:
        super().__init__(
            session_table=seconds,
            letters="kuv",
            addresses=(ST_CLIENT_IP, "198.18.128.2", "198.18.129.1", ST_SERVER_IP),
            **kwargs,
        )
