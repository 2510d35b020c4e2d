"""netprobe serve: the configuration, the allow list (no SSRF), blackbox exporter's series
(compared with the real prometheus-blackbox-exporter), a real Prometheus scraping it with
blackbox's relabel_configs, the alerting rules (promtool test rules) and the dashboard."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from health_support import free_port, uvicorn_server, wait_until
from prometheus_client.parser import text_string_to_metric_families

from netprobe.exporter import ConfigError, ExporterApp, TargetRefused, parse_config
from netprobe.target import parse_target
from netprobe.testing import CertBook, L7Server, SilentPort, TcpServer, closed_port
from nplab.realservers.prometheus import Prometheus, promtool
from nplab.require import require_binary

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "exporter"

CONFIG = """
allow:
  - "127.0.0.1:*"
  - localhost
modules:
  tcp_connect: {timeout: 3, icmp: false}
  http_2xx: {scheme: http, timeout: 3, icmp: false}
  https_2xx: {scheme: https, timeout: 3, icmp: false, ca_file: %(ca)s}
  slow: {timeout: 10, icmp: false}
"""


@pytest.fixture(scope="module")
def pki() -> Iterator[CertBook]:
    with CertBook() as book:
        yield book


@pytest.fixture(scope="module")
def exporter(pki: CertBook) -> Iterator[str]:
    config = parse_config(CONFIG % {"ca": pki.ca_file})
    with uvicorn_server(ExporterApp(config), lifespan="off") as url:
        yield url


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


# -- The configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("modules: {tcp: {}}", "allow: missing: list the targets /probe may diagnose"),
        ("allow: []\nmodules: {tcp: {}}", "allow: expected a non-empty list"),
        ("allow: [db:5432]\nmodules: {}", "modules: expected a mapping"),
        ("allow: [db:5432]\nmodules: {tcp: {timout: 3}}", "modules.tcp.timout: unknown setting"),
        (
            "allow: [db:5432]\nmodules: {tcp: {timeout: -1}}",
            "modules.tcp: 'timeout': must be greater than 0",
        ),
        ("allow: [db:5432]\nmodules: {tcp: {scheme: ftp}}", "modules.tcp.scheme: 'ftp' is not"),
        (
            "allow: [db:5432]\nmodules: {pg: {password_env: NETPROBE_TEST_NO_SUCH_VAR}}",
            "modules.pg.password_env: the environment has no NETPROBE_TEST_NO_SUCH_VAR",
        ),
        ("allow: ['db:99999']\nmodules: {tcp: {}}", "allow[0]: 'db:99999': port '99999'"),
        ("allow: [10.0.0.0/33]\nmodules: {tcp: {}}", "allow[0]: '10.0.0.0/33': '10.0.0.0/33'"),
        ("allow: [db]\nmodules: {tcp: {}}\nlisten: 9116", "listen: expected 'host:port'"),
        ("allow: [db]\nmodules: {tcp: {}}\nlisten: 'db:9116'", "listen: 'db' is not an IP"),
        ("allow: [db]\nmodules: {tcp: {}}\nmax_concurrent: 0", "max_concurrent: 0 is not"),
        ("allow: [db]\nmodule: {tcp: {}}", "module: unknown key"),
        ("allow: [db\nmodules: {}", "(line 2)"),
        ("- a list", "expected a mapping with 'modules' and 'allow'"),
    ],
)
def test_config_mistakes_are_one_line_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="netprobe.yml")
    shown = str(info.value)
    assert shown.startswith("netprobe.yml: ") and message in shown, shown
    assert "\n" not in shown and "pydantic" not in shown


def test_the_documented_configuration_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_MONITOR_PASSWORD", "s3cret")
    config = parse_config((DOCS / "netprobe.yml").read_text())
    assert set(config.modules) == {"tcp_connect", "http_2xx", "postgres"}
    target = config.modules["postgres"].target("db.internal:5432", config.allow)
    assert target.username == "monitor" and target.password is not None
    assert target.password.get_secret_value() == "s3cret"
    assert "s3cret" not in target.url
    assert config.modules["http_2xx"].options.expect_status == (200, 204)


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("db.internal:5432", True),
        ("db.internal:5433", False),
        ("DB.Internal:5432", True),
        ("x.svc.cluster.local:80", True),
        ("svc.cluster.local:80", False),
        ("x.svc.cluster.local.evil.com:80", False),
        ("10.20.3.4:22", True),
        ("10.21.3.4:22", False),
        ("[fd00::1]:443", True),
        ("[fd00::1]:444", False),
        ("127.0.0.1:9116", False),
        ("169.254.169.254:80", False),
    ],
)
def test_the_allow_list(target: str, allowed: bool) -> None:
    config = parse_config(
        "allow: [db.internal:5432, '*.svc.cluster.local', 10.20.0.0/16, '[fd00::/8]:443']\n"
        "modules: {tcp: {}}"
    )
    module = config.modules["tcp"]
    if allowed:
        assert module.target(target, config.allow).netloc == parse_target(target).netloc
    else:
        with pytest.raises(TargetRefused, match="not in the allow list") as info:
            module.target(target, config.allow)
        assert info.value.reason == "not_allowed"


@pytest.mark.parametrize(
    "target",
    [
        "postgresql://app:hunter2@db.internal:5432/app",
        "https://db.internal:5432/health?token=abc",
        "redis://:hunter2@db.internal:5432",
    ],
)
def test_credentials_never_come_from_the_request(target: str) -> None:
    config = parse_config("allow: ['*']\nmodules: {tcp: {}}")
    with pytest.raises(TargetRefused) as info:
        config.modules["tcp"].target(target, config.allow)
    assert info.value.reason == "not_allowed"
    assert "hunter2" not in str(info.value) and "abc" not in str(info.value)


# -- /probe against real peers ----------------------------------------------------------------


def test_a_refused_target_reads_as_blackbox_and_says_why(exporter: str) -> None:
    port = closed_port()
    r = httpx.get(
        f"{exporter}/probe", params={"target": f"127.0.0.1:{port}", "module": "tcp_connect"}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert _value(r.text, "probe_success") == 0
    assert _value(r.text, "netprobe_fault", layer="l4", code="l4.refused") == 1
    assert _value(r.text, "probe_ip_protocol") == 4
    assert (_value(r.text, "probe_duration_seconds") or 0) > 0


def test_a_healthy_target(exporter: str) -> None:
    with TcpServer() as server:
        r = httpx.get(
            f"{exporter}/probe", params={"target": server.address, "module": "tcp_connect"}
        )
    assert _value(r.text, "probe_success") == 1
    assert "netprobe_fault{" not in r.text  # no sample when healthy
    assert _value(r.text, "netprobe_phase_duration_seconds", phase="connect") is not None


def test_an_https_target_has_the_http_and_certificate_series(exporter: str, pki: CertBook) -> None:
    with L7Server("tls", ssl_context=pki.server_context("valid")) as server:
        r = httpx.get(
            f"{exporter}/probe",
            params={"target": f"localhost:{server.port}/health", "module": "https_2xx"},
        )
        busy = httpx.get(
            f"{exporter}/probe",
            params={"target": f"https://localhost:{server.port}/busy", "module": "https_2xx"},
        )
    assert _value(r.text, "probe_success") == 1, r.text
    assert _value(r.text, "probe_http_status_code") == 200
    assert _value(r.text, "probe_http_ssl") == 1
    expiry = _value(r.text, "probe_ssl_earliest_cert_expiry")
    assert expiry is not None and expiry > time.time() + 300 * 86400
    assert _value(r.text, "probe_tls_version_info", version="TLS 1.3") == 1
    for phase in ("resolve", "connect", "tls", "processing", "transfer"):
        assert _value(r.text, "probe_http_duration_seconds", phase=phase) is not None
    assert _value(busy.text, "probe_http_status_code") == 503
    assert _value(busy.text, "netprobe_fault", layer="l7", code="http.server_error") == 1


def test_outside_the_allow_list_no_connection_is_made(exporter: str) -> None:
    """The SSRF test: a listening server outside the allow list is never connected to."""
    with L7Server("http", host="127.0.0.2") as server:
        r = httpx.get(
            f"{exporter}/probe",
            params={"target": f"127.0.0.2:{server.port}", "module": "tcp_connect"},
        )
        assert r.status_code == 403
        assert r.text == f"target 127.0.0.2:{server.port} is not in the allow list\n"
        assert server.accepted == 0
        secret = httpx.get(
            f"{exporter}/probe",
            params={"target": "postgresql://u:hunter2@127.0.0.1:5432/x", "module": "tcp_connect"},
        )
    assert secret.status_code == 403 and "hunter2" not in secret.text
    metrics = httpx.get(f"{exporter}/metrics").text
    assert (
        _value(metrics, "netprobe_exporter_requests_refused_total", reason="not_allowed") or 0
    ) >= 2


def test_blackbox_errors_for_a_missing_target_or_an_unknown_module(exporter: str) -> None:
    missing = httpx.get(f"{exporter}/probe", params={"module": "tcp_connect"})
    assert (missing.status_code, missing.text) == (400, "Target parameter is missing\n")
    unknown = httpx.get(f"{exporter}/probe", params={"target": "127.0.0.1:1", "module": "nope"})
    assert (unknown.status_code, unknown.text) == (400, "Unknown module 'nope'\n")
    # As blackbox exporter: without module=, http_2xx.
    default = httpx.get(f"{exporter}/probe", params={"target": f"127.0.0.1:{closed_port()}"})
    assert _value(default.text, "probe_http_status_code") == 0


def test_debug_answers_the_report(exporter: str) -> None:
    port = closed_port()
    r = httpx.get(
        f"{exporter}/probe",
        params={"target": f"127.0.0.1:{port}", "module": "tcp_connect", "debug": "true"},
    )
    report = json.loads(r.text)
    assert report["fault"]["code"] == "l4.refused" and report["fault"]["hints"]


def test_the_scrape_timeout_bounds_the_diagnosis(exporter: str, silent_port: SilentPort) -> None:
    """Prometheus's X-Prometheus-Scrape-Timeout-Seconds less 0.5 s, as blackbox exporter:
    the module allows 10 s, the scrape 1.5 s."""
    started = time.monotonic()
    r = httpx.get(
        f"{exporter}/probe",
        params={"target": f"127.0.0.1:{silent_port.port}", "module": "slow"},
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
        timeout=15,
    )
    elapsed = time.monotonic() - started
    assert r.status_code == 200 and elapsed < 1.4, elapsed
    assert _value(r.text, "probe_success") == 0
    assert _value(r.text, "netprobe_deadline_exceeded") == 1


def test_concurrency_is_bounded(silent_port: SilentPort) -> None:
    config = parse_config(
        "allow: ['127.0.0.1:*']\nmax_concurrent: 1\nmodules: {slow: {timeout: 10, icmp: false}}"
    )
    statuses: list[int] = []

    async def scrape(client: httpx.AsyncClient, url: str, scrape_timeout: str) -> None:
        r = await client.get(
            f"{url}/probe",
            params={"target": f"127.0.0.1:{silent_port.port}", "module": "slow"},
            headers={"X-Prometheus-Scrape-Timeout-Seconds": scrape_timeout},
        )
        statuses.append(r.status_code)

    async def both(url: str) -> None:
        # The first holds the only slot for 2.5 s; the second may wait 0.5 s for it.
        async with httpx.AsyncClient(timeout=10) as client, anyio.create_task_group() as tg:
            tg.start_soon(scrape, client, url, "3")
            await anyio.sleep(0.3)
            tg.start_soon(scrape, client, url, "1")

    with uvicorn_server(ExporterApp(config), lifespan="off") as url:
        anyio.run(both, url)
        metrics = httpx.get(f"{url}/metrics").text
    assert sorted(statuses) == [200, 503]
    assert _value(metrics, "netprobe_exporter_requests_refused_total", reason="busy") == 1
    assert _value(metrics, "netprobe_exporter_probes_in_flight") == 0


# -- The same series as the real blackbox exporter --------------------------------------------


@contextlib.contextmanager
def blackbox(config: str) -> Iterator[str]:
    binary = require_binary("prometheus-blackbox-exporter")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="netprobe-bb-") as tmp:
        path = Path(tmp) / "blackbox.yml"
        path.write_text(config)
        proc = subprocess.Popen(
            [binary, f"--config.file={path}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{url}/-/healthy", timeout=1).status_code == 200
                return False

            wait_until(up, timeout=10, what="blackbox exporter to start")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


#: The blackbox series netprobe serve claims to emit the same way (name, type, label names).
CLAIMED = {
    "probe_success",
    "probe_duration_seconds",
    "probe_dns_lookup_time_seconds",
    "probe_ip_protocol",
    "probe_http_status_code",
    "probe_http_duration_seconds",
    "probe_http_ssl",
    "probe_http_version",
    "probe_http_redirects",
    "probe_ssl_earliest_cert_expiry",
    "probe_tls_version_info",
}


def _shape(text: str) -> dict[str, tuple[str, frozenset[tuple[str, ...]]]]:
    """Family name -> (type, the label-name sets of its samples), for the claimed series."""
    out = {}
    for f in text_string_to_metric_families(text):
        if f.name in CLAIMED:
            out[f.name] = (f.type, frozenset(tuple(sorted(s.labels)) for s in f.samples))
    return out


def test_the_same_series_as_blackbox_exporter(exporter: str, pki: CertBook) -> None:
    bb_config = (
        "modules:\n"
        "  tcp_connect: {prober: tcp, timeout: 3s}\n"
        "  https_2xx:\n    prober: http\n    timeout: 3s\n"
        f"    http: {{tls_config: {{ca_file: {pki.ca_file}}}}}\n"
    )
    refused = f"127.0.0.1:{closed_port()}"
    with blackbox(bb_config) as bb, L7Server("tls", ssl_context=pki.server_context("valid")) as s:
        https = f"https://localhost:{s.port}/health"
        cases = [(refused, "tcp_connect"), (https, "https_2xx")]
        for target, module in cases:
            theirs = httpx.get(f"{bb}/probe", params={"target": target, "module": module}).text
            ours = httpx.get(f"{exporter}/probe", params={"target": target, "module": module}).text
            assert _value(theirs, "probe_success") == _value(ours, "probe_success"), target
            their_shape, our_shape = _shape(theirs), _shape(ours)
            assert their_shape == our_shape, (target, their_shape, our_shape)
            if module == "https_2xx":
                for name in ("probe_http_status_code", "probe_http_ssl", "probe_ip_protocol"):
                    assert _value(theirs, name) == _value(ours, name), name
                # Both read the same certificate.
                assert _value(theirs, "probe_ssl_earliest_cert_expiry") == _value(
                    ours, "probe_ssl_earliest_cert_expiry"
                )


# -- A real Prometheus, blackbox's relabel_configs unchanged ----------------------------------


def test_prometheus_scrapes_it_with_blackbox_relabel_configs(exporter: str) -> None:
    refused = f"127.0.0.1:{closed_port()}"
    exporter_address = exporter.removeprefix("http://")
    scrape = (DOCS / "prometheus.yml").read_text()
    scrape = scrape.split("scrape_configs:\n", 1)[1].split("rule_files:")[0]
    scrape = scrape.replace("[db.internal:5432, cache.internal:6379]", f'["{refused}"]')
    scrape = scrape.replace("127.0.0.1:9116   # where", f"{exporter_address}   # where")
    scrape = scrape.replace("[127.0.0.1:9116]", f'["{exporter_address}"]')
    assert refused in scrape and exporter_address in scrape
    with Prometheus(targets=[], scrape_configs=scrape) as prom:
        deadline = time.monotonic() + 20
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not result:
            result = prom.query(f'netprobe_fault{{instance="{refused}"}}')
            time.sleep(0.2)
        up = prom.query('up{job="netprobe"}')
        success = prom.query(f'probe_success{{instance="{refused}"}}')
        own = prom.query("netprobe_exporter_probes_total")
    assert result, "Prometheus never stored netprobe_fault for the refused target"
    (sample,) = result
    assert sample["metric"]["code"] == "l4.refused" and sample["metric"]["layer"] == "l4"
    assert sample["metric"]["job"] == "netprobe" and sample["value"][1] == "1"
    assert up and up[0]["value"][1] == "1"  # the scrape itself succeeded
    assert success and success[0]["value"][1] == "0"
    assert any(s["metric"].get("module") == "tcp_connect" for s in own)


# -- The alerting rules and the dashboard of the docs -----------------------------------------


def test_the_alerting_rules_pass_promtool() -> None:
    require_binary("promtool")
    checked = promtool("check", "rules", str(DOCS / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(DOCS / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_rule_tests_can_fail(tmp_path: Path) -> None:
    """A rule that names the wrong code: the same promtool tests fail."""
    require_binary("promtool")
    (tmp_path / "alerts.yml").write_text(
        (DOCS / "alerts.yml").read_text().replace('code="l4.refused"', 'code="l4.reset"')
    )
    (tmp_path / "alerts_test.yml").write_text((DOCS / "alerts_test.yml").read_text())
    tested = promtool("test", "rules", str(tmp_path / "alerts_test.yml"))
    assert tested.returncode != 0 and "DependencyPortRefused" in tested.stdout + tested.stderr


def _emitted(exporter: str, pki: CertBook) -> set[str]:
    """Every series name the exporter answers with: a refused, a healthy HTTPS and a failing
    HTTPS target, and its own /metrics."""
    names: set[str] = set()
    with L7Server("tls", ssl_context=pki.server_context("expiring_soon")) as s:
        for target, module in [
            (f"127.0.0.1:{closed_port()}", "tcp_connect"),
            (f"localhost:{s.port}/health", "https_2xx"),
            (f"localhost:{s.port}/busy", "https_2xx"),
        ]:
            text = httpx.get(f"{exporter}/probe", params={"target": target, "module": module}).text
            for f in text_string_to_metric_families(text):
                names |= {sample.name for sample in f.samples} | {f.name}
    for f in text_string_to_metric_families(httpx.get(f"{exporter}/metrics").text):
        names |= {sample.name for sample in f.samples} | {f.name}
    return names


_METRIC = re.compile(r"\b(?:probe|netprobe)_[a-z_]+\b")


def test_dashboard_and_rules_use_only_what_the_exporter_emits(exporter: str, pki: CertBook) -> None:
    emitted = _emitted(exporter, pki)
    dashboard = json.loads((DOCS / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert len(exprs) >= 8
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Verdict by dependency", "Time per phase"} <= titles
    rules = (DOCS / "alerts.yml").read_text()
    exprs += [line.split("expr:", 1)[1] for line in rules.splitlines() if "expr:" in line]
    # Metric names, not label values ("netprobe_exporter" is a job name).
    used = {m for e in exprs for m in _METRIC.findall(re.sub(r'"[^"]*"', '""', e))}
    assert {"netprobe_fault", "probe_success", "netprobe_phase_duration_seconds"} <= used
    assert used <= emitted, sorted(used - emitted)
    for p in dashboard["panels"]:
        assert p["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(p["gridPos"])


# -- The command ---------------------------------------------------------------------------------


def test_serve_config_errors_are_one_line_before_listening(tmp_path: Path) -> None:
    bad = tmp_path / "netprobe.yml"
    bad.write_text("modules: {tcp: {}}\n")
    cases = [
        ([str(bad)], f"{bad}: allow: missing"),
        ([str(tmp_path / "none.yml")], "none.yml: cannot read it (No such file or directory)"),
    ]
    for args, message in cases:
        out = subprocess.run(
            [sys.executable, "-m", "netprobe", "serve", "--config", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], out.stderr
        assert "Traceback" not in out.stderr


def test_serve_runs_until_stopped(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "netprobe.yml"
    config.write_text(f"listen: 127.0.0.1:{port}\nallow: ['127.0.0.1:*']\nmodules: {{tcp: {{}}}}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "netprobe", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"http://127.0.0.1:{port}/-/healthy", timeout=1).is_success
            return False

        wait_until(up, timeout=15, what="netprobe serve to start")
        r = httpx.get(
            f"http://127.0.0.1:{port}/probe",
            params={"target": f"127.0.0.1:{closed_port()}", "module": "tcp"},
            timeout=15,
        )
        assert _value(r.text, "netprobe_fault", code="l4.refused") == 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (as it should).
    assert proc.returncode in (0, -15), err
    assert "Traceback" not in err
    assert err.splitlines()[0].startswith(f"netprobe serve: http://127.0.0.1:{port}/probe")
