"""Squid as a forward proxy (``squid -N -f CONF``: foreground, no worker kids): memory cache
only, its pid, logs and core directory in its own directory, ``http_port`` on one address.

    with Squid(deny=["127.0.0.2"]) as proxy:          # requests to 127.0.0.2 get 403
        ... curl -x http://127.0.0.1:{proxy.port} http://127.0.0.1:PORT/

``hosts`` is Squid's hosts file (names it resolves without DNS). Squid's own DNS client always
asks port 53 of ``dns_nameservers``: to test ``ERR_DNS_FAIL`` against a test name server, run
Squid and that server in a ``LoopbackNamespace`` (port 53 free there). ``users`` turns on
basic proxy authentication (``basic_ncsa_auth`` with an htpasswd file made here).
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from nplab.realservers._base import RealServer, require_server_binary

__all__ = ["NCSA_AUTH", "Squid"]

NCSA_AUTH = "/usr/lib/squid/basic_ncsa_auth"


class Squid(RealServer):
    name = "squid"
    # Squid's orderly shutdown takes 2 s even with shutdown_lifetime 0; it keeps nothing
    # (memory cache only) outside the directory stop() removes.
    stop_signal = signal.SIGKILL
    start_timeout = 30.0

    def __init__(
        self,
        *,
        deny: list[str] | None = None,
        users: dict[str, str] | None = None,
        hosts: dict[str, str] | None = None,
        nameserver: str = "127.0.0.1",
        extra: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, netns=netns)
        self.deny = deny or []
        self.users = users or {}
        self.hosts = hosts or {}
        self.nameserver = nameserver
        self.extra = extra or []

    def configure(self) -> None:
        d = self.dir
        (d / "hosts").write_text(
            "127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for name, ip in self.hosts.items())
        )
        lines = [
            f"http_port {self.host}:{self.port}",
            f"pid_filename {d}/squid.pid",
            f"cache_log {d}/cache.log",
            f"access_log stdio:{d}/access.log squid",
            "cache_store_log none",
            f"coredump_dir {d}",
            "cache_mem 8 MB",
            "cache deny all",
            "visible_hostname netprobe-squid",
            f"hosts_file {d}/hosts",
            f"dns_nameservers {self.nameserver}",
            # Its DNS client sockets (and ICP/HTCP, off) on this address, not 0.0.0.0 / [::].
            f"udp_incoming_address {self.host}",
            f"udp_outgoing_address {self.host}",
            "dns_timeout 3 seconds",
            "connect_timeout 3 seconds",
            "shutdown_lifetime 0 seconds",
            "cache_effective_user proxy",
            "pinger_enable off",
            "logfile_rotate 0",
            "acl CONNECT method CONNECT",
        ]
        if self.deny:
            lines.append(f"acl denied dst {' '.join(self.deny)}")
            lines.append("http_access deny denied")
        if self.users:
            self._write_passwords(d / "passwd")
            lines += [
                f"auth_param basic program {NCSA_AUTH} {d}/passwd",
                "auth_param basic children 1 startup=1 idle=1",
                "auth_param basic realm netprobe-squid",
                "acl authenticated proxy_auth REQUIRED",
                "http_access deny !authenticated",
            ]
        lines += [*self.extra, "http_access allow all"]
        (d / "squid.conf").write_text("\n".join(lines) + "\n")
        # Squid starts as root and drops to cache_effective_user for its logs.
        self.chown_dir("proxy")

    def _write_passwords(self, path: Path) -> None:
        rows = []
        for user, password in self.users.items():
            hashed = subprocess.run(
                ["openssl", "passwd", "-apr1", password],
                check=True, capture_output=True, text=True, timeout=10,
            ).stdout.strip()  # fmt: skip
            rows.append(f"{user}:{hashed}\n")
        path.write_text("".join(rows))

    def argv(self) -> list[str]:
        squid = require_server_binary("squid")
        return [squid, "-N", "-d", "1", "-f", str(self.dir / "squid.conf")]
