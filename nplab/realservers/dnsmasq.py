"""dnsmasq as a test name server: ``dnsmasq -k --conf-file=DIR/dnsmasq.conf`` (foreground),
bound to one address and port, no /etc/resolv.conf, no /etc/hosts, no DHCP.

``records`` are dnsmasq options (``host-record=www.lab.test,127.0.0.1``,
``cname=alias.lab.test,missing.lab.test``, ``address=/wild.lab.test/127.0.0.9``);
``forwarders`` are upstream servers (``server=127.0.0.1#PORT``). With neither a record nor a
forwarder for a name, dnsmasq answers REFUSED (it has no upstream to ask); it has no
per-client query ACL such as BIND's ``allow-query``.
"""

from __future__ import annotations

from nplab.realservers._base import RealServer, is_root, listening, require_server_binary

__all__ = ["Dnsmasq"]


class Dnsmasq(RealServer):
    name = "dnsmasq"

    def __init__(
        self,
        *,
        records: list[str] | None = None,
        forwarders: list[tuple[str, int]] | None = None,
        options: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, netns=netns)
        self.records = records or []
        self.forwarders = forwarders or []
        self.options = options or []

    def configure(self) -> None:
        lines = [
            f"port={self.port}",
            f"listen-address={self.host}",
            "bind-interfaces",
            "no-resolv",
            "no-hosts",
            "no-poll",
            "log-queries",
            f"log-facility={self.dir}/dnsmasq.log",
            *(["user=root"] if is_root() else []),
            *self.records,
            *(f"server={h}#{p}" for h, p in self.forwarders),
            *self.options,
        ]
        (self.dir / "dnsmasq.conf").write_text("\n".join(lines) + "\n")

    def argv(self) -> list[str]:
        return [
            require_server_binary("dnsmasq"),
            "-k",
            f"--conf-file={self.dir / 'dnsmasq.conf'}",
            f"--pid-file={self.dir / 'dnsmasq.pid'}",
        ]

    def ready(self) -> bool:
        return listening(self.host, self.port, udp=True, netns=self.netns)
