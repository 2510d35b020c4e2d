"""The namespace fault lab and the real servers the tests run netprobe against (development only).

Importable from the development install (the editable install puts the repository root on
``sys.path``); not part of the netprobe wheel. Modules:

* ``topology``: the lab itself (client and server namespaces, veth, nftables, delay lines);
  ``delayline``, ``servers`` and ``runner`` are the programs it starts inside the namespaces.
* ``cases``: the L3/L4 cases every lab verdict is checked against.
* ``scenario``, ``catalog_*``: one scenario per fault code, for the generated fault catalog.
* ``dbservers``: real MariaDB, PostgreSQL and Redis instances started for the tests.
* ``hostile``: peers that misbehave on purpose (endless streams, drips, floods).
* ``realservers``: real nginx, HAProxy, BIND, dnsmasq, PgBouncer, Squid, Prometheus,
  libfaketime, a grpcio health server and a conntrack firewall, started by the tests.
* ``require``: skip on a laptop, fail under ``CI=true``.
"""
