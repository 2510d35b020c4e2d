"""The ``Proxy-Status`` response header (RFC 9209), sans-IO: which intermediary handled the
response, and the error it met when it could not get one from the next hop.

The field is a Structured Field List (RFC 8941 §3.1): each member names an intermediary (a
String or a Token) with parameters, ``error`` (a Token from the registry of RFC 9209 §2.3),
``next-hop``, ``next-protocol``, ``received-status`` (an Integer) and ``details`` (a String)::

    Proxy-Status: ExampleCDN; error=connection_refused; next-hop="10.0.0.7:8080"

"The first member of the list represents the intermediary closest to the origin server" and
every intermediary appends its own (RFC 9209 §2). RFC 8941 §4.2: a field that does not parse
is ignored as a whole, so :func:`parse_proxy_status` returns an empty tuple for it; it never
raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["ERROR_TYPES", "ProxyStatusEntry", "parse_proxy_status"]

#: The error types registered by RFC 9209 §2.3, with the section's own summary.
ERROR_TYPES: dict[str, str] = {
    "dns_timeout": "the intermediary's DNS lookup of the next hop timed out",
    "dns_error": "the intermediary's DNS lookup of the next hop failed",
    "destination_not_found": "the intermediary cannot determine the next hop",
    "destination_unavailable": "the intermediary considers the next hop unavailable "
    "(e.g. failed health checks)",
    "destination_ip_prohibited": "the intermediary's policy forbids the next hop's address",
    "destination_ip_unroutable": "the intermediary cannot route to the next hop's address",
    "connection_refused": "the next hop refused the intermediary's connection",
    "connection_terminated": "the next hop closed the connection before the answer",
    "connection_timeout": "the intermediary's connect to the next hop timed out",
    "connection_read_timeout": "the next hop did not send data in time",
    "connection_write_timeout": "the intermediary could not send to the next hop in time",
    "connection_limit_reached": "the intermediary's limit on connections to the next hop",
    "tls_protocol_error": "the TLS handshake with the next hop failed",
    "tls_certificate_error": "the next hop's certificate did not verify",
    "tls_alert_received": "the next hop sent a TLS alert",
    "http_request_error": "the intermediary judged the client's request invalid",
    "http_request_denied": "the intermediary refused the request (policy)",
    "http_response_incomplete": "the next hop's response was incomplete",
    "http_response_header_section_size": "the next hop's header section was too large",
    "http_response_header_size": "a header of the next hop's response was too large",
    "http_response_body_size": "the next hop's response body was too large",
    "http_response_trailer_section_size": "the next hop's trailer section was too large",
    "http_response_trailer_size": "a trailer of the next hop's response was too large",
    "http_response_transfer_coding": "the next hop's transfer coding was invalid",
    "http_response_content_coding": "the next hop's content coding was invalid",
    "http_response_timeout": "the next hop's response did not complete in time",
    "http_upgrade_failed": "the protocol upgrade with the next hop failed",
    "http_protocol_error": "the next hop broke HTTP",
    "proxy_internal_response": "the intermediary answered by itself (no error)",
    "proxy_internal_error": "the intermediary itself failed",
    "proxy_configuration_error": "the intermediary is misconfigured",
    "proxy_loop_detected": "the request looped through the intermediary",
}

Bare = str | int | float | bool


@dataclass(frozen=True)
class ProxyStatusEntry:
    """One member: the intermediary, its ``error`` (if any) and every parameter."""

    proxy: str
    error: str | None = None
    params: dict[str, Bare] = field(default_factory=dict)

    @property
    def details(self) -> str | None:
        value = self.params.get("details")
        return value if isinstance(value, str) else None

    @property
    def next_hop(self) -> str | None:
        value = self.params.get("next-hop")
        return value if isinstance(value, str) else None


class _Malformed(ValueError):
    pass


# RFC 8941 §3.3.4 (Token: ALPHA or "*", then tchar / ":" / "/"), §3.1.2 (key).
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,3})?")
_CAP = 4096  # characters of a field parsed at most (a header is small)


def parse_proxy_status(value: str | None) -> tuple[ProxyStatusEntry, ...]:
    """The members of a ``Proxy-Status`` value, closest to the origin first; () when the
    field is absent, empty, too long or malformed (RFC 8941 §4.2: then it is ignored).
    Inner lists (not used by RFC 9209) are skipped."""
    if not value or len(value) > _CAP:
        return ()
    try:
        return tuple(_List(value).members())
    except _Malformed:
        return ()


class _List:
    """RFC 8941 §4.2.1 (Parsing a List), the parts RFC 9209 needs."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def _ows(self) -> None:
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def _sp(self) -> None:
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def members(self) -> list[ProxyStatusEntry]:
        out: list[ProxyStatusEntry] = []
        self._sp()
        while self.i < len(self.s):
            if self.s[self.i] == "(":
                self._inner_list()
                self._params()
            else:
                proxy = self._bare()
                params = self._params()
                error = params.get("error")
                out.append(
                    ProxyStatusEntry(
                        proxy=str(proxy),
                        error=error if isinstance(error, str) else None,
                        params=params,
                    )
                )
            self._ows()
            if self.i >= len(self.s):
                return out
            if self.s[self.i] != ",":
                raise _Malformed("expected a comma")
            self.i += 1
            self._ows()
            if self.i >= len(self.s):
                raise _Malformed("a trailing comma")
        return out

    def _inner_list(self) -> None:
        self.i += 1
        while self.i < len(self.s):
            self._sp()
            if self.i < len(self.s) and self.s[self.i] == ")":
                self.i += 1
                return
            self._bare()
            self._params()
        raise _Malformed("an inner list without its end")

    def _params(self) -> dict[str, Bare]:
        params: dict[str, Bare] = {}
        while self.i < len(self.s) and self.s[self.i] == ";":
            self.i += 1
            self._sp()
            m = _KEY.match(self.s, self.i)
            if m is None:
                raise _Malformed("a parameter without a key")
            self.i = m.end()
            value: Bare = True
            if self.i < len(self.s) and self.s[self.i] == "=":
                self.i += 1
                value = self._bare()
            params[m.group()] = value
        return params

    def _bare(self) -> Bare:
        if self.i >= len(self.s):
            raise _Malformed("a missing item")
        c = self.s[self.i]
        if c == '"':
            return self._string()
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise _Malformed("a bad boolean")
            self.i += 2
            return flag == "1"
        if c == ":":
            end = self.s.find(":", self.i + 1)
            if end < 0:
                raise _Malformed("a byte sequence without its end")
            raw = self.s[self.i : end + 1]
            self.i = end + 1
            return raw
        if c == "-" or c.isdigit():
            m = _NUMBER.match(self.s, self.i)
            if m is None:
                raise _Malformed("a bad number")
            self.i = m.end()
            return float(m.group()) if m.group(1) else int(m.group())
        m = _TOKEN.match(self.s, self.i)
        if m is None:
            raise _Malformed(f"an unexpected character {c!r}")
        self.i = m.end()
        return m.group()

    def _string(self) -> str:
        out: list[str] = []
        self.i += 1
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.s[self.i : self.i + 1]
                if nxt not in ('"', "\\"):
                    raise _Malformed("a bad escape in a string")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not " " <= c <= "~":
                raise _Malformed("a character not allowed in a string")
            else:
                out.append(c)
        raise _Malformed("a string without its end")
