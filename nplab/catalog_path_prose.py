"""The hand-written half of the catalog sections of issue 13's codes (the middle of the
path): ``nplab/catalog_prose.py`` turns each entry into its ``Prose``. The scenarios are
``nplab/catalog_path.py``.
"""

from __future__ import annotations

__all__ = ["PROSE"]

PROSE: dict[str, dict[str, str]] = {
    "l3.pmtu_blackhole": dict(
        wire="SYN, SYN+ACK, ACK and the request pass (small packets); the first full-size "
        "segment of the answer (1500 bytes: a large response, a large certificate flight) "
        "meets a link with a smaller MTU. The router there drops it and sends ICMP "
        "'fragmentation needed' (IPv6: 'packet too big'), which a firewall filters: the "
        "sender never learns, retransmits the same size, and the exchange stalls. netprobe "
        "then repeats the exchange on a new connection with `TCP_MAXSEG` 1200 set "
        "before connect() (a lower MSS both ways), and at the same time on another at the "
        "normal MSS: the first completes, the second stalls again. `TCP_INFO` of both "
        "connections is in the evidence (the stalled one's `tcpi_pmtu` is still 1500). "
        "A large request stalls the same way in the other direction.",
        apart="Without the retry this is `http.timeout` (or `tls.handshake_timeout` for a "
        "large certificate chain): a server that does not answer. Those stay the verdict "
        "when the small-MSS retry stalls too, or when the retry at the normal MSS completes "
        "as well (a server that hung once). The TCP rung is fine here, so it is not an "
        "`l4.*` code; it is an `l3` fault because the packets' size, not the server, decides.",
        next="Find the link with the smaller MTU (a tunnel, VPN, overlay network) and let ICMP "
        "type 3 code 4 (IPv6: type 2) through the firewalls on the path; meanwhile clamp "
        "the MSS on the router (`tcp option maxseg size set rt mtu`) or lower this host's "
        "interface MTU. `net.ipv4.tcp_mtu_probing=1` lets a Linux client find the size by "
        "itself.",
    ),
}
