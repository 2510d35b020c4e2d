"""One lab scenario per fault and warning code: the fault catalog's (and the comparisons') input.

``build_scenarios(lab)`` starts what the scenarios need inside the lab (servers in the server
namespace, routes in the client namespace, a delay line, names in the client's hosts file),
yields one :class:`Scenario` per code of ``FAULT_CODES`` and ``WARNING_CODES`` that the lab can
show, and removes its servers and routes on exit. Addresses and ports are fixed, so the
output is stable from run to run. The ``db.*`` scenarios come from ``catalog_db.py`` (real
MariaDB, PostgreSQL and Redis) when that module is present.

Addresses this module uses (the base lab's hosts are in ``topology.py``):

=================  ==================================================================
198.18.0.30        ``tls.lab``: HTTPS with each bad certificate, ports 4431-4438
198.18.0.130       ``deploy.lab``: nginx with the TLS deployment faults (``catalog_tls.py``)
198.18.0.31        ``web.lab``: plain HTTP on 8080 (by path), reset-on-accept on 8081
198.18.0.10:84-87  accept and hold (one port per local.* scenario: their socket counts
                   must not see each other's connections)
198.18.0.15:8090   HTTP answering after 1.3 s (ICMP to .15 is dropped)
198.18.0.40        client route ``blackhole`` (connect() fails with EINVAL)
198.18.0.41        client route ``prohibit`` (connect() fails with EACCES)
198.18.0.53        name server (UDP 53): NXDOMAIN / NODATA / SERVFAIL by name
198.18.0.54        a name server that reads queries and never answers
198.18.0.55        a second name server that disagrees with the first on ``db.corp.lab``
198.18.<n>.2       a delay line that drops the first SYN of every flow
198.18.64.0/18     the routed path of ``nplab/pathlab.py`` (``catalog_path.py``)
=================  ==================================================================

How to run a scenario: the CLI in the client namespace, ``netprobe diagnose TARGET
*cli_args``; :func:`cli_options` turns ``cli_args`` into ``diagnose()`` keywords for
``Lab.run``. A scenario with ``pre`` builds local state first: ``close_wait``,
``time_wait`` and ``fds`` are ``nplab/runner.py``'s; ``fd_exhaustion`` is only
understood by ``catalog_cli.py`` (which runs the CLI in-process after building the state);
``sysctl`` (client-namespace sysctls, e.g. a 4-port ephemeral range) must be set around the
run and makes the scenario exclusive: no other scenario may run meanwhile
(:func:`client_sysctls`, :func:`is_exclusive`).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from netprobe.testing import CertBook
from nplab.catalog_l7 import l7_scenarios
from nplab.catalog_path import path_scenarios
from nplab.catalog_session import session_scenarios
from nplab.catalog_tls import tls_scenarios
from nplab.scenario import Scenario
from nplab.topology import HERE, PY, Lab, sh

__all__ = [
    "CATALOG_CA",
    "Scenario",
    "build_scenarios",
    "cli_options",
    "client_sysctls",
    "is_exclusive",
]

TLS_HOST, TLS_ADDR = "tls.lab", "198.18.0.30"
WEB_HOST, WEB_ADDR = "web.lab", "198.18.0.31"
DNS_ADDR, DNS_SILENT_ADDR, DNS_ALT_ADDR = "198.18.0.53", "198.18.0.54", "198.18.0.55"
BLACKHOLE_ADDR, PROHIBIT_ADDR = "198.18.0.40", "198.18.0.41"
#: Where the CA file of the catalog's certificates is shown in commands (the real path is a
#: temporary directory; the generator shows this name instead).
CATALOG_CA = "lab-ca.pem"
_ZONE = {
    "missing.lab": "NXDOMAIN",
    "noaddr.lab": "NODATA",
    "broken.lab": "SERVFAIL",
    "stalled.lab": "SILENT",
    # The resolver walks (resolv.conf given per scenario): a cluster's search domains that
    # know nothing, names only DNS knows, a wildcard domain.
    "*.cluster.local": "NXDOMAIN",
    "api.corp.lab": WEB_ADDR,
    "db.corp.lab": WEB_ADDR,
    "*.wild.lab": WEB_ADDR,
    "shop.example.lab": "NXDOMAIN",
}
_KUBE_RESOLV = (
    f"nameserver {DNS_ADDR}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n"
    "options ndots:5 timeout:1 attempts:1\n"
)
_WILD_RESOLV = f"nameserver {DNS_ADDR}\nsearch wild.lab\noptions ndots:5 timeout:1 attempts:1\n"
_PAIR_RESOLV = (
    f"nameserver {DNS_ADDR}\nnameserver {DNS_ALT_ADDR}\nsearch corp.lab\n"
    "options timeout:1 attempts:1\n"
)
#: The second name server: another answer for db.corp.lab (a stale or split-horizon copy).
_ALT_ZONE = {"db.corp.lab": TLS_ADDR}
_PORT_RANGE = {"net.ipv4.ip_local_port_range": "40000 40003"}


def cli_options(scenario: Scenario) -> dict[str, Any]:
    """The ``diagnose()`` keywords of a scenario's CLI flags (parsed by the CLI's own parser)."""
    from netprobe import cli
    from netprobe._cliutil import options_from_cli

    ctx = cli.diagnose.make_context("diagnose", [scenario.target, *scenario.cli_args])
    kw = dict(ctx.params)
    for name in ("target", "as_json", "verbose"):
        kw.pop(name, None)
    return options_from_cli(kw)


def is_exclusive(scenario: Scenario) -> bool:
    """True when the scenario changes client-namespace settings: run it alone."""
    return bool(scenario.pre.get("sysctl"))


@contextlib.contextmanager
def client_sysctls(lab: Lab, scenario: Scenario) -> Iterator[None]:
    """Set the scenario's client-namespace sysctls for the duration, then restore them."""
    wanted: Mapping[str, str] = scenario.pre.get("sysctl", {})
    old = {k: sh("sysctl", "-n", k, ns=lab.client).stdout.strip() for k in wanted}
    try:
        for key, value in wanted.items():
            sh("sysctl", "-qw", f"{key}={value}", ns=lab.client)
        yield
    finally:
        for key, value in old.items():
            sh("sysctl", "-qw", f"{key}={' '.join(value.split())}", ns=lab.client)


class _ServerProcess:
    """``catalog_servers.py`` in the server namespace; stopped by closing its stdin."""

    def __init__(self, lab: Lab, spec: list[list[Any]]) -> None:
        self.proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                lab.server,
                PY,
                str(HERE / "catalog_servers.py"),
                json.dumps(spec),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=HERE.parent,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.close()
            raise RuntimeError(f"catalog servers did not start: {line!r} {self._stderr()}")

    def _stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read()[-2000:]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _db_scenarios(lab: Lab, stack: contextlib.ExitStack) -> Future[list[Scenario]]:
    """Start catalog_db's database servers in a thread (they take the longest)."""
    from nplab.catalog_db import db_scenarios

    future: Future[list[Scenario]] = Future()
    cm = db_scenarios(lab)

    def enter() -> None:
        try:
            future.set_result(list(cm.__enter__()))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            future.set_exception(exc)

    thread = threading.Thread(target=enter, name="catalog-db", daemon=True)
    thread.start()

    def leave(*exc: object) -> None:
        thread.join()
        if future.exception() is None:
            cm.__exit__(None, None, None)

    stack.push(leave)
    return future


@contextlib.contextmanager
def build_scenarios(lab: Lab, *, databases: bool = True) -> Iterator[list[Scenario]]:
    """Start every server and rule the scenarios need; yield the scenarios; tear down.

    ``databases=False`` leaves out the ``db.*`` scenarios (real database servers take the
    longest to start)."""
    with contextlib.ExitStack() as stack:
        db_future = _db_scenarios(lab, stack) if databases else None
        book = stack.enter_context(CertBook(names=(TLS_HOST,)))
        ca = str(Path(book.ca_file))
        for address in (TLS_ADDR, WEB_ADDR, DNS_ADDR, DNS_SILENT_ADDR, DNS_ALT_ADDR):
            lab.add_address(address)
        lab.add_host(TLS_HOST, TLS_ADDR)
        lab.add_host(WEB_HOST, WEB_ADDR)
        # Two addresses for one name: the first rejects everything, the second works.
        lab.add_host("pair.lab", "198.18.0.16", "198.18.0.10")
        for kind, address in (("blackhole", BLACKHOLE_ADDR), ("prohibit", PROHIBIT_ADDR)):
            sh("ip", "route", "add", kind, f"{address}/32", ns=lab.client)
            stack.callback(
                sh, "ip", "route", "del", kind, f"{address}/32", ns=lab.client, check=False
            )
        delayed = lab.add_delay_line(drop_first_syn=True)

        def tls(port: int, kind: str, **extra: str) -> list[Any]:
            cert, key = book.cert_files(kind)
            return ["tls", TLS_ADDR, port, {"cert": cert, "key": key, **extra}]

        spec = [
            tls(4431, "expired"),
            tls(4432, "not_yet_valid"),
            tls(4433, "unknown_ca"),
            tls(4434, "wrong_host"),
            tls(4435, "expiring_soon"),
            ["http", TLS_ADDR, 4437, {}],
            ["silent", TLS_ADDR, 4438, {}],
            ["http", WEB_ADDR, 8080, {}],
            ["reset", WEB_ADDR, 8081, {}],
            ["silent", "198.18.0.10", 84, {}],
            ["silent", "198.18.0.10", 85, {}],
            ["silent", "198.18.0.10", 86, {}],
            ["silent", "198.18.0.10", 87, {}],
            ["slow_http", "198.18.0.15", 8090, {"delay": 1.3}],
            ["dns", DNS_ADDR, 53, _ZONE],
            ["dns_silent", DNS_SILENT_ADDR, 53, {}],
            ["dns", DNS_ALT_ADDR, 53, _ALT_ZONE],
        ]
        servers = _ServerProcess(lab, spec)
        stack.callback(servers.close)
        scenarios = _scenarios(ca, delayed)
        scenarios.extend(stack.enter_context(l7_scenarios(lab)))  # nplab/catalog_l7.py
        scenarios += stack.enter_context(tls_scenarios(lab))  # nplab/catalog_tls.py
        scenarios += stack.enter_context(session_scenarios(lab))  # nplab/catalog_session.py
        scenarios += stack.enter_context(path_scenarios(lab))  # nplab/catalog_path.py
        if db_future is not None:
            scenarios.extend(db_future.result(timeout=120))
        yield scenarios


def _scenarios(ca: str, delayed: str) -> list[Scenario]:
    ca_args = ("--ca-file", ca)
    dns = ("--nameserver", DNS_ADDR)
    tls_setup = (
        f"An HTTPS server on {TLS_ADDR}:{{port}} (`{TLS_HOST}` in the client's hosts file) "
        "presenting {what}; the client trusts the lab CA (`--ca-file`)."
    )

    def tls_case(code: str, port: int, title: str, what: str, **kw: Any) -> Scenario:
        return Scenario(
            code=code,
            title=title,
            setup=tls_setup.format(port=port, what=what),
            target=f"https://{TLS_HOST}:{port}/",
            cli_args=kw.pop("cli_args", ca_args),
            **kw,
        )

    return [
        # --- DNS -----------------------------------------------------------------------
        Scenario(
            "dns.nxdomain",
            "The name does not exist",
            f"A name server on {DNS_ADDR} answers NXDOMAIN for `missing.lab` (A and AAAA).",
            "missing.lab:80",
            dns,
        ),
        Scenario(
            "dns.no_address",
            "The name exists, without an address record",
            f"A name server on {DNS_ADDR} answers NOERROR with an empty answer section "
            "(NODATA) for `noaddr.lab`, A and AAAA.",
            "noaddr.lab:80",
            dns,
        ),
        Scenario(
            "dns.servfail",
            "The name server fails",
            f"A name server on {DNS_ADDR} answers SERVFAIL for `broken.lab`.",
            "broken.lab:80",
            dns,
        ),
        Scenario(
            "dns.refused",
            "The name server refuses this client",
            f"A name server on {DNS_ADDR} answers REFUSED for every name it does not serve "
            "(`elsewhere.lab`), as a resolver whose access list leaves this client out does.",
            "elsewhere.lab:80",
            dns,
        ),
        Scenario(
            "dns.upstream_timeout",
            "The name server is up, its upstream is silent",
            f"A name server on {DNS_ADDR} answers other names at once (and the CHAOS "
            "`version.bind` control query, with REFUSED) but never answers for `stalled.lab`, "
            "as a forwarding resolver whose forwarder is silent does; DNS budget 1 s.",
            "stalled.lab:80",
            (*dns, "--dns-timeout", "1"),
        ),
        Scenario(
            "dns.timeout",
            "The name server never answers",
            f"A UDP socket on {DNS_SILENT_ADDR}:53 reads every query and never answers; "
            "DNS budget 1 s.",
            "api.lab:80",
            ("--nameserver", DNS_SILENT_ADDR, "--dns-timeout", "1"),
        ),
        # --- L3 ------------------------------------------------------------------------
        Scenario(
            "l3.network_unreachable",
            "No route to the network",
            "The client namespace has routes to 198.18.0.0/24 and the delay lines only; "
            "198.19.0.0/16 has none (and there is no default route).",
            "198.19.5.5:81",
        ),
        Scenario(
            "l3.host_unreachable",
            "A firewall rejects with ICMP admin-prohibited",
            "nftables in the server namespace: `ip daddr 198.18.0.17 reject with icmp type "
            "admin-prohibited` (the SYN and the echoes get ICMP destination unreachable, "
            "code 13).",
            "198.18.0.17:81",
        ),
        Scenario(
            "l3.host_unresponsive",
            "The host drops everything",
            "nftables in the server namespace: `ip daddr 198.18.0.14 drop` (SYNs to every "
            "port and ICMP echoes vanish); connect timeout 1 s.",
            "198.18.0.14:81",
            ("--connect-timeout", "1"),
        ),
        # --- L4 ------------------------------------------------------------------------
        Scenario(
            "l4.refused",
            "Nothing listens on the port",
            "198.18.0.10 is up; no socket listens on port 81, so the kernel answers the SYN "
            "with RST.",
            "198.18.0.10:81",
        ),
        Scenario(
            "l4.filtered",
            "A firewall drops the port, the host answers ping",
            "nftables in the server namespace: `ip daddr 198.18.0.12 tcp dport 81 drop`; "
            "echoes are answered; connect timeout 1 s.",
            "198.18.0.12:81",
            ("--connect-timeout", "1"),
        ),
        Scenario(
            "l4.connect_timeout",
            "Silence, and no witness allowed",
            "The host drops everything (as for `l3.host_unresponsive`), and the diagnosis "
            "may not send echoes (`--no-icmp`) nor the canary connect (`--no-canary`); "
            "connect timeout 1 s.",
            "198.18.0.14:81",
            ("--connect-timeout", "1", "--no-icmp", "--no-canary"),
        ),
        Scenario(
            "l4.connect_failed",
            "A blackhole route on this host",
            f"The client namespace has `ip route add blackhole {BLACKHOLE_ADDR}/32`: "
            "connect() fails at once with EINVAL, an errno netprobe has no specific "
            "verdict for.",
            f"{BLACKHOLE_ADDR}:81",
        ),
        # --- local ---------------------------------------------------------------------
        Scenario(
            "local.connect_denied",
            "A prohibit route on this host",
            f"The client namespace has `ip route add prohibit {PROHIBIT_ADDR}/32`: the route "
            "lookup of connect() fails with EACCES; nothing is sent.",
            f"{PROHIBIT_ADDR}:81",
        ),
        Scenario(
            "local.port_exhaustion",
            "Every ephemeral port toward the target is in TIME_WAIT",
            "The client namespace's ephemeral port range is cut to 4 ports "
            "(`net.ipv4.ip_local_port_range = 40000 40003`), and 4 connections to "
            "198.18.0.10:85 (a server that accepts and holds) were opened and closed by the "
            "client first, so each port sits in TIME_WAIT toward that endpoint.",
            "tcp://198.18.0.10:85",
            pre={"sysctl": _PORT_RANGE, "time_wait": [4, "198.18.0.10:85"]},
        ),
        Scenario(
            "local.fd_exhaustion",
            "The process has no free file descriptor",
            "The diagnosing process runs with a soft fd limit of 64 (`ulimit -n 64`); right "
            "before it creates its TCP socket, its fd table is filled up to that limit (a "
            "descriptor leak at the worst moment), so `socket()` fails with EMFILE.",
            "tcp://198.18.0.10:87",
            pre={"fd_exhaustion": True},
        ),
        # --- L7 ------------------------------------------------------------------------
        Scenario(
            "l7.connection_closed",
            "The server resets the connection after accepting it",
            f"A server on {WEB_ADDR}:8081 accepts, waits for the client's first bytes and "
            "closes with SO_LINGER 0 (RST), as a proxy with no healthy backend does.",
            f"http://{WEB_HOST}:8081/health",
        ),
        tls_case(
            "tls.cert_expired",
            4431,
            "The certificate has expired",
            "a certificate from the lab CA for `tls.lab` that expired 2 days ago",
        ),
        tls_case(
            "tls.cert_not_yet_valid",
            4432,
            "The certificate is not valid yet",
            "a certificate from the lab CA for `tls.lab` valid from 3 days from now",
        ),
        tls_case(
            "tls.cert_untrusted",
            4433,
            "The certificate comes from an unknown CA",
            "a certificate for `tls.lab` issued by another CA, which the client does not trust",
        ),
        tls_case(
            "tls.hostname_mismatch",
            4434,
            "The certificate is for another name",
            "a certificate from the lab CA for `other.example.com` and "
            "`www.other.example.com` only",
        ),
        Scenario(
            "tls.not_tls",
            "Plain HTTP on the TLS port",
            f"A plain HTTP server on {TLS_ADDR}:4437; the client speaks TLS to it (it answers "
            "the ClientHello with an HTTP 400, as nginx does).",
            f"https://{TLS_HOST}:4437/",
            ca_args,
        ),
        Scenario(
            "tls.handshake_timeout",
            "Accepted, and the ClientHello is never answered",
            f"A server on {TLS_ADDR}:4438 accepts and reads, and never writes; read timeout 1 s.",
            f"https://{TLS_HOST}:4438/",
            (*ca_args, "--read-timeout", "1"),
        ),
        Scenario(
            "http.server_error",
            "HTTP 503 with Retry-After",
            f"A plain HTTP server on {WEB_ADDR}:8080 answers `/busy` with "
            "`503 Service Unavailable` and `Retry-After: 120`.",
            f"http://{WEB_HOST}:8080/busy",
        ),
        Scenario(
            "http.client_error",
            "HTTP 404 on the health path",
            f"The HTTP server on {WEB_ADDR}:8080 answers `/missing` with `404 Not Found`.",
            f"http://{WEB_HOST}:8080/missing",
        ),
        Scenario(
            "http.timeout",
            "The server reads the request and never answers",
            f"The HTTP server on {WEB_ADDR}:8080 reads the request for `/hang` and sends "
            "nothing; read timeout 1 s.",
            f"http://{WEB_HOST}:8080/hang",
            ("--read-timeout", "1"),
        ),
        Scenario(
            "http.protocol_error",
            "The answer is not HTTP",
            f"The HTTP server on {WEB_ADDR}:8080 answers `/garbage` with bytes that are not "
            "an HTTP status line.",
            f"http://{WEB_HOST}:8080/garbage",
        ),
        # --- warnings ------------------------------------------------------------------
        Scenario(
            "tcp.syn_retransmitted",
            "The first SYN is lost",
            f"A userspace delay line between the namespaces drops the first SYN of every "
            f"TCP flow; the server side of the line is {delayed} (port 80 accepts).",
            f"tcp://{delayed}:80",
            warning=True,
        ),
        Scenario(
            "tcp.address_failed",
            "One of two addresses fails",
            "`pair.lab` resolves (client hosts file) to 198.18.0.16, which a firewall "
            "rejects with ICMP host-unreachable, and to 198.18.0.10, where port 80 accepts.",
            "tcp://pair.lab:80",
            warning=True,
        ),
        Scenario(
            "icmp.no_reply",
            "ICMP is dropped while the service works",
            "nftables in the server namespace: `ip daddr 198.18.0.15 icmp type echo-request "
            "drop`; an HTTP server on 198.18.0.15:8090 answers `200 OK` after 1.3 s (longer "
            "than an echo's 1 s timeout).",
            "http://198.18.0.15:8090/health",
            warning=True,
        ),
        Scenario(
            "dns.search_walk",
            "A Kubernetes ndots:5 walk",
            f"This run's resolv.conf is a pod's: `search default.svc.cluster.local "
            f"svc.cluster.local cluster.local`, `options ndots:5`, the name server on "
            f"{DNS_ADDR}, which answers NXDOMAIN under `cluster.local` and {WEB_ADDR} for "
            "`api.corp.lab` (an HTTP server on port 8080).",
            "http://api.corp.lab:8080/",
            pre={"resolv_conf": _KUBE_RESOLV},
            warning=True,
        ),
        Scenario(
            "dns.search_wildcard",
            "A wildcard search domain answers for the name",
            f"resolv.conf: `search wild.lab`, `options ndots:5`; the name server on {DNS_ADDR} "
            f"has a wildcard `*.wild.lab` ({WEB_ADDR}) and answers NXDOMAIN for "
            "`shop.example.lab` itself, which the walk never reaches.",
            "http://shop.example.lab:8080/",
            pre={"resolv_conf": _WILD_RESOLV},
            warning=True,
        ),
        Scenario(
            "dns.nameservers_disagree",
            "Two name servers, two answers",
            f"resolv.conf names {DNS_ADDR} and {DNS_ALT_ADDR} with `search corp.lab`; the "
            f"first says `db.corp.lab` is {WEB_ADDR}, the second {TLS_ADDR} (a stale copy of "
            "the zone, or a split horizon).",
            "http://db:8080/",
            pre={"resolv_conf": _PAIR_RESOLV},
            warning=True,
        ),
        tls_case(
            "tls.cert_expiring_soon",
            4435,
            "The certificate expires in 5 days",
            "a certificate from the lab CA for `tls.lab` that expires 5 days from now",
            warning=True,
        ),
        tls_case(
            "tls.verify_disabled",
            4433,
            "Verification turned off",
            "a certificate from a CA the client does not trust; the diagnosis runs with "
            "`--insecure`",
            cli_args=("--insecure",),
            warning=True,
        ),
        Scenario(
            "local.close_wait_leak",
            "Leaked connections pile up in CLOSE_WAIT",
            "Before the diagnosis, the client process opened 12 connections to "
            "198.18.0.10:82 (a server that accepts and closes at once) and never closed "
            "them: the server's FIN left each in CLOSE_WAIT.",
            "tcp://198.18.0.10:82",
            pre={"close_wait": [12, "198.18.0.10:82"]},
            warning=True,
        ),
        Scenario(
            "local.time_wait_pressure",
            "TIME_WAIT sockets fill half the ephemeral ports",
            "The client namespace's ephemeral port range is cut to 4 ports "
            "(`net.ipv4.ip_local_port_range = 40000 40003`), and 2 connections to "
            "198.18.0.10:84 were opened and closed by the client first (2 of 4 ports in "
            "TIME_WAIT toward that endpoint).",
            "tcp://198.18.0.10:84",
            pre={"sysctl": _PORT_RANGE, "time_wait": [2, "198.18.0.10:84"]},
            warning=True,
        ),
        Scenario(
            "local.fd_pressure",
            "File descriptors near the limit",
            "The diagnosing process runs with a soft fd limit of 64 and 57 descriptors "
            "already open (90 %); 198.18.0.10:86 accepts.",
            "tcp://198.18.0.10:86",
            pre={"fds": [64, 0.9]},
            warning=True,
        ),
        Scenario(
            "diagnosis.deadline",
            "The total deadline cuts the diagnosis short",
            "Port 81 of 198.18.0.12 is dropped by a firewall (as for `l4.filtered`); the "
            "total deadline (`--timeout 4`) is shorter than the connect timeout "
            "(`--connect-timeout 20`).",
            "198.18.0.12:81",
            ("--timeout", "4", "--connect-timeout", "20"),
            warning=True,
        ),
    ]
