"""The resolver's configuration, parsed without I/O, and glibc's search-walk order."""

from __future__ import annotations

import pytest

from netprobe.protocols.resolvconf import (
    ResolvConf,
    hosts_addresses,
    nsswitch_hosts,
    parse_resolv_conf,
    search_candidates,
)

KUBERNETES = """\
search default.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
"""


def test_kubernetes_resolv_conf() -> None:
    conf = parse_resolv_conf(KUBERNETES)
    assert conf.nameservers == ("10.96.0.10",)
    assert conf.search == ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
    assert (conf.ndots, conf.timeout, conf.attempts) == (5, 5, 2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ResolvConf()),
        ("nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\n",
         ResolvConf(nameservers=("1.1.1.1", "2.2.2.2", "3.3.3.3"))),  # MAXNS
        ("search a.test b.test\ndomain c.test\n", ResolvConf(search=("c.test",))),  # last wins
        ("domain c.test\nsearch a.test. b.test\n", ResolvConf(search=("a.test", "b.test"))),
        ("options ndots:20 timeout:0 attempts:9 rotate single-request\n",
         ResolvConf(ndots=15, timeout=1, attempts=5, rotate=True, options=("single-request",))),
        ("# comment\n; other\nnameserver 127.0.0.53 # stub\noptions ndots:x\n",
         ResolvConf(nameservers=("127.0.0.53",))),
    ],
)  # fmt: skip
def test_parse_resolv_conf(text: str, expected: ResolvConf) -> None:
    assert parse_resolv_conf(text) == expected


@pytest.mark.parametrize(
    ("name", "conf", "expected"),
    [
        # ndots:5: fewer dots than ndots: every search domain first, the name last.
        ("api.example.com", KUBERNETES, [
            "api.example.com.default.svc.cluster.local",
            "api.example.com.svc.cluster.local",
            "api.example.com.cluster.local",
            "api.example.com",
        ]),
        # A trailing dot: asked as is, once.
        ("api.example.com.", KUBERNETES, ["api.example.com"]),
        # Enough dots: the name first, then the search domains.
        ("api.example.com", "search corp.test\noptions ndots:2\n",
         ["api.example.com", "api.example.com.corp.test"]),
        ("db", "search corp.test\n", ["db.corp.test", "db"]),
        ("db", "", ["db"]),
    ],
)  # fmt: skip
def test_search_candidates(name: str, conf: str, expected: list[str]) -> None:
    assert search_candidates(name, parse_resolv_conf(conf)) == expected


def test_hosts_and_nsswitch() -> None:
    hosts = "127.0.0.1 localhost\n10.0.0.5 db db.internal # the database\n10.0.0.6 DB\n"
    assert hosts_addresses(hosts, "db") == ["10.0.0.5", "10.0.0.6"]
    assert hosts_addresses(hosts, "db.internal.") == ["10.0.0.5"]
    assert hosts_addresses(hosts, "web") == []
    assert nsswitch_hosts("passwd: files\nhosts: files mdns4_minimal [NOTFOUND=return] dns\n") == (
        "files",
        "mdns4_minimal",
        "dns",
    )
    assert nsswitch_hosts("hosts: dns files\n") == ("dns", "files")
    assert nsswitch_hosts("") == ("files", "dns")
