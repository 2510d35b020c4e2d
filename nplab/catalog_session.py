"""Session-table faults for the fault catalog (issues 11 and 13): a stateful firewall on the
server's host that expires idle sessions, and one that keeps closed sessions.

``session_scenarios(lab)`` adds two addresses to the lab's server namespace, an echo server
on port 7 of each, and one nftables table (``inet npsess``) whose rules touch only these two
addresses:

============  =====================================================================
198.18.0.80   conntrack with a timeout policy of 2 s for established TCP sessions
              (``ct timeout``), ``ct state invalid drop`` and
              ``nf_conntrack_tcp_loose=0``: an idle session is forgotten after 2 s,
              and the next segment of it is dropped (``l4.idle_killed``)
198.18.0.81   a session table that remembers each closed 4-tuple (FIN or RST) for 3 s
              in a dynamic set and drops a new SYN reusing one
              (``l4.reused_port_dropped``)
============  =====================================================================

Their scenarios run ``netprobe pool`` and ``netprobe churn`` (``Scenario.command``) in the
client namespace, as every catalog scenario runs its CLI. The tests of the same faults behind
a router in the middle are tests/test_pool_hold.py and tests/test_churn.py.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

from nplab.realservers.conntrack import ECHO_SERVER
from nplab.scenario import Scenario
from nplab.topology import Lab, sh

__all__ = ["CHURN_ADDR", "IDLE_ADDR", "session_scenarios"]

IDLE_ADDR = "198.18.0.80"
CHURN_ADDR = "198.18.0.81"

_RULES = f"""
table inet npsess {{
  ct timeout idle2s {{
    protocol tcp;
    l3proto ip;
    policy = {{ established: 2 }}
  }}
  set closed {{
    type ipv4_addr . inet_service . ipv4_addr . inet_service
    flags dynamic, timeout
    timeout 3s
  }}
  chain input {{
    type filter hook input priority 0; policy accept;
    ip daddr {IDLE_ADDR} tcp dport 7 ct state new ct timeout set "idle2s"
    ip daddr {IDLE_ADDR} ct state invalid drop
    ip daddr {CHURN_ADDR} tcp dport 7 tcp flags & (syn | ack) == syn ip saddr . tcp sport . ip daddr . tcp dport @closed drop
    ip daddr {CHURN_ADDR} tcp dport 7 tcp flags & (fin | rst) != 0 update @closed {{ ip saddr . tcp sport . ip daddr . tcp dport }}
  }}
}}
"""  # noqa: E501 - nftables rules read best one to a line


@contextlib.contextmanager
def session_scenarios(lab: Lab) -> Iterator[list[Scenario]]:
    """Set the two firewalls up in the server namespace; yield the scenarios; tear down."""
    servers: list[subprocess.Popen[str]] = []
    try:
        for address in (IDLE_ADDR, CHURN_ADDR):
            lab.add_address(address)
            proc = subprocess.Popen(
                ["ip", "netns", "exec", lab.server, sys.executable, "-c", ECHO_SERVER,
                 address, "7"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                text=True,
            )  # fmt: skip
            servers.append(proc)
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"echo server on {address} did not start")
        subprocess.run(
            ["ip", "netns", "exec", lab.server, "nft", "-f", "-"],
            input=_RULES, text=True, check=True, capture_output=True, timeout=10,
        )  # fmt: skip
        # The conntrack sysctls of a namespace exist once its rules use conntrack.
        sh("sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0", ns=lab.server)
        yield _scenarios()
    finally:
        sh("nft", "delete", "table", "inet", "npsess", ns=lab.server, check=False)
        for proc in servers:
            proc.kill()
            proc.communicate(timeout=5)


def _scenarios() -> list[Scenario]:
    return [
        Scenario(
            code="l4.idle_killed",
            title="a pool held idle past the firewall's session timeout",
            setup=(
                f"nftables with conntrack in front of an echo server on `{IDLE_ADDR}:7`: a "
                "`ct timeout` policy forgets an established TCP session after 2 s idle, "
                "`ct state invalid drop`, `nf_conntrack_tcp_loose=0` (a segment of a "
                "forgotten session is not picked up again). Three connections are held 3 s, "
                "then each gets a TCP keepalive probe: none is answered."
            ),
            target=f"tcp://{IDLE_ADDR}:7",
            cli_args=("--size", "3", "--hold", "3", "--read-timeout", "1.5", "--no-icmp"),
            command="pool",
        ),
        Scenario(
            code="l4.reused_port_dropped",
            title="reconnects from just-closed source ports, against a session table",
            setup=(
                f"nftables in front of an echo server on `{CHURN_ADDR}:7` remembers the "
                "4-tuple of each connection that sent a FIN or an RST for 3 s (a dynamic set "
                "with timeouts) and drops a new SYN reusing one. Five pairs: a connect from a "
                "port the kernel picks, closed with an RST, then a reconnect from the same "
                "source port."
            ),
            target=f"{CHURN_ADDR}:7",
            cli_args=("--pairs", "5", "--connect-timeout", "1.5"),
            command="churn",
        ),
    ]
