"""The forward proxy an HTTP target is reached through, as the application would reach it.

An application that uses httpx (``trust_env=True``, its default), requests, curl or urllib goes
through ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` unless ``NO_PROXY`` names the host; a
diagnosis that connects directly would test a path the application never uses. This module
picks the proxy with **httpx's rules** (``httpx._utils.get_environment_proxies`` and
``URLPattern``, httpx 0.28), re-stated here so that no private API is imported:

* the variables are read as ``urllib.request.getproxies_environment`` reads them: any case,
  the lower-case one winning when both are set, an empty one unsetting it;
* ``http://`` targets use ``http_proxy``, ``https://`` targets ``https_proxy``, both fall back
  on ``all_proxy``; a value without a scheme means ``http://``;
* ``NO_PROXY`` (comma separated): ``*`` turns every proxy off; ``example.com`` matches the
  host and its subdomains, ``.example.com`` only subdomains; an IP address or ``localhost``
  matches exactly; an entry with a scheme (``http://host``) matches that URL form only; the
  most specific entry wins (one with a port first, then the longest host).

The ``proxy`` option overrides the environment (as ``httpx.Client(proxy=...)`` does);
``proxy="none"`` goes direct, and ``trust_env=False`` ignores the environment. Only HTTP
targets use a proxy: database, gRPC and plain TCP targets connect directly (their drivers do
not follow HTTP_PROXY). Pure: the environment is passed in; bad values raise
:class:`~netprobe.InvalidOption` before any I/O.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from ._errors import InvalidOption
from .options import Options
from .target import Target

__all__ = ["ProxyRoute", "environment_proxies", "proxy_route"]


@dataclass(frozen=True)
class ProxyRoute:
    """The proxy to go through: where it is, where it came from, its credentials."""

    host: str
    port: int
    #: "HTTPS_PROXY", "http_proxy", "ALL_PROXY", ... or "proxy option"
    source: str
    username: str | None = None
    password: str | None = None

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """``http://host:port``: never the credentials."""
        return f"http://{self.netloc}"

    def authorization(self) -> str | None:
        """The ``Proxy-Authorization`` value (Basic, RFC 7617), when credentials were given."""
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def __repr__(self) -> str:
        user = f"{self.username}:***@" if self.username is not None else ""
        return f"ProxyRoute(http://{user}{self.netloc}, source={self.source!r})"


def environment_proxies(environ: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """``*_proxy`` variables as ``urllib.request.getproxies_environment`` reads them: scheme
    -> (value, the variable's name). Lower-case names win; an empty value unsets."""
    found: dict[str, tuple[str, str]] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name.lower()[:-6]] = (value, name)
    for name, value in environ.items():
        if name.endswith("_proxy"):  # the lower-case spelling, second: it wins
            if value:
                found[name.lower()[:-6]] = (value, name)
            else:
                found.pop(name.lower()[:-6], None)
    return found


def proxy_route(target: Target, options: Options, environ: Mapping[str, str]) -> ProxyRoute | None:
    """The proxy ``target`` is reached through, or None (direct).

    Raises:
        InvalidOption: a proxy URL netprobe cannot use (not ``http://``: a SOCKS proxy or
            TLS to the proxy), named with where it came from.
    """
    if target.protocol != "http":
        return None
    if options.proxy is not None:
        if options.proxy.strip().lower() == "none":
            return None
        return _parse(options.proxy, "proxy option")
    if not options.trust_env:
        return None
    found = environment_proxies(environ)
    scheme = "https" if target.tls else "http"
    chosen = found.get(scheme) or found.get("all")
    if chosen is None:
        return None
    if _excluded(target, scheme, found.get("no", ("", ""))[0]):
        return None
    value, name = chosen
    return _parse(value if "://" in value else f"http://{value}", name)


def _parse(url: str, source: str) -> ProxyRoute:
    parts = urlsplit(url.strip())
    where = f"{source} {_redacted(url)!r}"
    if parts.scheme.lower() != "http":
        raise InvalidOption(
            f"{where}: only http:// proxies are supported (not {parts.scheme}://); use "
            "proxy='none' (--proxy none) to go direct"
        )
    if not parts.hostname:
        raise InvalidOption(f"{where}: no proxy host")
    try:
        port = parts.port or 80  # httpx: an http:// URL's default port
    except ValueError:
        raise InvalidOption(f"{where}: the port is not a number in 1-65535") from None
    return ProxyRoute(
        host=parts.hostname,
        port=port,
        source=source,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _redacted(url: str) -> str:
    return re.sub(r"//[^/@]*@", "//***@", url)


def _excluded(target: Target, scheme: str, no_proxy: str) -> bool:
    """Whether NO_PROXY names the target (httpx's mounts, most specific first)."""
    patterns: list[tuple[tuple[int, int, int], str, str, int | None]] = []
    for entry in (h.strip() for h in no_proxy.split(",")):
        if entry == "*":
            return True
        if not entry:
            continue
        if "://" in entry:
            parts = urlsplit(entry)
            p_scheme = "" if parts.scheme == "all" else parts.scheme
            host = parts.hostname or ""
            port = parts.port
        else:
            p_scheme, port = "", None
            host = entry
            if _is_ip(entry) or entry.lower() == "localhost":
                host = entry.split("/")[0].strip("[]")
            else:
                host = f"*{entry}"
        priority = (0 if port is not None else 1, -len(host), -len(p_scheme))
        patterns.append((priority, p_scheme, host.lower(), port))
    for _, p_scheme, host, port in sorted(patterns, key=lambda p: p[0]):
        if p_scheme and p_scheme != scheme:
            continue
        if port is not None and port != target.port:
            continue
        if host and not _host_matches(host, target.host.lower()):
            continue
        return True
    return False


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return re.fullmatch(rf".+\.{re.escape(pattern[2:])}", host) is not None
    if pattern.startswith("*"):
        return re.fullmatch(rf"(.+\.)?{re.escape(pattern[1:])}", host) is not None
    return pattern == host


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.split("/")[0].strip("[]"))
    except ValueError:
        return False
    return True
