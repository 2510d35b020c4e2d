"""BIND 9 (``named -g -4 -n 1 -c CONF``: foreground, IPv4, one worker) with its own directory:
authoritative zones for the tests, an ``allow-query`` ACL, a resolver that forwards to given
servers (``forward only``), and per-view answers.

No query of a named started here ever leaves loopback (or the namespace it runs in):
``forward only`` with explicit forwarders, a root hint naming 127.0.0.1 (so that even a
priming query stays local), ``dnssec-validation no`` (no trust-anchor fetch), ``-4``.

    with Bind(zones={"lab.test": "www A 127.0.0.1\\n"}) as ns:
        ns.port            # UDP and TCP, on 127.0.0.1
"""

from __future__ import annotations

from nplab.realservers._base import RealServer, listening, require_server_binary

__all__ = ["Bind", "zone_file"]


def zone_file(origin: str, records: str, *, ttl: int = 60) -> str:
    """A zone with SOA and NS at its apex, then ``records`` (zone-file lines relative to the
    origin)."""
    return (
        f"$ORIGIN {origin.rstrip('.')}.\n$TTL {ttl}\n"
        f"@ IN SOA ns1 hostmaster 1 3600 600 86400 {ttl}\n"
        "@ IN NS ns1\nns1 IN A 127.0.0.1\n" + records.strip() + "\n"
    )


class Bind(RealServer):
    """named with ``zones`` (name -> records) and ``options`` (extra lines in ``options {}``).

    ``forwarders`` (host, port) pairs make it a recursive resolver that forwards every name
    outside its zones there; ``allow_query`` is the ACL of who may query (``"none"``: every
    client is REFUSED). ``views`` replaces ``zones``: view name -> (match-clients, zones).
    """

    name = "bind"
    start_timeout = 30.0

    def __init__(
        self,
        *,
        zones: dict[str, str] | None = None,
        forwarders: list[tuple[str, int]] | None = None,
        allow_query: str = "any",
        options: str = "",
        views: dict[str, tuple[str, dict[str, str]]] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
    ) -> None:
        super().__init__(host=host, port=port, netns=netns)
        self.zones = zones or {}
        self.forwarders = forwarders or []
        self.allow_query = allow_query
        self.options = options
        self.views = views

    def _zone_stanzas(self, zones: dict[str, str], tag: str) -> str:
        out = []
        for origin, records in zones.items():
            path = self.dir / f"{tag}{origin.strip('.') or 'root'}.zone"
            path.write_text(zone_file(origin, records))
            out.append(f'zone "{origin.rstrip(".")}" {{ type primary; file "{path}"; }};\n')
        return "".join(out)

    def configure(self) -> None:
        d = self.dir
        (d / "root.hint").write_text(". 3600 IN NS local.\nlocal. 3600 IN A 127.0.0.1\n")
        recursion = "yes" if self.forwarders else "no"
        forward = ""
        if self.forwarders:
            servers = " ".join(f"{h} port {p};" for h, p in self.forwarders)
            forward = f"  forward only;\n  forwarders {{ {servers} }};\n"
        conf = (
            "options {\n"
            f'  directory "{d}";\n  pid-file "{d}/named.pid";\n'
            f'  session-keyfile "{d}/session.key";\n  managed-keys-directory "{d}";\n'
            f"  listen-on port {self.port} {{ {self.host}; }};\n  listen-on-v6 {{ none; }};\n"
            f"  allow-query {{ {self.allow_query}; }};\n"
            f"  recursion {recursion};\n  allow-recursion {{ any; }};\n{forward}"
            "  dnssec-validation no;\n  notify no;\n  querylog yes;\n"
            f"{self.options}\n"
            "};\n"
            "controls { };\n"  # no rndc channel; -g sends every log line (queries too) to stderr
        )
        hint = f'zone "." {{ type hint; file "{d}/root.hint"; }};\n'
        if self.views:
            for view, (match, zones) in self.views.items():
                conf += (
                    f'view "{view}" {{\n  match-clients {{ {match}; }};\n'
                    + (hint if self.forwarders else "")
                    + self._zone_stanzas(zones, f"{view}-")
                    + "};\n"
                )
        else:
            conf += (hint if self.forwarders else "") + self._zone_stanzas(self.zones, "")
        (d / "named.conf").write_text(conf)

    def argv(self) -> list[str]:
        named = require_server_binary("named")
        return [named, "-g", "-4", "-n", "1", "-c", str(self.dir / "named.conf")]

    def ready(self) -> bool:
        return (
            listening(self.host, self.port, udp=True, netns=self.netns) and "running" in self.log()
        )
