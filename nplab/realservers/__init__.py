"""Real server software for the tests: Debian's nginx, HAProxy, BIND, dnsmasq, PgBouncer,
Squid, Prometheus and libfaketime, a grpcio health server, and a conntrack firewall path.

Each harness writes its configuration into a fresh temporary directory, runs the binary in
the foreground (no daemon, no system service, nothing written outside that directory), waits
until it listens, exposes ``host``, ``port`` (or per-site ports) and its logs, and removes
everything on exit, also when start-up fails half-way. By default it binds a free port on
127.0.0.1; with ``netns=`` it runs through ``ip netns exec`` bound to an address of that
namespace. A missing binary skips on a laptop and fails under ``CI=true``.

==================  =======================================================================
``nginx``           static, TLS (any chain), mTLS, reverse proxy (http/https/grpc), SNI vhosts
``haproxy``         http / tcp mode, dead backends with fast health checks, mTLS bind
``bind``            authoritative zones, allow-query ACL, forward-only resolver, views
``dnsmasq``         host records, CNAMEs, wildcard addresses, forwarders
``pgbouncer``       in front of ``nplab.dbservers.Postgres`` (or of nothing)
``squid``           forward proxy: ACL deny, basic auth (basic_ncsa_auth), CONNECT
``prometheus``      scrapes loopback targets; instant queries; ``promtool``
``faketime``        run one child process with its wall clock shifted
``grpc_server``     grpc.health.v1 with a status per service, or without the service
``conntrack``       client -> nftables/conntrack router -> server, entries expired on demand
``pki``             root, intermediates, leaves, and the broken chains of issue 15
``_base``           the shared process handling; ``LoopbackNamespace`` (port 53 for glibc)
==================  =======================================================================

Namespaces made here are named ``nplab<pid><letter>`` (removed by the lab's
``cleanup_stale()`` after a crash); letters in use: ``c``/``s`` (the lab), ``d``
(tests/test_realservers.py), ``n`` (tests/test_dns_real.py), ``q`` and ``r`` (the capture
script), ``x``/``y``/``z`` (``conntrack``), ``k``/``u``/``v`` (``conntrack.SessionTablePath``,
the session table), ``h``/``m``/``g`` (``nplab/pathlab.py``: r1, r2 and the server of the
routed path; ``p`` the MTU black hole's server). Pick another letter for a new one.

What each server sends in each fault situation is recorded under
``tests/fixtures/realservers/`` (raw captures and FINDINGS.md).
"""
