"""The hand-written half of docs/catalog.md (scripts/gen_catalog.py writes the rest).

For every code: what is on the wire (packets, socket state), how netprobe tells it apart
from its look-alikes (a code in backquotes becomes a link), and what to check next.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prose:
    wire: str
    apart: str
    next: str
    #: Set when the lab cannot show the code: why (the page says so instead of an output).
    unreproducible: str | None = None


INTRO = """
# Fault catalog

One section per fault and warning code: what happens on the wire, how netprobe tells the
code apart from the ones that look like it, what to check next, and what netprobe printed
when the fault was built for real in the namespace lab.

How the page is generated from real runs and checked by the test suite:
[at the end](#how-this-page-is-made).
"""

#: The maintainers' part, at the end of the page: how it is generated and checked.
HOW_MADE = """
## How this page is made

The outputs above are not typed by hand. `scripts/gen_catalog.py` builds the namespace
lab (`nplab/topology.py`: a client and a server network namespace joined by a veth
pair, nftables rules, a userspace delay line), starts the scenario's servers in the
server namespace (`nplab/catalog_scenarios.py`; the databases come from
`nplab/catalog_db.py`), and runs the command shown in the lab's **client
namespace**, which has no default route. Each command ran **once, with `--json`**,
under `prlimit --nofile=1024`; the text block is that same report printed by the CLI's
own renderer (`netprobe.cli.print_report`), i.e. what the command prints without
`--json`. `lab-ca.pem` stands for the lab CA's temporary file. The generator fails,
and writes nothing, when a scenario does not give its code.

The test suite runs `scripts/gen_catalog.py --check` (`tests/lab/test_catalog.py`): it
regenerates the page and compares it with this file, ignoring only what changes from
run to run by design: durations, dates derived from the current time, ephemeral ports,
the serials, fingerprints and random names of the certificates made for the run, the
number of ICMP echoes answered before the verdict was ready (echoes never delay a
verdict, so that is a race), and the counts of sockets and descriptors (the kernel's
table is read while the diagnosis's own connection opens or closes, so it may or may not
be counted). Anything else
(a verdict, a summary, a hint, a field) that changes makes the test fail until the page
is regenerated: `sudo .venv/bin/python scripts/gen_catalog.py`.

Commands that start with `python nplab/catalog_cli.py` build local state first in
the diagnosing process itself (leaked sockets, a full file descriptor table) and then
run the same CLI in that process (`netprobe.cli.main`); a `sysctl -w` line was applied to
the client namespace for that run only. JSON excerpts leave out null and empty fields.
"""

#: Section titles of the faults, by ``layer`` (the warnings come last).
LAYERS: list[tuple[str, str]] = [
    ("DNS (layer dns)", "dns"),
    ("Reachability (layer l3)", "l3"),
    ("The TCP handshake (layer l4)", "l4"),
    ("Above an established connection (layer l7)", "l7"),
    ("This host (layer local)", "local"),
]

_DB_CHECKS = (
    "The application step's `database` object carries the server's own error code and "
    "message; look that code up in the server's log and documentation."
)

PROSE: dict[str, Prose] = {
    # -- DNS --------------------------------------------------------------------------------
    "dns.nxdomain": Prose(
        wire="The name server answers the A and AAAA queries with RCODE 3 (NXDOMAIN): it is "
        "authoritative (or has cached the authority's answer) that the name does not exist. "
        "No TCP packet is sent: there is no address to send it to.",
        apart="`dns.no_address` is NOERROR with an empty answer (the name exists); "
        "`dns.servfail` is the server failing to find out; `dns.timeout` is no answer at "
        "all. Without `--nameserver`, getaddrinfo reports all of these as one or two error "
        "numbers, so netprobe asks the system's name servers directly and decides on their "
        "answers.",
        next="The spelling and the search domains (`/etc/resolv.conf` `search`): a short "
        "name may have been tried with the wrong suffix. Then whether the record (or the "
        "Kubernetes Service, the Compose service) exists: `dig NAME A`, `dig NAME AAAA`.",
    ),
    "dns.no_address": Prose(
        wire="The name server answers NOERROR with an empty answer section for both A and "
        "AAAA (NODATA): the name exists, perhaps with other record types (TXT, MX), but has "
        "no address.",
        apart="`dns.nxdomain` says the name does not exist at all. An IPv6-only name "
        "reached from an IPv4-only host is NODATA for A but not for AAAA: netprobe then "
        "resolves it and the connect fails instead (`l3.network_unreachable`).",
        next="`dig NAME ANY` (or each type): a CNAME pointing at a name without address, a "
        "record created with the wrong type, a wildcard zone without A records.",
    ),
    "dns.servfail": Prose(
        wire="The name server answers RCODE 2 (SERVFAIL): it could not resolve the name, "
        "typically because the zone's authoritative servers did not answer it or DNSSEC "
        "validation failed (BIND forwarding to a silent upstream says SERVFAIL after 10 s).",
        apart="Unlike `dns.nxdomain` nothing is known about the name; unlike "
        "`dns.timeout` the server did answer, so the path to it works; unlike "
        "`dns.refused` it tried.",
        next="Query the zone's authoritative servers directly (`dig +trace NAME`), check "
        "DNSSEC (`dig +cd NAME` succeeding means validation fails).",
    ),
    "dns.refused": Prose(
        wire="The name server answers RCODE 5 (REFUSED) at once: it will not resolve for "
        "this client (BIND `allow-query` / `allow-recursion`, a cloud resolver reached from "
        "outside its network) or does not serve the zone (dnsmasq without an upstream).",
        apart="`dns.servfail` is a server that tried and failed; REFUSED is a policy, and "
        "no retry will change it. getaddrinfo reports both as EAI_AGAIN; netprobe asks the "
        "server directly and says which.",
        next="Whether `/etc/resolv.conf` names the resolver meant for this network, and the "
        "resolver's access list (`allow-query`, `allow-recursion`).",
    ),
    "dns.upstream_timeout": Prose(
        wire="The name server answers a control query (CHAOS `version.bind`, which it "
        "answers itself, whatever it answers) at once, and other names too, but the A or "
        "AAAA query for this name gets no answer within the DNS budget: the server is "
        "waiting on its forwarder or on the zone's authoritative servers.",
        apart="`dns.timeout` is a name server that answers nothing at all (down, or "
        "filtered): the path to it is the problem. Here the path works and the server is "
        "up. When only one of A and AAAA hangs (dnsmasq forwarding the AAAA of a name it "
        "answers itself), the summary says which: getaddrinfo waits for both.",
        next="The resolver's upstream: its forwarders (`forwarders`, `server=`) and whether "
        "they are reachable from the resolver; `dig @RESOLVER NAME` from here and "
        "`dig +trace NAME` from the resolver.",
    ),
    "dns.timeout": Prose(
        wire="Queries go out over UDP to port 53 and nothing comes back within the DNS "
        "budget (`--dns-timeout`): no answer, no ICMP error, and no answer to the control "
        "query (CHAOS `version.bind`) either: the server is down, or a firewall drops port 53.",
        apart="`dns.servfail` means the resolver answered that it failed; here nobody "
        "answered, not even the control query (`dns.upstream_timeout` is a server that "
        "answers that, but not this name). A timeout of the whole diagnosis during the "
        "lookup is reported as `dns.timeout` too, with the `diagnosis.deadline` warning.",
        next="Whether the name servers of `/etc/resolv.conf` are reachable from this host "
        "(UDP and TCP port 53: `dig @SERVER NAME`), and whether any name resolves at all.",
    ),
    "dns.search_walk": Prose(
        wire="Before the name itself, the resolver asks each search-list expansion "
        "(`api.corp.lab.default.svc.cluster.local`, ...) because the name has fewer dots than "
        "`ndots`; each gets NXDOMAIN, an A and an AAAA query per name, before the real one "
        "answers. netprobe replays the walk with direct queries, beside the other rungs.",
        apart="Not a fault: the name resolves. It costs a round trip per miss on every "
        "uncached lookup, and a timeout per miss when a search domain's server is slow. "
        "`dns.search_wildcard` is the dangerous variant: a search domain answers.",
        next="Use the fully qualified name with a trailing dot (`api.corp.lab.`), or lower "
        "`ndots` (a pod's `dnsConfig.options`), or fewer search domains.",
    ),
    "dns.search_wildcard": Prose(
        wire="A search-list expansion of the name (`shop.example.lab.wild.lab`) answers "
        "with an address, so the resolver stops there: the name itself is never asked. A "
        "random name under the same domain answers too: the domain has a wildcard record.",
        apart="`dns.search_walk` is the same walk ending at the right name. Here the "
        "application connects to whatever the wildcard points at, often a web front or a "
        "parking page, and the failure shows up later as a TLS name mismatch or a 404.",
        next="Use the name with a trailing dot, lower `ndots` below the name's dots, or "
        "remove the wildcard domain from `search`.",
    ),
    "dns.nameservers_disagree": Prose(
        wire="The name that answered is asked of every name server of resolv.conf: they "
        "return different addresses (or one says NXDOMAIN). glibc asks the first and moves "
        "to the next only when it does not answer, so which answer the application gets "
        "depends on which server is up.",
        apart="Not a fault for this run: the first server's answer worked. It is the cause "
        "of faults that come and go (a failover to the stale server).",
        next="Compare the zone on both servers (`dig @A NAME`, `dig @B NAME`, their SOA "
        "serials); a split-horizon setup must not mix views in one resolv.conf.",
    ),
    # -- L3 ---------------------------------------------------------------------------------
    "l3.network_unreachable": Prose(
        wire="connect() fails at once with ENETUNREACH: the local routing table has no route "
        "to the destination, so no packet leaves (`immediate` is true). A router on the path "
        "can also answer with ICMP network-unreachable; then the error comes after a round "
        "trip.",
        apart="`l3.host_unreachable` is EHOSTUNREACH (a route exists, the host cannot be "
        "reached on it). The ICMP rung fails the same way when sending, which confirms "
        "the route is missing for every protocol, not just TCP.",
        next="`ip route get ADDRESS`: a missing default route, a VPN that is down, a "
        "container network without the route, or an IPv6 address on an IPv4-only host.",
    ),
    "l3.host_unreachable": Prose(
        wire="The SYN leaves, and either ARP for the next hop gets no answer (an address on "
        "the local segment that nobody owns: EHOSTUNREACH after the ARP retries), or a "
        "router or firewall sends ICMP destination unreachable (host unreachable, or "
        "communication administratively prohibited, code 13), which the kernel turns into "
        "EHOSTUNREACH on the socket. Here a firewall rejects with admin-prohibited.",
        apart="`l3.host_unresponsive` is silence (no ICMP error at all); "
        "`l4.refused` is an answer from the host itself (RST). The echo requests get the "
        "same ICMP error, and the ICMP rung names its kind and its sender: `(a firewall "
        "rejected it)` for admin-prohibited.",
        next="On the same subnet: is the host up and its address right (`ip neigh show`)? "
        "Otherwise: the firewall or security group named by the ICMP error's sender, and the "
        "routes on the path.",
    ),
    "l3.host_unresponsive": Prose(
        wire="The SYN and its retransmissions get no answer at all, and neither do the "
        "liveness witnesses: the ICMP echoes and the canary connects to other ports (1 and "
        "22) are silent too.",
        apart="`l4.filtered` is the same silence on the target port while a witness proves "
        "the host alive (an echo reply, or an RST or SYN+ACK from another port). "
        "`l4.connect_timeout` is the silence with no witness allowed. `l3.host_unreachable` "
        "is an explicit ICMP error instead of silence.",
        next="Whether the host is up (console, cloud instance status); whether a firewall "
        "drops everything to it (a drop-all rule looks the same); whether the address is "
        "still the right one (stale DNS, an old IP).",
    ),
    # -- L4 ---------------------------------------------------------------------------------
    "l4.refused": Prose(
        wire="The SYN is answered by RST+ACK from the host: its kernel has no listening "
        "socket on the port (or a firewall rule `reject with tcp reset` forges the same "
        "answer). connect() fails with ECONNREFUSED after one round trip.",
        apart="The host answered, so it is up and routed: this is not "
        "`l3.host_unreachable` (an ICMP error) nor `l4.filtered` (silence). An RST *after* "
        "the handshake completed is `l7.connection_closed`.",
        next="Is the service running and listening on that port and address "
        "(`ss -ltnp 'sport = :PORT'` on the host)? A service bound to 127.0.0.1 only, a "
        "wrong port in the configuration, or a container that is not published.",
    ),
    "l4.filtered": Prose(
        wire="The SYN gets no answer within the connect timeout, "
        "while the host is demonstrably alive: it answers ICMP echo, or another port answers "
        "RST or SYN+ACK to the canary connect.",
        apart="The witness decides: alive → `l4.filtered`; every witness silent → "
        "`l3.host_unresponsive`; no witness allowed (`--no-icmp --no-canary`, no ICMP "
        "socket) → `l4.connect_timeout`. A full accept queue (SYN backlog overflow) also "
        "drops SYNs of a live host and looks the same.",
        next="The firewall, security group or network policy for this port from this source "
        "(`nft list ruleset`, `iptables -S`, the cloud console), then the server's accept "
        "queue: `ss -ltn 'sport = :PORT'` (Recv-Q at the backlog) and "
        "`nstat -az TcpExtListenOverflows`.",
    ),
    "l4.connect_timeout": Prose(
        wire="The SYN gets no answer within the connect timeout, and netprobe was not "
        "allowed to send a witness (`--no-icmp`, `--no-canary`, or no ICMP socket on this "
        "host): silence, and nothing to interpret it with.",
        apart="With a witness, the same silence becomes `l4.filtered` (host alive) or "
        "`l3.host_unresponsive` (no sign of life). The ladder's `witness:` line says which "
        "witness was missing and why.",
        next="Allow a witness (ICMP via `net.ipv4.ping_group_range` or CAP_NET_RAW, and the "
        "canary) and run again; meanwhile check both explanations: a firewall dropping the "
        "port, or the host being down.",
    ),
    "l4.connect_failed": Prose(
        wire="connect() fails with an errno that has no specific meaning for netprobe. "
        "Here a `blackhole` route on this host makes the route lookup fail with EINVAL "
        "before any packet leaves (the ICMP rung gets the same error when sending). Other "
        "real sources: an ICMP protocol-unreachable reply (ENOPROTOOPT), a host-unknown "
        "one (EHOSTDOWN).",
        apart="The known errnos have their own codes: ECONNREFUSED `l4.refused`, "
        "EHOSTUNREACH `l3.host_unreachable`, ENETUNREACH `l3.network_unreachable`, "
        "EACCES/EPERM `local.connect_denied`, EADDRNOTAVAIL `local.port_exhaustion`, "
        "EMFILE `local.fd_exhaustion`. Everything else lands here with the errno in the "
        "evidence.",
        next="The errno in the evidence; for an immediate EINVAL, `ip route get ADDRESS` "
        "(a `blackhole` route, e.g. from an anti-abuse tool or a CNI plugin) and "
        "`ip rule list`.",
    ),
    # -- L7 ---------------------------------------------------------------------------------
    "l7.connection_closed": Prose(
        wire="The three-way handshake completes (ESTABLISHED), then the peer sends FIN or "
        "RST before any answer: here the server reads the request and closes with "
        "SO_LINGER 0, so an RST arrives instead of a response. A proxy with no healthy "
        "backend, a server shedding load, or an allow-list at the application level do "
        "this.",
        apart="`l4.refused` is an RST to the SYN (no connection); `http.timeout` keeps the "
        "connection open and silent; `http.protocol_error` answers something. During a TLS "
        "handshake the same close is reported here too (not `tls.handshake_failed`, which "
        "needs an alert).",
        next="The server's and the proxy's logs at that time; connection limits (a proxy's "
        "maxconn, tcp wrappers), and whether the backend behind a load balancer is healthy.",
    ),
    "tls.cert_expired": Prose(
        wire="TCP and the TLS handshake start normally; the server's Certificate message "
        "carries a certificate whose notAfter is in the past, so the client's verification "
        "fails (X509_V_ERR 10) and the client aborts the handshake with an alert.",
        apart="`tls.cert_not_yet_valid` is the other end of the validity window; "
        "`local.clock_skew` when the server's own clock finds the certificate valid; "
        "`tls.cert_expiring_soon` is the warning before this happens. The "
        "chain in the TLS step shows which certificate expired: the leaf or an intermediate.",
        next="Renew and reload the certificate on the server; check its automatic renewal "
        "(certbot timer, cert-manager). If the date looks fine, check this host's clock.",
    ),
    "tls.cert_not_yet_valid": Prose(
        wire="The presented certificate's notBefore is in the future for this client "
        "(X509_V_ERR 9): it was issued with a future start, or this host's clock is behind.",
        apart="`tls.cert_expired` is the past end of the window. When the server's clock "
        "(its HTTP Date header) finds the chain valid, or the whole chain starts after this "
        "host's now, the fault is this host's: `local.clock_skew`.",
        next="This host's clock and NTP (`timedatectl`, `chronyc tracking`), then the "
        "certificate's dates.",
    ),
    "tls.cert_untrusted": Prose(
        wire="The chain the server sends does not end at a CA this client trusts "
        "(X509_V_ERR 20, 19 or 18): an issuer unknown here, a self-signed certificate, or a "
        "server that omits its intermediate certificates.",
        apart="netprobe reads the chain to say which: an incomplete chain whose missing "
        "intermediate the leaf names is `tls.incomplete_chain`; an unknown or self-signed "
        "root stays here, each said. "
        "`tls.hostname_mismatch` is a trusted certificate for another name; "
        "`tls.verify_disabled` is the warning when the check was turned off.",
        next="If the issuer is an intermediate, configure the full chain on the server "
        "(nginx `ssl_certificate fullchain.pem`); if it is an internal CA, pass its "
        "certificate with `--ca-file` / `ca_file=`.",
    ),
    "tls.hostname_mismatch": Prose(
        wire="The certificate is valid and trusted, but none of its subjectAltName entries "
        "matches the name the client connected to (X509_V_ERR 62, or 64 for an IP address).",
        apart="The TLS step lists the names the certificate holds, so a wrong SNI, a "
        "wrong virtual host or a default certificate of a load balancer shows at once. "
        "For an IP target, netprobe asks again with the certificate's names (and the IP's "
        "names in the hosts file) as SNI, and says when the server chooses its certificate "
        "by SNI. `tls.cert_untrusted` is about the issuer, not the name.",
        next="Connect with a name the certificate holds, or reissue it with this name; on a "
        "shared endpoint check the SNI routing (the server's default certificate answered).",
    ),
    "tls.not_tls": Prose(
        wire="The ClientHello goes out and the first bytes back are not a TLS record: here "
        "an HTTP `400 Bad Request` from a plain HTTP server (nginx answers a ClientHello on "
        "its plain port this way); elsewhere an SSH banner or a database greeting.",
        apart="netprobe sniffs the bytes the peer sent and names the protocol. "
        "`tls.handshake_timeout` is a peer that sends nothing back; `tls.handshake_failed` "
        "is a real TLS alert; `l7.connection_closed` is a close without bytes.",
        next="The scheme or the port: use `http://` for this port or the server's TLS port.",
    ),
    "tls.handshake_failed": Prose(
        wire="The peer speaks TLS but ends the handshake with an alert. Here nginx offers only "
        "a SHA-1 suite that the client's cipher list leaves out, and answers the ClientHello "
        "with handshake_failure; a follow-up handshake on a fresh connection, offering every "
        "suite this OpenSSL has, shows which suite the server would pick. Other alerts: "
        "unrecognized_name (a server that requires SNI), internal_error.",
        apart="An alert separates it from `tls.not_tls` (not TLS at all), "
        "`tls.handshake_timeout` (silence) and `l7.connection_closed` (a close without an "
        "alert). Alerts about the client's certificate are `tls.client_cert_required`, "
        "a version refusal is `tls.protocol_version`. The alert and what the follow-up "
        "learnt are in the evidence.",
        next="For no shared cipher: enable a modern suite on the server (ECDHE with AES-GCM "
        "or ChaCha20), or allow the server's suite in the client's context. For "
        "unrecognized_name: connect by the name the server serves.",
    ),
    "tls.client_cert_required": Prose(
        wire="The server asks for a client certificate (CertificateRequest) and refuses the "
        "connection without an acceptable one. Here nginx with `ssl_verify_client on` "
        "completes the handshake and answers `400 No required SSL certificate was sent` "
        "(`The SSL certificate error` for a certificate it does not accept). HAProxy's "
        "`verify required` sends an alert instead: `certificate_required` or `unknown_ca` "
        "on the first read after a TLS 1.3 handshake, `handshake_failure` or `unknown_ca` "
        "inside a TLS 1.2 one; grpcio closes without an alert.",
        apart="netprobe reads whether the server asked for a certificate from the handshake "
        "itself (in the clear up to TLS 1.2; in TLS 1.3 from its own encrypted answer: an "
        "empty Certificate message before its Finished) and whether one was sent, so a "
        "bare handshake_failure or a silent close is told apart from `tls.handshake_failed` "
        "and `l7.connection_closed`; with nginx, from `http.client_error`.",
        next="Send a certificate the server's CA issued (`--client-cert`/`--client-key`, "
        "`client_cert=`/`client_key=`); when one was sent, its issuer and validity are in the "
        "evidence: compare them with the server's `ssl_client_certificate` / `ca-file`.",
    ),
    "tls.incomplete_chain": Prose(
        wire="The server's Certificate message holds only its own certificate: the "
        "intermediate CA that issued it is missing, and the client trusts only the root, so "
        "verification fails (X509_V_ERR 20, unable to get local issuer certificate).",
        apart="Browsers fetch the missing intermediate from the URL in the certificate's "
        "Authority Information Access and show nothing wrong; Python, Go, Java and most SDKs "
        "do not. netprobe says `tls.incomplete_chain` when that URL is there (or this "
        "host's store holds the issuer as an intermediate); an issuer known nowhere stays "
        "`tls.cert_untrusted`.",
        next="Serve the full chain: nginx `ssl_certificate fullchain.pem`, HAProxy `crt` with "
        "the intermediates appended; `openssl s_client -showcerts` lists what is sent.",
    ),
    "tls.protocol_version": Prose(
        wire="The server and the client allow no TLS version in common: here a TLS 1.0-only "
        "nginx answers a TLS 1.2-1.3 ClientHello with a protocol_version alert (70). Only "
        "after that alert, netprobe makes one handshake pinned to each version (TLS 1.0 and "
        "1.1 at `@SECLEVEL=0`) on fresh connections, to learn the server's range.",
        apart="The summary names both ranges, so an old server (upgrade it) is told apart "
        "from a client limited to an old version (raise its maximum). "
        "`tls.handshake_failed` covers the other refusals (no shared cipher).",
        next="Enable TLS 1.2 and 1.3 on the server (nginx `ssl_protocols TLSv1.2 TLSv1.3`), "
        "or check the client's `minimum_version` / `maximum_version`.",
    ),
    "http.tls_required": Prose(
        wire="A plain HTTP request goes to a port that speaks TLS. nginx answers `400 The "
        "plain HTTP request was sent to HTTPS port` (here); HAProxy and Python's `ssl` "
        "servers close without a byte; some servers answer with a TLS alert record.",
        apart="A close without a byte alone is `l7.connection_closed`: only then netprobe "
        "sends a ClientHello on a fresh connection, and a ServerHello (or a TLS alert) "
        "proves the port speaks TLS. The mirror case, TLS to a plain port, is "
        "`tls.not_tls`.",
        next="Use `https://` (the summary gives the URL), or the server's plain-HTTP port.",
    ),
    "local.clock_skew": Prose(
        wire="The certificate is valid, but this host's clock is not: here the diagnosing "
        "process runs 400 days ahead (libfaketime), so the one-year leaf reads as expired "
        "(X509_V_ERR 10). After such a failure on an HTTP target, netprobe reads the "
        "server's `Date` header over a follow-up handshake that verifies nothing.",
        apart="When the server's clock says the chain is valid, the fault is this host's "
        "(layer `local`), with both times; without HTTP, a chain whose every certificate "
        "starts after this host's now proves a clock behind. Otherwise the certificate is "
        "blamed: `tls.cert_expired`, `tls.cert_not_yet_valid`.",
        next="This host's time: NTP (`timedatectl`, `chronyc tracking`), a restored VM "
        "snapshot, a container's clock.",
    ),
    "tls.handshake_timeout": Prose(
        wire="The connection is ESTABLISHED and the ClientHello is sent (and ACKed), but no "
        "ServerHello comes back within the read timeout. The process behind the port "
        "waits for the client to speak another protocol first, or is stuck.",
        apart="`tls.not_tls` is a peer that answers with something else; `http.timeout` is "
        "the same silence after a successful handshake and request; "
        "`db.greeting_timeout` the silence of a database that should speak first.",
        next="Whether the port really is a TLS port (plain HTTP and databases wait for the "
        "client), and whether a proxy or DPI firewall swallows TLS.",
    ),
    "http.server_error": Prose(
        wire="Connect, (TLS,) request and response all work: the server answers with a 5xx "
        "status. Here `503 Service Unavailable` with `Retry-After: 120`.",
        apart="The network and TLS are fine: the fault is in the service or the proxy in "
        "front of it. The evidence keeps the status, the `Server` header and a body preview "
        "to say which of the two answered (a proxy's 502/504 page versus the application's "
        "own error).",
        next="The service's log and health; for 502/504, the proxy's upstream; honour "
        "`Retry-After` for 503.",
    ),
    "http.client_error": Prose(
        wire="The server answers the request with a 4xx status: here `404 Not Found` for "
        "the health path.",
        apart="The service is up; the request is what it refuses: a wrong path, missing "
        "credentials (401, with `WWW-Authenticate`), forbidden (403). "
        "`http.server_error` is the service failing on a valid request.",
        next="The URL path, and the credentials or headers the endpoint expects "
        "(`headers=` in the API).",
    ),
    "http.timeout": Prose(
        wire="The request is sent and ACKed, and no complete response header arrives within "
        "the read timeout: the service holds the connection open and silent.",
        apart="`tls.handshake_timeout` is silence before TLS completes; "
        "`l7.connection_closed` is a close instead of silence; the evidence says whether "
        "part of a response came (a slow drip) or nothing.",
        next="The service's own state: an exhausted worker pool, a deadlock, or a slow "
        "dependency of its own (diagnose that dependency from the service's host).",
    ),
    "http.protocol_error": Prose(
        wire="Bytes come back, but they do not start with an HTTP status line.",
        apart="netprobe shows the first bytes (and names the protocol when it recognises "
        "it: a TLS record, a database greeting, SSH). `tls.not_tls` is the mirror case "
        "for an `https://` target.",
        next="The port: another protocol listens there, or the scheme should be `https://`.",
    ),
    "db.too_many_connections": Prose(
        wire="TCP works and the database speaks its protocol, then refuses the login with "
        "its connection-limit error (MySQL 1040, PostgreSQL 53300, Redis `max number of "
        "clients reached`).",
        apart="Decided by the server's own error code, so it is not confused with "
        "`db.auth_failed` or `db.not_ready`. " + _DB_CHECKS,
        next="Count connections per client (`SHOW PROCESSLIST`, `pg_stat_activity`, "
        "`CLIENT LIST`) and look for a leaking pool before raising the limit.",
    ),
    "db.host_blocked": Prose(
        wire="MariaDB/MySQL answers the TCP connection with error 1129 instead of its "
        "greeting: this client address made more than `max_connect_errors` interrupted "
        "handshakes and is blocked.",
        apart="It comes before any login, so it is not `db.auth_failed`; the message names "
        "the blocked host. MariaDB never blocks loopback clients, which is why the lab shows "
        "it from the client namespace.",
        next="`FLUSH HOSTS` (or `mariadb-admin flush-hosts`), then find what opens "
        "connections without finishing the handshake (port scanners, TCP-only health "
        "checks).",
    ),
    "db.not_ready": Prose(
        wire="The database answers, but with its not-ready error: PostgreSQL 57P03 "
        "(starting up, shutting down, in recovery), Redis `LOADING`, MySQL shutdown errors.",
        apart="A transient server state, unlike `db.server_error`; a restart loop shows as "
        "alternating `db.not_ready` and `l4.refused`.",
        next="Wait and retry; check the server's log for why it is (re)starting or recovering.",
    ),
    "db.greeting_timeout": Prose(
        wire="The TCP connection is established but the server sends nothing within the "
        "read timeout, where the protocol expects its first message (MySQL greeting) or "
        "its answer (PostgreSQL startup, Redis PING).",
        apart="Like `http.timeout` and `tls.handshake_timeout`, an established and silent "
        "connection; the rung that waited names the protocol.",
        next="The server's load (CPU, disk, a full thread pool) or a proxy in front that "
        "waits on its backend.",
    ),
    "db.protocol_mismatch": Prose(
        wire="The peer answers, but not in the expected protocol: here a `postgresql://` "
        "target gets a MySQL server greeting.",
        apart="netprobe recognises the other protocol from its first bytes and names it "
        "(MySQL, PostgreSQL, Redis, TLS, HTTP, SSH) instead of a generic error.",
        next="The port and the scheme: the DSN points at another database or service.",
    ),
    "db.auth_failed": Prose(
        wire="The handshake works; the server rejects the credentials (MySQL 1045, "
        "PostgreSQL 28P01, Redis `WRONGPASS`). The password in the target is never shown "
        "(`***`).",
        apart="`db.access_denied` is a user who authenticated but may not use this database "
        "or connect from this host. netprobe's own probe user being refused first is "
        "expected and marked so in the evidence.",
        next="The credentials the application is configured with (secret rotation, a wrong "
        "environment).",
    ),
    "db.access_denied": Prose(
        wire="The login works, then the server refuses this database or this host for the "
        "user (MySQL 1044, PostgreSQL 28000 from pg_hba.conf, 42501).",
        apart="Unlike `db.auth_failed` the password is not the problem: the account's "
        "host part, the database grants or pg_hba.conf are.",
        next="The account's grants and host part (`SHOW GRANTS`, `user@host`) or the "
        "pg_hba.conf line for this client address, user and database.",
    ),
    "db.server_error": Prose(
        wire="The server answers with an error netprobe has no specific code for: here "
        "PostgreSQL 55000 for a database that does not accept connections.",
        apart="The known errors have their own codes; this one carries the server's code "
        "and message as evidence. " + _DB_CHECKS,
        next="The error code in the server's documentation and its log.",
    ),
    "db.upstream_unavailable": Prose(
        wire="A connection pooler speaks PostgreSQL's protocol in its server's place. Here "
        "PgBouncer answers the SSLRequest and the SCRAM exchange itself, then holds the "
        "login: it has no server connection to give, its PostgreSQL being down. (It says so "
        "in words when it gives up: `pgbouncer cannot connect to server`, "
        "`query_wait_timeout`, SQLSTATE 08P01.)",
        apart="Silence after the login would read as a stuck PostgreSQL "
        "(`db.greeting_timeout`); netprobe asks on a second connection, with a startup "
        "parameter PgBouncer alone refuses at once, and names the pooler: the box that "
        "answers is up, the one behind it is not. PgBouncer's other errors get the codes "
        "they mean (`max_client_conn` is `db.too_many_connections`). Without credentials "
        "PgBouncer answers the SCRAM request without asking its server: only a login shows "
        "this fault.",
        next="The PostgreSQL server behind the pooler (its state, and the host/port in "
        "PgBouncer's `[databases]`); PgBouncer's log says `closing because: connect failed`.",
    ),
    # -- local ------------------------------------------------------------------------------
    "local.port_exhaustion": Prose(
        wire="connect() fails at once with EADDRNOTAVAIL: every local port of the ephemeral "
        "range is taken for this destination address and port (here by TIME_WAIT sockets "
        "of earlier connections). No packet leaves.",
        apart="It is this host's limit, not the dependency's, so it wins over any network "
        "answer; the local health block counts the TIME_WAIT sockets toward the target and "
        "shows the port range, and `local.time_wait_pressure` warns before it happens.",
        next="`ss -tan state time-wait | wc -l`, `net.ipv4.ip_local_port_range`; reuse "
        "connections (pooling, keep-alive); consider `net.ipv4.tcp_tw_reuse=1`.",
    ),
    "local.fd_exhaustion": Prose(
        wire="socket() fails with EMFILE (this process is at its `ulimit -n`) or ENFILE (the "
        "whole host is at fs.file-max): the connection cannot even be created.",
        apart="Checked before any network verdict: a process out of descriptors sees every "
        "dependency fail at once. `local.fd_pressure` is the warning before it.",
        next="Open descriptors against the limit (`ls /proc/PID/fd | wc -l`, `ulimit -n`), "
        "leaked sockets (`local.close_wait_leak`), and `/proc/sys/fs/file-nr`.",
    ),
    "local.connect_denied": Prose(
        wire="connect() fails at once with EACCES or EPERM: this host's own policy forbids "
        "the connection before any packet leaves. Here a `prohibit` route (the route lookup "
        "returns EACCES); a cgroup BPF connect hook, SELinux or an egress policy give the "
        "same. An nftables `drop` in this host's OUTPUT chain does **not**: for TCP the "
        "kernel swallows the EPERM and retransmits the SYN, so the verdict is "
        "`l4.filtered` or `l4.connect_timeout`, as for a remote firewall.",
        apart="`l3.network_unreachable` and `l4.connect_failed` are other immediate local "
        "failures with other errnos; nothing of this one reached the network.",
        next="This host's routes and rules (`ip route get ADDRESS`, `ip rule list`), its "
        "OUTPUT rules (`nft list ruleset`, `iptables -S OUTPUT`), and seccomp, SELinux, "
        "AppArmor or network policies.",
    ),
    # -- warnings ---------------------------------------------------------------------------
    "tcp.syn_retransmitted": Prose(
        wire="The first SYN (or the SYN+ACK) is lost; Linux retransmits the SYN after its "
        "initial 1 s timeout and the connect succeeds then, so it took 1 s or more. Here a "
        "delay line drops the first SYN of every flow.",
        apart="A slow network adds milliseconds; a lost SYN adds one retransmission timeout "
        "(1 s, then 3 s). The connect time in whole seconds is the signature.",
        next="Packet loss on the path (interface errors, a congested link) or a server "
        "accept queue that overflows now and then (`nstat -az TcpExtListenOverflows`).",
    ),
    "tcp.address_failed": Prose(
        wire="The name resolves to several addresses; netprobe connects to all of them at "
        "once. One fails (here an ICMP host-unreachable for 198.18.0.16) while another "
        "connects, so the diagnosis is healthy.",
        apart="An application that tries addresses in order (most do) is slow or fails when "
        "the bad one comes first, so this matters even though the verdict is healthy.",
        next="The DNS records (a stale address) or the failing host.",
    ),
    "icmp.no_reply": Prose(
        wire="TCP (and HTTP) work, but the echo requests get no reply within their 1 s "
        "timeout: ICMP is filtered on the path. Echoes never delay a verdict, so the warning "
        "appears only when the diagnosis lasts longer than an echo's timeout; here the "
        "health endpoint takes 1.3 s to answer.",
        apart="A healthy diagnosis with ICMP filtered says so instead of raising an alarm; "
        "for a failing connect the same silence feeds the witness logic (`l4.filtered`, "
        "`l3.host_unresponsive`).",
        next="Nothing, for the service; but ping-based monitoring of this host reports it "
        "down. Allow ICMP echo in the security group if that monitoring matters.",
    ),
    "tls.cert_expiring_soon": Prose(
        wire="The handshake succeeds; a certificate of the chain expires within the warning "
        "threshold (14 days by default).",
        apart="Healthy now, `tls.cert_expired` later; the warning names which certificate "
        "of the chain (the leaf or an intermediate).",
        next="Renewal: why automatic renewal did not happen yet (certbot timer, cert-manager "
        "events).",
    ),
    "tls.chain_misordered": Prose(
        wire="The handshake succeeds, but the server sends its chain out of order (here "
        "leaf, intermediate 1, intermediate 2, while the leaf's issuer is intermediate 2). "
        "RFC 8446 §4.4.2 wants each certificate followed by its issuer.",
        apart="OpenSSL and browsers reorder the chain and verify it; strict or older TLS "
        "stacks fail. The warning gives the order as presented.",
        next="Rebuild the chain file in order: leaf, then each issuer up to (not including) "
        "the root.",
    ),
    "tls.root_sent": Prose(
        wire="The handshake succeeds; the server sends its root CA as the last certificate of "
        "its chain.",
        apart="Harmless for verification (the client takes the anchor from its own store), "
        "but it adds bytes to every handshake and hides which root the server believes in.",
        next="Drop the root from the server's chain file.",
    ),
    "tls.verify_disabled": Prose(
        wire="The handshake succeeds without checking the certificate (`--insecure`, "
        "`verify=False`): here the certificate comes from a CA the client does not trust, "
        "which would otherwise be `tls.cert_untrusted`.",
        apart="The TLS line says `(not verified)`; the report stays healthy, so this warning "
        "is the only trace that an untrusted, expired or wrong-name certificate would pass.",
        next="Pass the internal CA with `--ca-file` instead of turning verification off.",
    ),
    "local.close_wait_leak": Prose(
        wire="Sockets toward the target sit in CLOSE_WAIT: the peer sent FIN, the kernel "
        "ACKed it, and the application never called close(). Here 12 such connections are "
        "held by the diagnosing process.",
        apart="Counted from the kernel's socket table (sock_diag), filtered to the target's "
        "address and port; ten or more is a leak, not a moment.",
        next="`ss -tanp state close-wait` to find the owner; responses or pool connections "
        "that are not released.",
    ),
    "local.time_wait_pressure": Prose(
        wire="Many sockets toward the target are in TIME_WAIT (this host closed them first), "
        "against a small ephemeral port range: the next connections will fail with "
        "EADDRNOTAVAIL (`local.port_exhaustion`).",
        apart="The share of the port range is what matters: half of it toward one "
        "destination is pressure.",
        next="Reuse connections (keep-alive, pooling), widen `net.ipv4.ip_local_port_range`, "
        "consider `net.ipv4.tcp_tw_reuse=1`.",
    ),
    "local.fd_pressure": Prose(
        wire="The diagnosing process has 80 % or more of its soft file descriptor limit "
        "open: the next sockets will fail with EMFILE (`local.fd_exhaustion`).",
        apart="About the process that runs the diagnosis (the application, when netprobe "
        "runs inside it); the local health block shows both numbers.",
        next="Leaked descriptors (`ls -l /proc/PID/fd`), or raise `ulimit -n`.",
    ),
    "diagnosis.deadline": Prose(
        wire="The total deadline (`--timeout`) ends the diagnosis while a rung is still "
        "waiting: here the SYN to a dropped port, after 1 s of a 3 s connect timeout.",
        apart="The verdict is what the finished rungs allow (here: the SYN was unanswered "
        "within the deadline), and the warning says which rung was cut and that later "
        "rungs were not tried.",
        next="Run again with a longer `--timeout` (or shorter per-rung timeouts) to get a "
        "complete verdict.",
    ),
}

# Issue 14's codes (gRPC health, proxies, forward proxies): nplab/catalog_l7_prose.py.
from nplab.catalog_l7_prose import PROSE as _L7_PROSE  # noqa: E402

PROSE.update({code: Prose(**fields) for code, fields in _L7_PROSE.items()})

from nplab.catalog_session_prose import PROSE as _SESSION_PROSE  # noqa: E402

PROSE.update({code: Prose(**fields) for code, fields in _SESSION_PROSE.items()})
# Issue 13's codes (the middle of the path): nplab/catalog_path_prose.py.
from nplab.catalog_path_prose import PROSE as _PATH_PROSE  # noqa: E402

PROSE.update({code: Prose(**fields) for code, fields in _PATH_PROSE.items()})
