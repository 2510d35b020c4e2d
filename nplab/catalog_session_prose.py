"""The hand-written half of the catalog sections of the session-table codes (issues 11 and
13): ``nplab/catalog_prose.py`` turns each entry into its ``Prose``. The scenarios are
``nplab/catalog_session.py``; the page with the whole story is docs/sessions.md.
"""

from __future__ import annotations

__all__ = ["PROSE"]

PROSE: dict[str, dict[str, str]] = {
    "l4.idle_killed": dict(
        wire="The connections opened and answered; after the hold each gets a TCP keepalive "
        "probe (a bare ACK one byte behind, which the peer's TCP must acknowledge). A "
        "firewall or NAT that expired the idle session drops it: no ACK comes back, probe "
        "after probe (`silence`); or it answers with an RST (`reset`). A FIN that arrived "
        "during the hold (`closed`) is the server's or a proxy's own idle timeout. Reading "
        "the socket shows none of this: nothing arrives either way.",
        apart="Found only by `netprobe pool --hold` or `--find-idle-timeout`: `diagnose` "
        "opens a fresh connection, which such a firewall lets through. Connections that "
        "failed to open carry their own codes (`l4.refused`, `db.too_many_connections`...); "
        "a connection whose keepalive is answered but whose protocol round trip fails after "
        "the hold is the server's doing, not the path's.",
        next="The idle timeouts on the path (firewall and NAT session timeouts, "
        "`nf_conntrack_tcp_timeout_established`, cloud load balancers: often 350 s) against "
        "the pool's idle settings (HikariCP `idleTimeout`/`keepaliveTime`, SQLAlchemy "
        "`pool_recycle`/`pool_pre_ping`); `netprobe pool TARGET --find-idle-timeout` "
        "brackets the timeout.",
    ),
    "l4.reused_port_dropped": dict(
        wire="Pairs of connects: the first from a port the kernel picks, closed at once with "
        "an RST (`SO_LINGER` 0, so no TIME_WAIT holds the 4-tuple), the second from that "
        "same source port. The firewall still holds the closed session and drops the new "
        "SYN: the reconnect times out, or connects only on a retransmitted SYN once the "
        "firewall forgot (the kernel's own count, `TCP_INFO`), while every fresh port "
        "connects on its first SYN.",
        apart="Found only by `netprobe churn`. When fresh ports fail as well, the fault is "
        "not the reuse: `l4.connect_timeout` or `l4.refused` as for a single connect. A "
        "single slow reconnect is noise: at least two, and a quarter of them, must fail.",
        next="The firewall's or NAT's hold time for closed sessions (its TIME_WAIT or "
        "closing timeout) against how fast the clients reuse source ports under churn; on "
        "the clients, a wider `ip_local_port_range`, and pooled connections instead of a "
        "new one per request.",
    ),
}
