"""What a TLS handshake shows in the clear: records, handshake messages, the ServerHello, and
whether the server asked for a client certificate. Pure and sans-IO, in the manner of h11:
bytes in (what the client sent and received during the handshake), facts out.

Why: Python's ``ssl`` module says nothing about a CertificateRequest, yet "the server asked
for a client certificate and none was sent" is what separates a server that requires mutual
TLS from one that merely closed the connection.

* Up to TLS 1.2 the whole handshake before ChangeCipherSpec is plaintext (RFC 5246 §7.4):
  the server's CertificateRequest (handshake type 13) is seen in what it sent, and the
  client's Certificate message (type 11, empty when it has none) in what the client sent.
* In TLS 1.3 the server's CertificateRequest is encrypted (RFC 8446 §4.3.2), but the
  client's answer shows it: after the ServerHello the client sends its flight in
  application_data records, and OpenSSL (1.1.1 and 3.x, checked on 3.0) writes each
  handshake message in a record of its own: Finished alone when no certificate was asked
  for; an (empty) Certificate, then Finished when one was asked for and the client had none;
  Certificate, CertificateVerify, Finished when it sent one (RFC 8446 §4.4). Counting the
  client's own encrypted records reads that answer without decrypting anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "HandshakeView",
    "Record",
    "handshake_messages",
    "records",
    "server_hello",
    "view_handshake",
]

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
_CONTENT_TYPES = frozenset({CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA})
SERVER_HELLO, CERTIFICATE, CERTIFICATE_REQUEST, SERVER_HELLO_DONE = 2, 11, 13, 14
_SUPPORTED_VERSIONS = 43  # RFC 8446 §4.2.1

#: Wire versions (RFC 8446 §4.1.2 legacy_version, §4.2.1 supported_versions) to the names
#: ``ssl.SSLObject.version()`` uses.
VERSION_NAMES: dict[int, str] = {
    0x0300: "SSLv3",
    0x0301: "TLSv1",
    0x0302: "TLSv1.1",
    0x0303: "TLSv1.2",
    0x0304: "TLSv1.3",
}


@dataclass(frozen=True)
class Record:
    """One TLS record (RFC 8446 §5.1): content type, legacy version, payload."""

    type: int
    version: int
    payload: bytes


def records(data: bytes) -> list[Record]:
    """The complete records at the start of ``data`` (a cut record at the end is left out;
    bytes that are not a record end the list)."""
    return [Record(kind, version, data[at : at + n]) for kind, version, at, n in _spans(data)]


def _spans(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(content type, version, payload offset, payload length) of each complete record: no
    payload is copied (this runs on every handshake)."""
    i, end = 0, len(data)
    while i + 5 <= end:
        kind, major = data[i], data[i + 1]
        if kind not in _CONTENT_TYPES or major != 3:
            return
        length = (data[i + 3] << 8) | data[i + 4]
        if i + 5 + length > end:
            return
        yield kind, (major << 8) | data[i + 2], i + 5, length
        i += 5 + length


def handshake_messages(data: bytes) -> list[tuple[int, bytes]]:
    """The plaintext handshake messages (type, body) in ``data``, in order, up to the first
    ChangeCipherSpec (after it a TLS 1.2 peer encrypts; TLS 1.3 sends application_data
    records, which are not handshake records). A message may span records (RFC 5246 §6.2.1)."""
    stream = b""
    for kind, _, at, n in _spans(data):
        if kind == CHANGE_CIPHER_SPEC:
            break
        if kind == HANDSHAKE:
            stream += data[at : at + n]
    out: list[tuple[int, bytes]] = []
    i = 0
    while i + 4 <= len(stream):
        length = int.from_bytes(stream[i + 1 : i + 4], "big")
        if i + 4 + length > len(stream):
            break
        out.append((stream[i], stream[i + 4 : i + 4 + length]))
        i += 4 + length
    return out


def server_hello(body: bytes) -> tuple[int, int] | None:
    """(negotiated version, cipher suite) of a ServerHello body, or None when it is cut.

    The version is ``supported_versions``' selected_version when present (TLS 1.3), else
    legacy_version (RFC 8446 §4.1.3)."""
    if len(body) < 35:
        return None
    version = int.from_bytes(body[0:2], "big")
    sid = body[34]
    at = 35 + sid
    if at + 3 > len(body):
        return None
    suite = int.from_bytes(body[at : at + 2], "big")
    at += 3  # cipher_suite, legacy_compression_method
    if at + 2 <= len(body):
        end = min(len(body), at + 2 + int.from_bytes(body[at : at + 2], "big"))
        at += 2
        while at + 4 <= end:
            ext = int.from_bytes(body[at : at + 2], "big")
            size = int.from_bytes(body[at + 2 : at + 4], "big")
            if ext == _SUPPORTED_VERSIONS and size == 2 and at + 6 <= end:
                version = int.from_bytes(body[at + 4 : at + 6], "big")
            at += 4 + size
    return version, suite


@dataclass(frozen=True)
class HandshakeView:
    """What the handshake bytes show about the negotiation and the client certificate."""

    #: The version the ServerHello chose ("TLSv1.2"...), None before a ServerHello.
    version: str | None = None
    #: The server asked for a client certificate (None: cannot be known from these bytes).
    client_cert_requested: bool | None = None
    #: The client answered with a certificate (False: an empty Certificate message).
    client_cert_sent: bool | None = None


def view_handshake(sent: bytes, received: bytes) -> HandshakeView:
    """Read the client-certificate exchange from the bytes of one handshake: ``sent`` by the
    client and ``received`` from the server, each from its first byte."""
    server = handshake_messages(received)
    hellos = [server_hello(body) for kind, body in server if kind == SERVER_HELLO]
    hello = next((h for h in reversed(hellos) if h is not None), None)
    if hello is None:
        return HandshakeView()
    version = VERSION_NAMES.get(hello[0], f"0x{hello[0]:04x}")
    if hello[0] >= 0x0304:
        encrypted = sum(1 for kind, *_ in _spans(sent) if kind == APPLICATION_DATA)
        if encrypted == 0:  # the client's flight was not sent: the handshake ended before
            return HandshakeView(version)
        return HandshakeView(version, encrypted >= 2, encrypted >= 3 if encrypted >= 2 else None)
    kinds = {kind for kind, _ in server}
    requested: bool | None = None
    if CERTIFICATE_REQUEST in kinds:
        requested = True
    elif SERVER_HELLO_DONE in kinds:
        requested = False
    sent_cert: bool | None = None
    for kind, body in handshake_messages(sent):
        if kind == CERTIFICATE:
            sent_cert = len(body) >= 3 and int.from_bytes(body[0:3], "big") > 0
    return HandshakeView(version, requested, sent_cert if requested else None)
