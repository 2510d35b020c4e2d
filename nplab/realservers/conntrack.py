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

Namespace names: ``nplab<pid>x`` (client), ``y`` (router), ``z`` (server).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from nplab.realservers._base import is_root
from nplab.require import require, require_binary

__all__ = ["CLIENT_IP", "SERVER_IP", "ConntrackPath"]

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
    ) -> None:
        assert invalid_action in ("drop", "reset"), invalid_action
        tag = os.getpid()
        self.client, self.router, self.server = (f"nplab{tag}{x}" for x in "xyz")
        short = tag % 100000
        self.links = (f"npx{short}", f"npyx{short}", f"npyz{short}", f"npz{short}")
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

    def start(self) -> ConntrackPath:
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
            (c, cx, f"{CLIENT_IP}/30"),
            (r, rx, f"{ROUTER_CLIENT_IP}/30"),
            (r, rz, f"{ROUTER_SERVER_IP}/30"),
            (s, sz, f"{SERVER_IP}/30"),
        ):
            self._ip("-n", ns, "addr", "add", addr, "dev", link)
            self._ip("-n", ns, "link", "set", link, "up")
        self._ip("-n", c, "route", "add", f"{SERVER_IP}/32", "via", ROUTER_CLIENT_IP)
        self._ip("-n", s, "route", "add", f"{CLIENT_IP}/32", "via", ROUTER_SERVER_IP)
        self._sysctl(r, "net.ipv4.ip_forward=1")
        subprocess.run(
            ["ip", "netns", "exec", r, "nft", "-f", "-"],
            input=_nft_rules(self.invalid_action), text=True, check=True,
            capture_output=True, timeout=10,
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
            ["ip", "netns", "exec", s, sys.executable, "-c", ECHO_SERVER, SERVER_IP,
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

    def __enter__(self) -> ConntrackPath:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
