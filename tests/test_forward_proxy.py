"""Through a forward proxy, as the application goes: real Squid 5.7 (the Debian package) on
loopback, http:// targets forwarded (absolute URL) and https:// targets tunnelled (CONNECT):
allowed, denied by an ACL, the target refusing, the target's name unknown, authentication
required. Each asserts the exact code and that the report names the proxy. Which proxy the
environment selects (HTTP_PROXY / HTTPS_PROXY / NO_PROXY, httpx's rules) is tested purely
against httpx's own reading of the same environment.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx._utils import URLPattern, get_environment_proxies

from netprobe import InvalidOption, diagnose
from netprobe.options import make_options
from netprobe.proxies import environment_proxies, proxy_route
from netprobe.report import Report
from netprobe.steps import ApplicationStep, ProxyStep, TlsStep
from netprobe.target import parse_target
from netprobe.testing import CertBook, DnsServer, L7Server, closed_port
from nplab.realservers.squid import Squid

#: Squid asks port 53 of its name server: a loopback address of its own in this namespace.
DNS_ADDR = "127.0.77.53"
FAST: dict[str, Any] = {"read_timeout": 5.0, "timeout": 10.0, "icmp": False}


@pytest.fixture(scope="module")
def book() -> Iterator[CertBook]:
    with CertBook() as b:
        yield b


@pytest.fixture(scope="module")
def origin(book: CertBook) -> Iterator[dict[str, L7Server]]:
    with L7Server("http") as plain, L7Server("tls", ssl_context=book.server_context()) as tls:
        yield {"http": plain, "https": tls}


@pytest.fixture(scope="module")
def squids() -> Iterator[dict[str, Squid]]:
    with (
        DnsServer({"origin.lab.test": ["127.0.0.1"]}, host=DNS_ADDR, port=53),
        Squid(deny=["127.0.0.2"], nameserver=DNS_ADDR) as open_proxy,
        Squid(users={"probe": "s3cret"}, nameserver=DNS_ADDR) as auth_proxy,
    ):
        yield {"open": open_proxy, "auth": auth_proxy}


def url(proxy: Squid, user: str = "") -> str:
    return f"http://{user}127.0.0.1:{proxy.port}"


def code_of(report: Report) -> str | None:
    return report.fault.code if report.fault else None


def proxy_step(report: Report) -> ProxyStep:
    step = report.step(ProxyStep)
    assert step is not None, report.steps
    return step


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_allowed(
    scheme: str, squids: dict[str, Squid], origin: dict[str, L7Server], book: CertBook
) -> None:
    server = origin[scheme]
    report = await diagnose(
        f"{scheme}://localhost:{server.port}/health",
        proxy=url(squids["open"]),
        ca_file=book.ca_file,
        **FAST,
    )
    assert report.ok, report.fault
    step = proxy_step(report)
    assert step.url == url(squids["open"]) and step.source == "proxy option"
    if scheme == "https":
        assert step.mode == "connect" and step.http_status == 200
        tls = report.step(TlsStep)
        assert tls is not None and tls.server_name == "localhost"  # TLS with the target
    else:
        assert step.mode == "forward"
        app = report.step(ApplicationStep)
        assert app is not None and app.http is not None
        assert "squid" in app.http.headers.get("via", "")  # the answer came through Squid


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_denied(scheme: str, squids: dict[str, Squid], origin: dict[str, L7Server]) -> None:
    report = await diagnose(
        f"{scheme}://127.0.0.2:{origin[scheme].port}/health", proxy=url(squids["open"]), **FAST
    )
    assert code_of(report) == "proxy.denied", report.fault
    assert report.fault is not None
    assert url(squids["open"]) in report.fault.summary
    assert "ERR_ACCESS_DENIED" in report.fault.summary


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_target_refused(scheme: str, squids: dict[str, Squid]) -> None:
    report = await diagnose(
        f"{scheme}://127.0.0.1:{closed_port()}/health", proxy=url(squids["open"]), **FAST
    )
    assert code_of(report) == "proxy.connect_failed", report.fault
    assert report.fault is not None
    assert "ERR_CONNECT_FAIL 111" in report.fault.summary
    assert "refused (ECONNREFUSED)" in report.fault.summary


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_target_name_unknown(scheme: str, squids: dict[str, Squid]) -> None:
    """Squid 5.7 reports an NXDOMAIN as 502 ERR_READ_ERROR, not ERR_DNS_FAIL (FINDINGS.md)."""
    report = await diagnose(f"{scheme}://nope.lab.test/health", proxy=url(squids["open"]), **FAST)
    assert code_of(report) == "proxy.connect_failed", report.fault
    assert report.fault is not None
    # GET: 502 ERR_READ_ERROR; CONNECT: 500 ERR_CANNOT_FORWARD (Squid 5.7, never ERR_DNS_FAIL).
    said = "ERR_READ_ERROR" if scheme == "http" else "ERR_CANNOT_FORWARD"
    assert said in report.fault.summary, report.fault.summary
    # The name is the proxy's to resolve: netprobe does not look it up itself.
    assert report.steps[0].name == "dns" and report.steps[0].host == "127.0.0.1"


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_authentication(
    scheme: str, squids: dict[str, Squid], origin: dict[str, L7Server], book: CertBook
) -> None:
    target = f"{scheme}://localhost:{origin[scheme].port}/health"
    report = await diagnose(target, proxy=url(squids["auth"]), ca_file=book.ca_file, **FAST)
    assert code_of(report) == "proxy.auth_required", report.fault
    assert report.fault is not None
    assert 'Basic realm="netprobe-squid"' in report.fault.hints[0]
    wrong = await diagnose(
        target, proxy=url(squids["auth"], "probe:nope@"), ca_file=book.ca_file, **FAST
    )
    assert code_of(wrong) == "proxy.auth_required"
    assert wrong.fault is not None and "rejected the credentials" in wrong.fault.summary
    good = await diagnose(
        target, proxy=url(squids["auth"], "probe:s3cret@"), ca_file=book.ca_file, **FAST
    )
    assert good.ok, good.fault
    assert proxy_step(good).credentials_sent
    assert "s3cret" not in good.model_dump_json()


@pytest.mark.anyio
async def test_the_environment_is_followed(
    squids: dict[str, Squid], origin: dict[str, L7Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today an application with HTTPS_PROXY set reaches a denied path through Squid; the
    diagnosis used to go direct and call it healthy."""
    target = f"http://127.0.0.2:{origin['http'].port}/health"
    monkeypatch.setenv("HTTP_PROXY", url(squids["open"]))
    report = await diagnose(target, **FAST)
    assert code_of(report) == "proxy.denied", report.fault
    assert proxy_step(report).source == "HTTP_PROXY"
    # Direct (NO_PROXY, trust_env=False, proxy="none"): nothing listens on 127.0.0.2 itself.
    monkeypatch.setenv("NO_PROXY", "127.0.0.2")
    direct = [await diagnose(target, **FAST)]
    monkeypatch.delenv("NO_PROXY")
    direct += [await diagnose(target, trust_env=False, **FAST)]
    direct += [await diagnose(target, proxy="none", **FAST)]
    for report in direct:
        assert report.step(ProxyStep) is None and code_of(report) == "l4.refused"
    allowed = f"http://localhost:{origin['http'].port}/health"
    assert proxy_step(await diagnose(allowed, **FAST)).source == "HTTP_PROXY"


@pytest.mark.anyio
async def test_proxy_unreachable_is_about_the_proxy(origin: dict[str, L7Server]) -> None:
    dead = closed_port()
    report = await diagnose(
        f"https://localhost:{origin['https'].port}/", proxy=f"http://127.0.0.1:{dead}", **FAST
    )
    assert code_of(report) == "l4.refused"
    assert report.fault is not None
    assert report.fault.summary.startswith(f"The HTTP proxy http://127.0.0.1:{dead}")
    assert f"nothing listens on port {dead}" in report.fault.summary


@pytest.mark.anyio
async def test_databases_ignore_http_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    report = await diagnose(f"127.0.0.1:{closed_port()}", **FAST)
    assert report.step(ProxyStep) is None


@pytest.mark.anyio
async def test_squid_diagnosed_as_the_service(squids: dict[str, Squid]) -> None:
    report = await diagnose(f"http://127.0.0.1:{squids['open'].port}/", **FAST)
    assert code_of(report) == "http.client_error"
    assert report.fault is not None and "is an HTTP forward proxy" in report.fault.summary


def test_cli_names_the_proxy(squids: dict[str, Squid]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netprobe.cli", "diagnose", f"https://127.0.0.2:{closed_port()}/",
         "--proxy", url(squids["open"]), "--no-icmp"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1, out.stderr
    assert f"via {url(squids['open'])} (proxy option" in out.stdout
    assert "FAULT proxy.denied" in out.stdout


# -- which proxy: httpx's rules -----------------------------------------------------------

ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"HTTP_PROXY": "http://p1:3128"},
    {"HTTPS_PROXY": "p2:8080"},
    {"ALL_PROXY": "http://p3:3128", "http_proxy": "http://p4:3128"},
    {"HTTP_PROXY": "http://upper:1", "http_proxy": "http://lower:2"},
    {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"},
    {"ALL_PROXY": "http://p:1", "NO_PROXY": "example.com,.internal,10.0.0.7,::1,localhost"},
    {"ALL_PROXY": "http://p:1", "no_proxy": "https://api.example.org,http://x.test:8080"},
    {"HTTPS_PROXY": "http://user:pw@p:1", "NO_PROXY": " , "},
]
TARGETS = [
    "http://example.com/",
    "https://www.example.com/",
    "https://wwwexample.com/",
    "http://svc.internal/",
    "http://internal/",
    "http://10.0.0.7/",
    "http://10.0.0.8:8080/",
    "https://[::1]:8443/",
    "http://localhost:8000/",
    "https://api.example.org/",
    "http://api.example.org/",
    "http://x.test:8080/",
    "http://x.test:8081/",
]


def httpx_proxy(
    environ: dict[str, str], url_text: str, monkeypatch: pytest.MonkeyPatch
) -> str | None:
    """What httpx itself chooses for ``url_text`` in ``environ`` (its mounts, most specific
    pattern first): the proxy URL, or None (direct)."""
    for name in [n for n in list(__import__("os").environ) if n.lower().endswith("_proxy")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    mounts = sorted((URLPattern(k), v) for k, v in get_environment_proxies().items())
    target = httpx.URL(url_text)
    for pattern, proxy in mounts:
        if pattern.matches(target):
            return proxy
    return None


@pytest.mark.parametrize("environ", ENVIRONMENTS)
def test_environment_rules_are_httpx_s(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    opts = make_options(None)
    for text in TARGETS:
        expected = httpx_proxy(environ, text, monkeypatch)
        route = proxy_route(parse_target(text), opts, environ)
        got = None if route is None else f"http://{route.netloc}"
        if expected is not None:
            expected = expected.replace("user:pw@", "")
        assert got == expected, (environ, text)


def test_environment_variables_read_as_urllib_does() -> None:
    env = {"HTTP_PROXY": "http://a:1", "http_proxy": "http://b:2", "NO_PROXY": "x", "ftp_proxy": ""}
    assert environment_proxies(env) == {
        "http": ("http://b:2", "http_proxy"),
        "no": ("x", "NO_PROXY"),
    }
    assert environment_proxies({"HTTPS_PROXY": "http://a:1", "https_proxy": ""}) == {}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("socks5://p:1080", "only http:// proxies are supported"),
        ("https://p:443", "only http:// proxies are supported"),
        ("http://", "only http:// proxies"),
        ("p:3128", "must be 'http://"),
    ],
)
def test_bad_proxy_option(value: str, fragment: str) -> None:
    with pytest.raises(InvalidOption) as info:
        route = proxy_route(parse_target("https://x/"), make_options(None, proxy=value), {})
        del route
    assert fragment in str(info.value) or "must be 'http://" in str(info.value)


def test_bad_proxy_environment_is_named() -> None:
    with pytest.raises(InvalidOption, match=r"HTTPS_PROXY 'socks5://\*\*\*@p:1080'"):
        proxy_route(
            parse_target("https://x/"), make_options(None), {"HTTPS_PROXY": "socks5://u:pw@p:1080"}
        )


def test_credentials_never_shown() -> None:
    route = proxy_route(
        parse_target("https://x/"), make_options(None), {"HTTPS_PROXY": "http://u:pw@p:1"}
    )
    assert route is not None
    assert "pw" not in repr(route) and "pw" not in route.url
    assert route.authorization() == "Basic dTpwdw=="
