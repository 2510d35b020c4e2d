"""The fault lab: two network namespaces, a veth pair, nftables rules, servers, delay lines.

The client namespace has NO default route: its only routes are the lab's own 198.18.0.0/15
subnets, so nothing a test sends can leave the machine. Names carry this process's pid; a
lab left behind by a crashed run (its pid gone) is removed before a new one is built.

Hosts on the segment 198.18.0.0/24 (all addresses of the server namespace, except .99):

====  ==========================================================================
.10   nothing on port 81 (RST); servers on 80 (hold) and 82 (close at once)
.11   ``tcp dport 81 reject with tcp reset``
.12   ``tcp dport 81 drop``; answers ping
.13   ``tcp dport 81 drop`` and ICMP echo dropped; other ports answer RST
.14   drops everything
.15   ICMP echo dropped; the service on 80 works
.16   ``reject with icmp type host-unreachable``
.17   ``reject with icmp type admin-prohibited``
.99   nobody owns it: ARP fails (EHOSTUNREACH)
====  ==========================================================================

198.19.0.0/16 has no route in the client namespace (ENETUNREACH). Delay lines get
198.18.<n>.1 (client) and 198.18.<n>.2 (server), n >= 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
PREFIX = "nplab"

NFT_RULES = """
table inet nplab {
  chain input {
    type filter hook input priority 0; policy accept;
    ip daddr 198.18.0.11 tcp dport 81 reject with tcp reset
    ip daddr 198.18.0.12 tcp dport 81 drop
    ip daddr 198.18.0.13 icmp type echo-request drop
    ip daddr 198.18.0.13 tcp dport 81 drop
    ip daddr 198.18.0.14 drop
    ip daddr 198.18.0.15 icmp type echo-request drop
    ip daddr 198.18.0.16 reject with icmp type host-unreachable
    ip daddr 198.18.0.17 reject with icmp type admin-prohibited
  }
}
"""


def sh(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", "netns", "exec", ns, *args] if ns else list(args)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=30)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> None:
    """Remove namespaces (and /etc/netns files) of earlier lab runs whose process is gone."""
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        # The lab's nplab<pid><letter>, and the database tests' npdb<pid>
        # (nplab/dbservers.py, whose veth's host end lives in the root namespace).
        m = re.fullmatch(rf"{PREFIX}(\d+)[a-z]", name) or re.fullmatch(r"npdb(\d+)", name)
        if m and not pid_alive(int(m.group(1))):
            if name.startswith("npdb"):
                sh("ip", "link", "del", f"npdbh{m.group(1)}", check=False)
            sh("ip", "netns", "pids", name, check=False)
            for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            sh("ip", "netns", "del", name, check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


@dataclass
class Lab:
    client: str
    server: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    delay_lines: int = 0

    def _start(self, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(
                f"{cmd[-3:]} did not start: {line!r} {proc.stderr.read() if proc.stderr else ''}"
            )
        return proc

    def add_delay_line(self, *, delay_ms: float = 0.0, drop_first_syn: bool = False) -> str:
        """A TUN delay line between the namespaces; returns the server's address on it."""
        self.delay_lines += 1
        n = self.delay_lines
        tag = f"{os.getpid() % 100000}{n}"
        tun_c, tun_s = f"dlc{tag}", f"dls{tag}"
        cmd = [PY, str(HERE / "delayline.py"), tun_c, tun_s, "--delay-ms", str(delay_ms)]
        if drop_first_syn:
            cmd.append("--drop-first-syn")
        self._start(cmd)
        client_ip, server_ip = f"198.18.{n}.1", f"198.18.{n}.2"
        for tun, ns, local, peer in (
            (tun_c, self.client, client_ip, server_ip),
            (tun_s, self.server, server_ip, client_ip),
        ):
            sh("ip", "link", "set", tun, "netns", ns)
            sh("ip", "-n", ns, "addr", "add", local, "peer", peer, "dev", tun)
            sh("ip", "-n", ns, "link", "set", tun, "up")
        return server_ip

    @property
    def server_veth(self) -> str:
        """The server namespace's end of the lab segment 198.18.0.0/24."""
        return f"vs{int(self.client[len(PREFIX) : -1]) % 100000}"

    def add_address(self, address: str) -> None:
        """Give the server namespace one more address on the segment, e.g. ``198.18.0.30``
        (gone with the namespace)."""
        sh("ip", "-n", self.server, "addr", "add", f"{address}/24", "dev", self.server_veth)

    def add_host(self, name: str, *addresses: str) -> None:
        """Make ``name`` resolve to ``addresses`` in the client namespace (its hosts file)."""
        with open(f"/etc/netns/{self.client}/hosts", "a", encoding="ascii") as fh:
            fh.writelines(f"{a} {name}\n" for a in addresses)

    def start_https(self, port: int, cert: str, key: str) -> None:
        """An HTTPS server (every address of the server namespace) with this cert and key."""
        self._start(
            ["ip", "netns", "exec", self.server, PY, str(HERE / "servers.py"), f"{port}:https"],
            env={"LAB_CERT": cert, "LAB_KEY": key},
        )

    def run(
        self,
        target: str,
        options: dict[str, Any] | None = None,
        pre: dict[str, Any] | None = None,
        *,
        backend: str = "asyncio",
    ) -> dict[str, Any]:
        """Diagnose ``target`` from the client namespace; returns {"report": ..., "wall_s": ...}."""
        spec = json.dumps(
            {"target": target, "options": options or {}, "pre": pre or {}, "backend": backend}
        )
        out = subprocess.run(
            ["ip", "netns", "exec", self.client, PY, str(HERE / "runner.py"), spec],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        if out.returncode != 0:
            raise RuntimeError(f"runner failed for {target}: {out.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result

    def close(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=3)
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        for ns in (self.client, self.server):
            sh("ip", "netns", "del", ns, check=False)
            shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)


@contextlib.contextmanager
def build_lab() -> Iterator[Lab]:
    """Build the lab; everything is removed on exit, also when building fails half-way."""
    cleanup_stale()
    pid = os.getpid()
    lab = Lab(client=f"{PREFIX}{pid}c", server=f"{PREFIX}{pid}s")
    try:
        c, s = lab.client, lab.server
        sh("ip", "netns", "add", c)
        sh("ip", "netns", "add", s)
        # getaddrinfo inside the client namespace: names from the lab's own hosts file,
        # and a resolver that points nowhere outside (loopback, nothing listens).
        etc = Path(f"/etc/netns/{c}")
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(
            "127.0.0.1 localhost\n198.18.0.15 both.lab\n198.18.0.14 both.lab\n"
        )
        (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        veth_c, veth_s = f"vc{pid % 100000}", f"vs{pid % 100000}"
        sh(
            "ip",
            "link",
            "add",
            veth_c,
            "netns",
            c,
            "type",
            "veth",
            "peer",
            "name",
            veth_s,
            "netns",
            s,
        )
        for ns in (c, s):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", c, "addr", "add", "198.18.0.1/24", "dev", veth_c)
        sh("ip", "-n", c, "link", "set", veth_c, "up")
        sh("ip", "-n", s, "addr", "add", "198.18.0.2/24", "dev", veth_s)
        for host in range(10, 18):
            sh("ip", "-n", s, "addr", "add", f"198.18.0.{host}/24", "dev", veth_s)
        sh("ip", "-n", s, "link", "set", veth_s, "up")
        # ARP for an address nobody owns fails after mcast_solicit x retrans_time (3 x 1 s by
        # default); one probe of 300 ms keeps the "nobody owns it" case short.
        sh("sysctl", "-qw", f"net.ipv4.neigh.{veth_c}.mcast_solicit=1", ns=c)
        sh("sysctl", "-qw", f"net.ipv4.neigh.{veth_c}.retrans_time_ms=300", ns=c)
        sh("sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647", ns=c)
        # The server namespace answers every probe with its ICMP error: the kernel's default
        # rate limit (1 per s per peer for unreachables) turned an admin-prohibited or
        # host-unreachable reply into silence when several diagnoses ran at once
        # (l3.host_unresponsive in about one run in five).
        sh("sysctl", "-qw", "net.ipv4.icmp_ratelimit=0", ns=s)
        sh("sysctl", "-qw", "net.ipv4.icmp_msgs_per_sec=100000", ns=s)
        sh("sysctl", "-qw", "net.ipv4.icmp_msgs_burst=100000", ns=s)
        subprocess.run(
            ["ip", "netns", "exec", s, "nft", "-f", "-"],
            input=NFT_RULES,
            text=True,
            check=True,
            capture_output=True,
            timeout=30,
        )
        lab._start(["ip", "netns", "exec", s, PY, str(HERE / "servers.py"), "80:hold", "82:close"])
        routes = sh("ip", "-n", c, "route", "show").stdout
        assert "default" not in routes, routes
        yield lab
    finally:
        lab.close()


if __name__ == "__main__":  # build, print the client namespace, hold until Enter
    with build_lab() as lab:
        print(lab.client, lab.server, time.time(), flush=True)
        sys.stdin.readline()
