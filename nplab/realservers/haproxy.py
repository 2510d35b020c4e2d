"""HAProxy (``haproxy -f CFG -db``: foreground, no daemon) with ``listen`` sections made for a
test: http or tcp mode, backends (alive or dead), health checks short enough for tests, and a
TLS bind that may require a client certificate (``verify required ca-file ...``).

    lb = HAProxy()
    lb.listen("web", mode="http", servers=["127.0.0.1:9"], check=True)
    with lb:
        lb.wait_backends_down("web")       # health checks have marked every server down
        lb.port_of("web")
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nplab.realservers._base import RealServer, free_port, listening, require_server_binary
from nplab.realservers.pki import TlsFiles

__all__ = ["HAProxy", "Listen"]


@dataclass
class Listen:
    label: str
    mode: str
    servers: list[str]
    check: bool = False
    tls: TlsFiles | None = None
    client_ca: str | None = None
    #: "TLSv1.2" pins the bind to that version (ssl-min-ver and ssl-max-ver)
    tls_version: str | None = None
    port: int = 0
    extra: list[str] = field(default_factory=list)

    def render(self, host: str) -> str:
        bind = f"bind {host}:{self.port}"
        if self.tls:
            bind += f" ssl crt {self.tls.combined} alpn http/1.1"
            if self.client_ca:
                bind += f" verify required ca-file {self.client_ca}"
            if self.tls_version:
                bind += f" ssl-min-ver {self.tls_version} ssl-max-ver {self.tls_version}"
        lines = [f"listen {self.label}", f"  mode {self.mode}", f"  {bind}"]
        lines += [f"  {line}" for line in self.extra]
        for i, server in enumerate(self.servers):
            check = " check inter 200ms fall 1 rise 1" if self.check else ""
            lines.append(f"  server s{i} {server}{check}")
        return "\n".join(lines) + "\n"


class HAProxy(RealServer):
    """HAProxy with the sections added by ``listen()`` before ``start()``."""

    name = "haproxy"

    def __init__(self, *, host: str = "127.0.0.1", netns: str | None = None) -> None:
        super().__init__(host=host, netns=netns, port=0)
        self.sections: dict[str, Listen] = {}
        self.stats_port = free_port(host)

    def listen(self, label: str, *, mode: str, servers: list[str], **options: object) -> HAProxy:
        """Add a ``listen`` section on its own port (``port=`` fixes it, else a free one is
        taken); returns self."""
        section = Listen(label, mode, servers, **options)  # type: ignore[arg-type]
        section.port = section.port or free_port(self.host)
        self.sections[label] = section
        return self

    def port_of(self, label: str) -> int:
        return self.sections[label].port

    def configure(self) -> None:
        assert self.sections, "add at least one listen section before start()"
        self.port = next(iter(self.sections.values())).port
        conf = (
            "global\n"
            "  log stdout format raw local0 info\n"
            "  nbthread 1\n"
            "defaults\n"
            "  log global\n"
            "  option httplog\n"
            "  timeout connect 1s\n"
            "  timeout client 5s\n"
            "  timeout server 5s\n"
            "  timeout check 500ms\n"
            "  retries 0\n"
            # The HTTP stats page (csv: ;csv) tells the tests when health checks have run.
            f"listen stats\n  mode http\n  bind {self.host}:{self.stats_port}\n"
            "  stats enable\n  stats uri /stats\n"
            + "".join(s.render(self.host) for s in self.sections.values())
        )
        (self.dir / "haproxy.cfg").write_text(conf)

    def argv(self) -> list[str]:
        return [require_server_binary("haproxy"), "-f", str(self.dir / "haproxy.cfg"), "-db"]

    def ready(self) -> bool:
        ports = [self.stats_port, *(s.port for s in self.sections.values())]
        return all(listening(self.host, port, netns=self.netns) for port in ports)

    def server_states(self, label: str) -> list[str]:
        """The status column of the stats CSV for ``label``'s servers (UP, DOWN, no check)."""
        import urllib.request

        assert self.netns is None, "the stats page is read over loopback only"
        with urllib.request.urlopen(
            f"http://{self.host}:{self.stats_port}/stats;csv", timeout=3
        ) as resp:
            rows = resp.read().decode().splitlines()
        header = rows[0].lstrip("# ").split(",")
        status = header.index("status")
        return [
            row.split(",")[status]
            for row in rows[1:]
            if row.startswith(f"{label},") and row.split(",")[1] not in ("FRONTEND", "BACKEND")
        ]

    def wait_backends_down(self, label: str, timeout: float = 5.0) -> None:
        """Wait until every health-checked server of ``label`` is DOWN."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = self.server_states(label)
            if states and all(s.startswith("DOWN") for s in states):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{label}: servers not down after {timeout} s: {states}")
