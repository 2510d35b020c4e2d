"""nginx (Debian's ``/usr/sbin/nginx``) in the foreground with a config of sites made for a
test: static 200, TLS with a given chain, ``ssl_verify_client on``, reverse proxy
(``proxy_pass`` http or https, ``grpc_pass``) with short timeouts, SNI-only virtual hosts, and
a TLS 1.0-only server.

    with Nginx() as web:
        web.site("static", "return 200 'ok\\n';")   # before start: sites are config
    ...
    web = Nginx()
    web.site("api", proxy("127.0.0.1:9", connect_timeout=0.5))
    web.start(); web.port_of("api")

Every site gets its own port unless ``same_port_as`` names another (virtual hosts on one
port, told apart by ``server_name``). nginx runs ``-p DIR -c DIR/nginx.conf -e
DIR/error.log -g 'daemon off;'``: pid, logs and temp files stay in DIR.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from nplab.realservers._base import RealServer, free_port, is_root, listening
from nplab.realservers.pki import TlsFiles

__all__ = ["Nginx", "Site", "grpc_proxy", "proxy", "static"]


def static(body: str = "ok", status: int = 200) -> str:
    """A location answering every request with ``status`` and ``body`` (text/plain)."""
    escaped = body.replace("\\", "\\\\").replace("'", "\\'")
    return f"default_type text/plain; location / {{ return {status} '{escaped}\\n'; }}"


def proxy(
    upstream: str,
    *,
    https: bool = False,
    connect_timeout: float = 1.0,
    read_timeout: float = 2.0,
    verify_ca: str | None = None,
    upstream_name: str | None = None,
) -> str:
    """``proxy_pass`` to ``upstream`` (host:port). With ``https`` the upstream is TLS, and
    with ``verify_ca`` nginx verifies its certificate (``proxy_ssl_verify on``) for
    ``upstream_name`` (default: the host part)."""
    lines = [
        f"proxy_connect_timeout {_ms(connect_timeout)};",
        f"proxy_read_timeout {_ms(read_timeout)};",
        f"proxy_send_timeout {_ms(read_timeout)};",
        "proxy_next_upstream off;",
    ]
    if https and verify_ca:
        lines += [
            "proxy_ssl_verify on;",
            f"proxy_ssl_trusted_certificate {verify_ca};",
            f"proxy_ssl_name {upstream_name or upstream.rsplit(':', 1)[0]};",
            "proxy_ssl_server_name on;",
        ]
    scheme = "https" if https else "http"
    lines.append(f"location / {{ proxy_pass {scheme}://{upstream}; }}")
    return " ".join(lines)


def grpc_proxy(upstream: str, *, connect_timeout: float = 1.0, read_timeout: float = 2.0) -> str:
    """``grpc_pass`` to ``upstream`` (plain HTTP/2); the site must be ``http2=True``."""
    return (
        f"grpc_connect_timeout {_ms(connect_timeout)}; grpc_read_timeout {_ms(read_timeout)}; "
        f"location / {{ grpc_pass grpc://{upstream}; }}"
    )


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


@dataclass
class Site:
    """One ``server {}`` block."""

    label: str
    directives: str
    tls: TlsFiles | None = None
    #: verify client certificates against this CA file (``ssl_verify_client on``)
    client_ca: str | None = None
    server_name: str | None = None
    default: bool = False
    http2: bool = False
    #: e.g. "TLSv1" for a TLS 1.0-only server
    protocols: str | None = None
    #: e.g. "DEFAULT:@SECLEVEL=0" (needed by OpenSSL 3 for TLS 1.0)
    ciphers: str | None = None
    same_port_as: str | None = None
    port: int = 0
    extra: list[str] = field(default_factory=list)

    def render(self, host: str) -> str:
        listen = f"{host}:{self.port}" if ":" not in host else f"[{host}]:{self.port}"
        flags = [" ssl" if self.tls else "", " http2" if self.http2 else ""]
        flags.append(" default_server" if self.default else "")
        lines = [f"listen {listen}{''.join(flags)};"]
        lines.append(f"server_name {self.server_name or '_'};")
        if self.tls:
            lines += [
                f"ssl_certificate {self.tls.chain};",
                f"ssl_certificate_key {self.tls.key};",
            ]
            if self.protocols:
                lines.append(f"ssl_protocols {self.protocols};")
            if self.ciphers:
                lines.append(f"ssl_ciphers {self.ciphers};")
            if self.client_ca:
                lines += [f"ssl_client_certificate {self.client_ca};", "ssl_verify_client on;"]
        lines += self.extra
        lines.append(self.directives)
        body = "\n    ".join(lines)
        return f"  server {{\n    {body}\n  }}\n"


class Nginx(RealServer):
    """nginx with the sites added by ``site()`` before ``start()``."""

    name = "nginx"

    def __init__(self, *, host: str = "127.0.0.1", netns: str | None = None) -> None:
        super().__init__(host=host, netns=netns, port=0)
        self.sites: dict[str, Site] = {}

    def site(self, label: str, directives: str, **options: object) -> Nginx:
        """Add a ``server {}`` block (see ``Site`` for the options; ``port=`` fixes its
        port, else a free one is taken); returns self."""
        site = Site(label, directives, **options)  # type: ignore[arg-type]
        if site.same_port_as:
            site.port = self.sites[site.same_port_as].port
        elif not site.port:
            site.port = free_port(self.host)
        self.sites[label] = site
        return self

    def port_of(self, label: str) -> int:
        return self.sites[label].port

    def url(self, label: str, path: str = "/", *, scheme: str | None = None) -> str:
        site = self.sites[label]
        scheme = scheme or ("https" if site.tls else "http")
        return f"{scheme}://{self.host}:{site.port}{path}"

    @property
    def error_log(self) -> str:
        try:
            return (self.dir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def configure(self) -> None:
        assert self.sites, "add at least one site before start()"
        self.port = next(iter(self.sites.values())).port
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        d = self.dir
        user = "user root;\n" if is_root() else ""
        conf = (
            f"{user}worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"  access_log {d}/access.log;\n"
            f"  client_body_temp_path {d}/tmp/client_body;\n  proxy_temp_path {d}/tmp/proxy;\n"
            f"  fastcgi_temp_path {d}/tmp/fastcgi;\n  uwsgi_temp_path {d}/tmp/uwsgi;\n"
            f"  scgi_temp_path {d}/tmp/scgi;\n"
            + "".join(site.render(self.host) for site in self.sites.values())
            + "}\n"
        )
        (d / "nginx.conf").write_text(conf)
        os.chmod(d / "nginx.conf", 0o644)

    def argv(self) -> list[str]:
        from nplab.realservers._base import require_server_binary

        nginx = require_server_binary("nginx")
        d = str(self.dir)
        return [nginx, "-p", d, "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log",
                "-g", "daemon off;"]  # fmt: skip

    def ready(self) -> bool:
        ports = {site.port for site in self.sites.values()}
        return all(listening(self.host, port, netns=self.netns) for port in ports)
