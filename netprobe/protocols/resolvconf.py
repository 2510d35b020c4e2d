"""The system resolver's configuration, parsed (sans-IO): resolv.conf, /etc/hosts and the
``hosts:`` line of nsswitch.conf, and the order in which glibc tries a name's search-list
expansions. The probe reads the files; nothing here touches the disk or the network.

glibc's walk (resolv/res_query.c, ``__res_context_search``): a name ending in a dot is asked
as is, once. Otherwise, with at least ``ndots`` dots it is first asked as is, then with each
search domain appended; with fewer dots, each search domain first and the name as is last.
The first answer with an address ends the walk; each NXDOMAIN (or NODATA) before it is a
wasted round trip, two queries (A and AAAA, sent together) per name for ``getaddrinfo``.
Kubernetes pods get ``ndots:5`` and three or four search domains, so ``api.example.com``
costs four or five wasted pairs before the name itself is asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ResolvConf",
    "hosts_addresses",
    "nsswitch_hosts",
    "parse_resolv_conf",
    "search_candidates",
]

#: glibc's limits (resolv.h): MAXNS name servers, MAXDNSRCH search domains, ndots capped at 15.
_MAXNS, _MAXDNSRCH, _NDOTS_MAX = 3, 6, 15


@dataclass(frozen=True)
class ResolvConf:
    """What glibc takes from resolv.conf (its defaults where a line is missing)."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = 1
    timeout: int = 5
    attempts: int = 2
    rotate: bool = False
    #: Other ``options`` words as written (``single-request``, ``edns0``, ``use-vc``...).
    options: tuple[str, ...] = field(default_factory=tuple)


def _int_option(word: str, default: int, low: int, high: int) -> int:
    _, _, value = word.partition(":")
    try:
        return max(low, min(high, int(value)))
    except ValueError:
        return default


def parse_resolv_conf(text: str) -> ResolvConf:
    """resolv.conf as glibc reads it: the last ``search`` or ``domain`` line wins, at most
    three name servers, unknown lines ignored."""
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    ndots, timeout, attempts, rotate = 1, 5, 2, False
    other: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        key, *words = line.split()
        if key == "nameserver" and words:
            if len(nameservers) < _MAXNS:
                nameservers.append(words[0])
        elif key == "search":
            search = tuple(w.rstrip(".") for w in words[:_MAXDNSRCH] if w.rstrip("."))
        elif key == "domain" and words:
            search = (words[0].rstrip("."),)
        elif key == "options":
            for word in words:
                if word.startswith("ndots:"):
                    ndots = _int_option(word, 1, 0, _NDOTS_MAX)
                elif word.startswith("timeout:"):
                    timeout = _int_option(word, 5, 1, 30)
                elif word.startswith("attempts:"):
                    attempts = _int_option(word, 2, 1, 5)
                elif word == "rotate":
                    rotate = True
                else:
                    other.append(word)
    return ResolvConf(
        nameservers=tuple(nameservers),
        search=search,
        ndots=ndots,
        timeout=timeout,
        attempts=attempts,
        rotate=rotate,
        options=tuple(other),
    )


def search_candidates(name: str, conf: ResolvConf) -> list[str]:
    """The names glibc asks for ``name``, in order (without trailing dots)."""
    if name.endswith("."):
        return [name.rstrip(".")]
    expanded = [f"{name}.{domain}" for domain in conf.search]
    if not expanded:
        return [name]
    if name.count(".") >= conf.ndots:
        return [name, *expanded]
    return [*expanded, name]


def hosts_addresses(text: str, name: str) -> list[str]:
    """The addresses an /etc/hosts text gives ``name`` (case-insensitive), in file order."""
    wanted = name.rstrip(".").lower()
    found: list[str] = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        names = [w.lower() for w in words[1:]]
        if wanted in names and words[0] not in found:
            found.append(words[0])
    return found


def nsswitch_hosts(text: str) -> tuple[str, ...]:
    """The sources of the ``hosts:`` line, in order (``files``, ``dns``, ``myhostname``...);
    without one, glibc's default ``dns files``... which every distribution overrides with
    ``files dns``: that is returned for a missing line."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("hosts:"):
            return tuple(w for w in line[len("hosts:") :].split() if not w.startswith("["))
    return ("files", "dns")
