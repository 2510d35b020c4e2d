"""A tiny authoritative name server on loopback (UDP), answering from a dict."""

from __future__ import annotations

import contextlib
import socket
import threading

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from ._base import ThreadedServer, family_of

__all__ = ["DnsServer"]


class DnsServer(ThreadedServer):
    """A tiny authoritative UDP name server on loopback, answering from ``records``.

    ``records`` maps a name to its addresses (A or AAAA records by family); a name mapped to
    an empty list exists with no address (NODATA); names in ``servfail`` get SERVFAIL, names
    in ``silent`` get no answer at all (a resolver waiting on its upstream: the server itself
    answers other names, ``dns.upstream_timeout``); any other name is NXDOMAIN.
    Point the client at `address` (netprobe's ``nameservers`` option).

    Example:
        ```python
        with DnsServer({"db.test": ["127.0.0.1"]}) as dns_server:
            report = await netprobe.diagnose("nope.test:5432", nameservers=[dns_server.address])
            assert report.fault.code == "dns.nxdomain"
        ```

    Args:
        records: name -> addresses.
        servfail: names answered with SERVFAIL.
        silent: names never answered.
        host: a loopback address.
        port: 0 picks a free port.

    Attributes:
        queries: DNS queries received so far.
    """

    def __init__(
        self,
        records: dict[str, list[str]] | None = None,
        *,
        servfail: set[str] | None = None,
        silent: set[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self._check_host(host)
        self.records = {self._norm(k): v for k, v in (records or {}).items()}
        self.servfail = {self._norm(n) for n in (servfail or set())}
        self.silent = {self._norm(n) for n in (silent or set())}
        self._sock = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(0.1)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"dns-{self.port}", daemon=True)
        self._thread.start()

    @staticmethod
    def _norm(name: str) -> str:
        return name.rstrip(".").lower() + "."

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except OSError:  # the 0.1 s timeout, or the socket closed by close()
                continue
            try:
                query = dns.message.from_wire(data)
            except Exception:  # noqa: BLE001 - a malformed query gets no answer, never a crash
                continue
            self.queries += 1
            reply = self._answer(query)
            if reply is not None:
                with contextlib.suppress(OSError):
                    self._sock.sendto(reply.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        if not query.question:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        question = query.question[0]
        name = question.name.to_text().lower()
        if name in self.silent:
            return None
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        if name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        want_v6 = question.rdtype == dns.rdatatype.AAAA
        addrs = [a for a in self.records[name] if (":" in a) == want_v6]
        if addrs and question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, 60, dns.rdataclass.IN, question.rdtype, addrs
                )
            )
        return response

    def close(self) -> None:
        """Stop answering and close the socket."""
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
