"""What netprobe tells apart that curl, nmap and blackbox exporter do not, measured in the lab.

Run (root; needs ip, nft, curl, nmap, prometheus-blackbox-exporter):

    .venv/bin/python scripts/compare_tools.py [--jobs 4] [--list]

Builds the namespace fault lab (nplab/topology.py) and, when helper scenarios exist,
the catalog scenarios (nplab/catalog_scenarios.py ``build_scenarios``); otherwise the
base lab's L3/L4 faults. For each selected scenario it runs, all inside the lab's client
namespace (which has no default route):

* ``curl -sSfv -o /dev/null --connect-timeout 2 -m 4 URL`` (telnet://host:port for plain TCP
  and database targets), recording the exit code;
* ``nmap -n -Pn -sT -p PORT --reason HOST`` (the port state and nmap's reason), and the same
  without ``-Pn`` to see whether host discovery calls the host down;
* prometheus-blackbox-exporter on the namespace's 127.0.0.1 with modules tcp_connect,
  http_2xx and tls (tcp with tls: true), recording probe_success and, from the metrics and the
  ``debug=true`` log, the hint a user could find;
* ``netprobe diagnose TARGET --json``: the fault code, or healthy plus warning codes.

Writes docs/comparison.md (the page) and docs/comparison-table.md (the table and summary the
docs home includes). ``--list`` prints the selected scenarios without running the tools.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

from netprobe import __version__ as netprobe_version
from netprobe.target import Target, parse_target
from nplab.catalog_scenarios import build_scenarios
from nplab.scenario import Scenario
from nplab.topology import Lab, build_lab

ROOT = Path(__file__).resolve().parent.parent

NETPROBE = str(ROOT / ".venv" / "bin" / "netprobe")
BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_ADDR = "127.0.0.1:19115"  # the client namespace's own loopback
LAB_NET = ipaddress.ip_network("198.18.0.0/15")
COMMAND = ".venv/bin/python scripts/compare_tools.py"
DOCS = ROOT / "docs"

CURL_MEANINGS = {
    0: "success",
    1: "unsupported protocol",
    6: "could not resolve host",
    7: "failed to connect",
    8: "weird server reply",
    16: "HTTP/2 error",
    18: "partial file",
    22: "HTTP error >= 400",
    28: "timed out",
    35: "TLS handshake error",
    47: "too many redirects",
    51: "peer certificate or fingerprint not OK",
    52: "empty reply",
    56: "failure receiving data",
    58: "problem with the local certificate",
    60: "certificate not verified",
    77: "problem reading the CA cert",
    92: "HTTP/2 stream error",
}

# The catalog codes measured, in table order: one row per situation an on-call engineer must
# tell apart (near-duplicates such as l4.connect_timeout, and scenarios needing runner state,
# are left out). Two healthy baselines follow (the catalog has none).
PREFERRED = [
    "dns.nxdomain",
    "dns.servfail",
    "dns.timeout",
    "l3.network_unreachable",
    "l3.host_unreachable",
    "l3.host_unresponsive",
    "l4.refused",
    "l4.filtered",
    "tls.cert_expired",
    "tls.cert_untrusted",
    "tls.hostname_mismatch",
    "tls.not_tls",
    "tls.handshake_timeout",
    "tls.handshake_failed",
    "http.server_error",
    "http.timeout",
    "http.protocol_error",
    "l7.connection_closed",
    "db.too_many_connections",
    "db.auth_failed",
    "db.protocol_mismatch",
    "db.greeting_timeout",
    "tcp.address_failed",
]
HEALTHY = [
    Scenario("healthy", "Healthy TCP service", "", "tcp://198.18.0.10:80"),
    Scenario("healthy", "Healthy HTTP service", "", "http://web.lab:8080/health"),
]
MAX_ROWS = 26


@dataclass
class Row:
    scenario: Scenario
    netprobe: str = ""
    netprobe_detail: str = ""
    curl: int | None = None
    curl_detail: str = ""
    nmap: str = ""
    nmap_detail: str = ""
    blackbox: str = ""
    blackbox_detail: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


# --- running things inside the client namespace only ---------------------------------------


def _check_lab_host(host: str) -> None:
    """Refuse any IP literal outside the lab's 198.18.0.0/15 (names resolve in the namespace)."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host) not in LAB_NET:
            raise SystemExit(f"compare_tools: refusing non-lab address {host}")


def in_client(
    lab: Lab, argv: Sequence[str], *, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run argv in the lab's client namespace (the only place any tool here ever runs)."""
    return subprocess.run(
        ["ip", "netns", "exec", lab.client, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _opt(args: Sequence[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _url(target: Target, text: str) -> str:
    if "://" in text and target.scheme in ("http", "https"):
        return text
    scheme = "https" if target.tls else "http"
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{scheme}://{host}:{target.port}{target.path or '/'}"


# --- the four tools -------------------------------------------------------------------------


def run_netprobe(lab: Lab, sc: Scenario) -> tuple[str, str]:
    out = in_client(lab, [NETPROBE, "diagnose", sc.target, "--json", *sc.cli_args], timeout=60)
    try:  # exit 1 is a fault found, and also what an uncaught exception gives
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        tail = out.stderr.strip().splitlines()[-1:] or ["no output"]
        print(f"netprobe {sc.target}: exit {out.returncode}: {tail[0]}", file=sys.stderr)
        return f"error (exit {out.returncode})", tail[0][-200:]
    warnings = [w["code"] for w in report["warnings"]]
    fault = report["fault"]
    verdict = fault["code"] if fault else "healthy" + "".join(f" + {w}" for w in warnings)
    detail = verdict
    if fault:  # what the evidence adds beyond the code (e.g. which ICMP error, from whom)
        for ev in fault["evidence"]:
            m = re.search(r"ICMP error from (.*)", ev["observation"])
            if m:
                detail += f" ({m.group(1)})"
    return verdict, detail


def run_curl(lab: Lab, sc: Scenario, target: Target) -> tuple[int, str]:
    if target.protocol == "http":
        url = _url(target, sc.target)
    elif target.tls:
        url = f"https://{target.host}:{target.port}/"
    else:
        url = f"telnet://{target.host}:{target.port}"
    # -v only to see "Connected to" (the exit code is the result; -w's time_connect stays 0
    # when a TLS handshake times out).
    argv = ["curl", "-sSfv", "-o", "/dev/null", "--connect-timeout", "2", "-m", "4"]
    ca = _opt(sc.cli_args, "--ca-file")
    if ca:
        argv += ["--cacert", ca]
    if "--insecure" in sc.cli_args:
        argv.append("-k")
    ns = _opt(sc.cli_args, "--nameserver")
    out = in_client(lab, _with_resolver(lab, ns, [*argv, url]), timeout=20)
    connected = re.search(r"^\* Connected to ", out.stderr, re.M) is not None
    errors = re.findall(r"^curl: \(\d+\) (.*)$", out.stderr, re.M)
    message = errors[-1] if errors else ""
    meaning = CURL_MEANINGS.get(out.returncode, "?")
    if out.returncode == 28 and connected:
        meaning += ", after connecting"
    cell = f"{out.returncode} ({meaning})"
    return out.returncode, f"{cell}: {message}" if message else cell


def run_nmap(lab: Lab, sc: Scenario, target: Target) -> tuple[str, str]:
    base = ["nmap", "-n", "-sT", "-p", str(target.port), "--reason", "-oX", "-"]
    base += ["--max-retries", "1", "--max-rtt-timeout", "1000ms", "--host-timeout", "15s"]
    ns = _opt(sc.cli_args, "--nameserver")  # nmap resolves the target with getaddrinfo
    scan = _with_resolver(lab, ns, [*base, "-Pn", target.host])
    state, reason = _nmap_port(in_client(lab, scan, timeout=30))
    discovery = in_client(lab, _with_resolver(lab, ns, [*base, target.host]), timeout=30)
    note = ""
    if "failed to determine route" in discovery.stderr:
        note = "; without -Pn: no route, 0 hosts scanned"
    elif "Failed to resolve" in discovery.stderr + discovery.stdout:
        pass
    elif _nmap_hosts_up(discovery.stdout) == 0:
        note = "; without -Pn: host seems down"
    return state, f"{state} ({reason}){note}" if reason else f"{state}{note}"


def _nmap_port(out: subprocess.CompletedProcess[str]) -> tuple[str, str]:
    if "Failed to resolve" in out.stderr + out.stdout:
        return "failed to resolve", ""
    if "failed to determine route" in out.stderr:
        return "no route", ""
    try:
        root = ET.fromstring(out.stdout)
    except ET.ParseError:
        return "error", out.stderr.strip()[-120:]
    state = root.find("./host/ports/port/state")
    if state is None:
        return "no result", out.stderr.strip()[-120:]
    return state.get("state", "?"), state.get("reason", "")


def _nmap_hosts_up(xml_text: str) -> int:
    try:
        hosts = ET.fromstring(xml_text).find("./runstats/hosts")
    except ET.ParseError:
        return -1
    return int(hosts.get("up", "-1")) if hosts is not None else -1


@dataclass
class Blackbox:
    """One exporter in the client namespace; modules are keyed by (prober, CA file, insecure)."""

    lab: Lab
    workdir: Path
    nameserver: str | None = None
    addr: str = BLACKBOX_ADDR
    modules: dict[tuple[str, str | None, bool], str] = field(default_factory=dict)
    proc: subprocess.Popen[str] | None = None

    def module(self, kind: str, ca: str | None, insecure: bool) -> str:
        key = (kind, ca, insecure)
        if key not in self.modules:
            self.modules[key] = f"{kind}_{len(self.modules)}"
        return self.modules[key]

    def config(self) -> str:
        lines = ["modules:"]
        for (kind, ca, insecure), name in self.modules.items():
            lines += [f"  {name}:", f"    prober: {'http' if kind == 'http_2xx' else 'tcp'}"]
            lines.append("    timeout: 4s")
            tls = []
            if ca:
                tls.append(f"        ca_file: {json.dumps(ca)}")
            if insecure:
                tls.append("        insecure_skip_verify: true")
            if kind == "http_2xx":
                lines += ["    http:", "      preferred_ip_protocol: ip4"]
                if tls:
                    lines += ["      tls_config:", *tls]
            else:
                lines += ["    tcp:", "      preferred_ip_protocol: ip4"]
                if kind == "tls":
                    lines.append("      tls: true")
                    if tls:
                        lines += ["      tls_config:", *tls]
        return "\n".join(lines) + "\n"

    @contextlib.contextmanager
    def running(self) -> Iterator[Blackbox]:
        cfg = self.workdir / f"blackbox-{self.addr.replace(':', '-')}.yml"
        cfg.write_text(self.config())
        argv = [BLACKBOX, f"--config.file={cfg}", f"--web.listen-address={self.addr}"]
        log = cfg.with_suffix(".log")
        with log.open("w") as log_file:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.lab.client, *self._argv(argv)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                text=True,
            )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                ready = in_client(
                    self.lab, ["curl", "-s", "-m", "1", f"http://{self.addr}/-/ready"]
                )
                if ready.returncode == 0:
                    break
                if self.proc.poll() is not None:
                    raise RuntimeError(f"blackbox exporter exited: {log.read_text()[-500:]}")
                time.sleep(0.1)
            else:
                raise RuntimeError("blackbox exporter did not become ready in 10 s")
            yield self
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def _argv(self, argv: list[str]) -> list[str]:
        return _with_resolver(self.lab, self.nameserver, argv)

    def probe(self, module: str, target: str) -> tuple[str, str]:
        url = f"http://{self.addr}/probe?module={module}&target={target}&debug=true"
        out = in_client(self.lab, ["curl", "-sS", "-m", "15", url], timeout=20)
        metrics: dict[str, float] = {}
        errors: list[str] = []
        for line in out.stdout.splitlines():
            m = re.fullmatch(r"(probe_[a-z_]+(?:\{[^}]*\})?) (\S+)", line)
            if m:
                metrics[m.group(1)] = _float(m.group(2))
            m = re.search(r'level=error msg="([^"]*)"(?: err="((?:[^"\\]|\\.)*)")?', line)
            if m and m.group(1) != "Probe failed":
                errors.append(_short_error(m.group(2) or m.group(1)))
        if "probe_success" not in metrics:
            return "error", out.stderr.strip()[-120:] or out.stdout[-120:]
        success = str(int(metrics["probe_success"]))
        hints = _metric_hints(metrics)
        if errors:
            hints.append(f"log: {errors[-1]}")
        return success, "; ".join(hints)


def _metric_hints(metrics: dict[str, float]) -> list[str]:
    hints = []
    if metrics.get("probe_ip_protocol") == 0:
        hints.append("probe_ip_protocol 0 (no address)")
    status = metrics.get("probe_http_status_code")
    if status:
        hints.append(f"probe_http_status_code {int(status)}")
    expiry = metrics.get("probe_ssl_earliest_cert_expiry")
    if expiry is not None and expiry < time.time():
        hints.append("probe_ssl_earliest_cert_expiry in the past")
    return hints


def _short_error(err: str) -> str:
    err = err.replace('\\"', '"')
    err = re.sub(r'^(Get|Post|Head) "[^"]*": ', "", err)
    err = re.sub(r"\b(dial|read|write) (tcp|udp)[46]? [^ ]*: ", "", err)
    err = re.sub(r"^lookup \S+ on \S+: ", "lookup: ", err)
    err = re.sub(r": current time .*", "", err)
    return err if len(err) <= 90 else err[:87] + "..."


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _resolv_conf(lab: Lab, host: str) -> Path:
    return Path(tempfile.gettempdir()) / f"np-compare-{lab.client}-{host}.conf"


def _with_resolver(lab: Lab, nameserver: str | None, argv: list[str]) -> list[str]:
    """argv, run with /etc/resolv.conf naming ``nameserver`` (a lab address) when given.

    The bind mount lives in a private mount namespace of this one command (unshare -m), on
    top of the lab's own /etc/netns resolv.conf; nothing outside the command sees it.
    """
    if not nameserver:
        return argv
    host, _, port = (
        nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
    )
    _check_lab_host(host)
    if port and port != "53":
        raise SystemExit(f"compare_tools: resolv.conf cannot name port {port} ({nameserver})")
    conf = _resolv_conf(lab, host)
    if not conf.exists():  # written whole, then renamed: a concurrent mount never sees half
        part = conf.with_suffix(f".{threading.get_ident()}")
        part.write_text(f"nameserver {host}\noptions timeout:1 attempts:1\n")
        part.replace(conf)
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return ["unshare", "-m", "sh", "-c", script, str(conf), *argv]


# --- choosing scenarios ---------------------------------------------------------------------


@contextlib.contextmanager
def scenarios(lab: Lab) -> Iterator[tuple[list[Scenario], str]]:
    """The catalog's scenarios (nplab/catalog_scenarios.py)."""
    with build_scenarios(lab) as catalog:
        yield select(catalog), "the fault catalog's scenarios, `nplab/catalog_scenarios.py`"


def select(catalog: Sequence[Scenario]) -> list[Scenario]:
    usable = [sc for sc in catalog if not sc.pre]
    chosen: list[Scenario] = []
    for code in PREFERRED:
        chosen += [sc for sc in usable if sc.code == code][:1]
    return [*chosen, *HEALTHY][:MAX_ROWS]


# --- measuring and writing ------------------------------------------------------------------


def measure(lab: Lab, exporters: dict[str | None, Blackbox], sc: Scenario) -> Row:
    row = Row(sc)
    start = time.monotonic()
    target = parse_target(sc.target)
    _check_lab_host(target.host)
    row.netprobe, row.netprobe_detail = run_netprobe(lab, sc)
    row.curl, row.curl_detail = run_curl(lab, sc, target)
    row.nmap, row.nmap_detail = run_nmap(lab, sc, target)
    bb = exporters[_opt(sc.cli_args, "--nameserver")]
    module, bb_target = _blackbox_module(bb, sc, target)
    row.blackbox, row.blackbox_detail = bb.probe(module, bb_target)
    row.seconds = time.monotonic() - start
    return row


def _blackbox_module(bb: Blackbox, sc: Scenario, target: Target) -> tuple[str, str]:
    ca, insecure = _opt(sc.cli_args, "--ca-file"), "--insecure" in sc.cli_args
    if target.protocol == "http":
        return bb.module("http_2xx", ca, insecure), _url(target, sc.target)
    hostport = f"{target.host}:{target.port}"
    if target.tls:
        return bb.module("tls", ca, insecure), hostport
    return bb.module("tcp_connect", None, False), hostport


def _groups(rows: Sequence[Row], key: Callable[[Row], object]) -> list[list[Row]]:
    """Scenarios sharing one value of ``key``, in table order: the groups holding two
    different situations (scenario codes; the two healthy baselines are one situation)."""
    by: dict[str, list[Row]] = {}
    for row in rows:
        by.setdefault(str(key(row)), []).append(row)
    return [g for g in by.values() if len({r.scenario.code for r in g}) > 1]


def _confused_pairs(rows: Sequence[Row], key: Callable[[Row], object]) -> int:
    """Pairs of different situations the tool reports with the same value."""
    return sum(
        1
        for a, b in combinations(rows, 2)
        if str(key(a)) == str(key(b)) and a.scenario.code != b.scenario.code
    )


def _norm(row: Row, text: str) -> str:
    """A detail with the scenario's own host, addresses and numbers blotted out, so that
    "after 2001 ms" or the target's address does not count as telling scenarios apart."""
    text = text.replace(parse_target(row.scenario.target).host, "HOST")
    text = re.sub(r"\d+(\.\d+){3}", "ADDR", text)
    return re.sub(r"\d+", "N", text)


TOOLS: list[tuple[str, Callable[[Row], object], Callable[[Row], object]]] = [
    ("netprobe", lambda r: r.netprobe, lambda r: _norm(r, r.netprobe_detail)),
    ("curl", lambda r: r.curl, lambda r: _norm(r, r.curl_detail)),
    ("nmap", lambda r: r.nmap, lambda r: _norm(r, r.nmap_detail)),
    ("blackbox", lambda r: r.blackbox, lambda r: _norm(r, r.blackbox_detail)),
]
WHAT = {
    "netprobe": "fault codes (or healthy + warnings)",
    "curl": "exit codes",
    "nmap": "port states",
    "blackbox": "probe_success values",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _as_expected(row: Row) -> bool:
    """Whether netprobe's verdict names the scenario's code (as fault or warning)."""
    return row.scenario.code in row.netprobe.split(" + ")


def table(rows: Sequence[Row], *, hints: bool = True) -> str:
    """The table; ``hints`` adds blackbox's metric and debug-log column (the page has it,
    the docs home leaves it out)."""
    lines = [
        "| scenario | netprobe | curl exit code (meaning) | nmap state (reason) "
        "| blackbox probe_success |" + (" blackbox hint (metric; debug log) |" if hints else ""),
        "|---|---|---|---|---|" + ("---|" if hints else ""),
    ]
    for r in rows:
        curl = r.curl_detail.split(": ", 1)[0] if r.curl is not None else "?"
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    r.scenario.title,
                    f"`{r.netprobe}`" + ("" if _as_expected(r) else " ⚠"),
                    curl,
                    r.nmap_detail,
                    r.blackbox,
                    *([r.blackbox_detail] if hints else []),
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"


def summary(rows: Sequence[Row]) -> str:
    n, situations = len(rows), len({r.scenario.code for r in rows})
    lines = [f"Across **{n}** scenarios ({situations} different situations):", ""]
    for name, key, detail in TOOLS:
        distinct = len({str(key(r)) for r in rows})
        with_detail = len({str(detail(r)) for r in rows})
        line = f"* **{name}** gives **{distinct}** distinct {WHAT[name]}"
        if with_detail != distinct:
            line += f" ({with_detail} counting the message, reason or log a human reads)"
        lines.append(line + ";")
    lines[-1] = lines[-1][:-1] + "."
    wrong = [r for r in rows if not _as_expected(r)]
    if wrong:
        lines += ["", "⚠ netprobe's verdict is not the scenario's code:", ""]
        lines += [f"* {_cell(r.scenario.title)}: `{r.scenario.code}` expected" for r in wrong]
    lines += ["", "Different situations a tool reports the same way (the value an alert sees):"]
    lines.append("")
    for name, key, _ in TOOLS:
        groups = _groups(rows, key)
        if not groups:
            lines.append(f"* **{name}**: tells every situation apart.")
            continue
        pairs = _confused_pairs(rows, key)
        lines.append(f"* **{name}**: {pairs} pair{'s' if pairs != 1 else ''} not told apart:")
        for g in groups:
            titles = " · ".join(_cell(r.scenario.title) for r in g)
            lines.append(f"    * `{_cell(str(key(g[0])))}`: {titles}")
    return "\n".join(lines) + "\n"


def versions() -> dict[str, str]:
    def first(argv: list[str], pattern: str) -> str:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        m = re.search(pattern, out.stdout + out.stderr)
        return m.group(1) if m else "?"

    return {
        "netprobe": netprobe_version,
        "curl": first(["curl", "--version"], r"curl (\S+)"),
        "nmap": first(["nmap", "--version"], r"Nmap version (\S+)"),
        "blackbox_exporter": first([BLACKBOX, "--version"], r"version (\S+)"),
    }


def page(rows: Sequence[Row], source: str, wall: float) -> tuple[str, str]:
    v = versions()
    today = datetime.now(UTC).date().isoformat()
    body = table(rows) + "\n" + summary(rows)
    included = (
        "<!-- Generated by scripts/compare_tools.py; do not edit. -->\n\n"
        f"Measured in the namespace fault lab on {today} (`{COMMAND}`); how each tool was "
        "run, and the hints blackbox's metrics and debug log give: "
        "[Compared with curl, nmap, blackbox](comparison.md).\n\n"
        + table(rows, hints=False)
        + "\n"
        + summary(rows)
    )
    full = f"""# Compared with curl, nmap and blackbox exporter

!!! note "Generated"
    This page is generated by `{COMMAND}` (run as root; it builds the namespace fault lab).
    Last run: {today}, {len(rows)} scenarios in {wall:.0f} s. Versions: netprobe {v["netprobe"]},
    curl {v["curl"]}, nmap {v["nmap"]}, prometheus-blackbox-exporter {v["blackbox_exporter"]}.

Each row is a real fault built in the namespace lab ({source}), observed by four tools from
the same client network namespace:

* **curl**: `curl -sSfv -o /dev/null --connect-timeout 2 -m 4 URL` with the scenario's URL;
  `telnet://host:port` for plain TCP and database targets (as a user checks a port), and
  `--cacert` with the lab CA when the scenario passes one. The column is the exit code, what
  scripts and health checks act on; curl's one-line message counts only in the figure in
  brackets below.
* **nmap**: `nmap -n -Pn -sT -p PORT --reason --max-retries 1 --max-rtt-timeout 1000ms HOST`.
  The column is the port state, with nmap's `--reason` in brackets, and what the same scan
  says without `-Pn` when host discovery calls the host down.
* **blackbox exporter**: `/probe?module=...&target=...` with module `http_2xx` for http(s)
  URLs, `tls` (tcp prober, `tls: true`) for other TLS targets and `tcp_connect` for the rest,
  timeout 4 s. The column is `probe_success`; the hint column shows a metric that points at
  the cause where one exists, and the error from the `debug=true` log, which a Prometheus
  alert does not carry.
* **netprobe**: `netprobe diagnose TARGET --json` with the scenario's options: the fault
  code, or `healthy` plus warning codes.

"Distinct" counts the tool's primary value (the one column an alert or a script sees); the
count in brackets also counts its message, reason or log line (with addresses and numbers
blotted out), which a human reading the output would get. Two scenarios are "not told apart"
when a tool gives both the same primary value although they are different situations
(different scenario codes; the two healthy baselines are one situation). A ⚠ marks a row
where netprobe's verdict is not the scenario's code.

Reading the table:

* curl's `telnet://` check cannot exit 0 on an open port whose server stays silent or waits
  for the client (most databases, a held connection): it ends with 28 at `-m`, the code a
  dropped SYN also gives. `-v`'s "Connected to" line tells the two apart ("after
  connecting" in the table); the exit code does not.
* nmap answers one question, the port state; everything above TCP is `open`. With `-Pn` an
  ICMP error, a route error and a silent drop are all `filtered`; `--reason` separates them.
* blackbox `tcp_connect` proves the TCP handshake only, so database faults read
  `probe_success 1`; a `query_response` module per protocol could go further. The debug log
  usually names the cause, but an alert on `probe_success` does not carry it. It dials one
  address of a name (the first of the preferred family), so a name whose first address
  fails reads `probe_success 0` although clients that try the next address get through.
* netprobe's verdict is one code per situation; its summary, evidence and hints (in the JSON
  report and the text ladder) carry what this table leaves out.

{body}"""
    return full, included


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4, help="scenarios measured at once [4]")
    parser.add_argument("--list", action="store_true", help="list scenarios, run no tools")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.jobs > 16:
        parser.error("--jobs must be 1..16")
    for tool in ("ip", "nft", "curl", "nmap", BLACKBOX, "unshare"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} is not installed (scripts/bootstrap --system installs it)")
    started = time.monotonic()
    with (
        build_lab() as lab,
        scenarios(lab) as (chosen, source),
        tempfile.TemporaryDirectory(prefix="np-compare-") as tmp,
    ):
        if args.list:
            for sc in chosen:
                print(f"{sc.code:28} {sc.target:40} {sc.title}")
            return
        # One exporter per name server the scenarios use (it resolves with /etc/resolv.conf),
        # each on its own port of the namespace's loopback; every module is declared before
        # the exporter reads its config.
        exporters: dict[str | None, Blackbox] = {}
        for sc in chosen:
            ns = _opt(sc.cli_args, "--nameserver")
            if ns not in exporters:
                addr = f"127.0.0.1:{19115 + len(exporters)}"
                exporters[ns] = Blackbox(lab, Path(tmp), nameserver=ns, addr=addr)
            _blackbox_module(exporters[ns], sc, parse_target(sc.target))
        with contextlib.ExitStack() as stack:
            for ns in exporters:  # the resolv.conf files _with_resolver writes
                if ns is not None:
                    stack.callback(_resolv_conf(lab, ns.split(":")[0]).unlink, missing_ok=True)
            for bb in exporters.values():
                stack.enter_context(bb.running())
            with ThreadPoolExecutor(args.jobs) as pool:
                rows = list(pool.map(lambda sc: measure(lab, exporters, sc), chosen))
    wall = time.monotonic() - started
    for r in rows:
        print(
            f"{r.seconds:5.1f}s {r.scenario.title[:40]:40} {r.netprobe:28} "
            f"curl {r.curl!s:3} nmap {r.nmap:10} bb {r.blackbox}",
            file=sys.stderr,
        )
    full, included = page(rows, source, wall)
    (DOCS / "comparison.md").write_text(full)
    (DOCS / "comparison-table.md").write_text(included)
    print(summary(rows))
    print(f"wrote docs/comparison.md and docs/comparison-table.md in {wall:.0f} s")


if __name__ == "__main__":
    main()
