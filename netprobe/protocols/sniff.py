"""Say what a peer's first bytes look like, when they are not what the client expected.

Pure and sans-IO: ``describe_bytes(b"HTTP/1.1 400 Bad Request\\r\\n...")`` returns
``"an HTTP response (HTTP/1.1 400 Bad Request)"``. Used by the TLS rung (``tls.not_tls``: plain
HTTP on the TLS port) and by the database rungs (``db.protocol_mismatch``).
"""

from __future__ import annotations

import re

__all__ = ["describe_bytes", "looks_like_tls", "printable_preview"]

_HTTP_METHODS = (b"GET ", b"POST ", b"PUT ", b"HEAD ", b"DELETE ", b"OPTIONS ", b"PATCH ")
_HTTP_STATUS = re.compile(rb"^HTTP/\d(?:\.\d)? \d{3}[^\r\n]*")
_SMTP_FTP = re.compile(rb"^(220|421)[ -]")


def looks_like_tls(data: bytes) -> bool:
    """True when ``data`` starts like a TLS record (RFC 8446 §5.1: type, legacy version 3.x).

    Content types: 0x14 change_cipher_spec, 0x15 alert, 0x16 handshake, 0x17 application_data.
    """
    if not data:
        return False
    if data[0] not in (0x14, 0x15, 0x16, 0x17):
        return False
    return len(data) < 2 or data[1] == 0x03


def printable_preview(data: bytes, limit: int = 60) -> str:
    """The first line of ``data`` as text, non-printable bytes escaped, cut to ``limit``."""
    line = data.split(b"\n", 1)[0].rstrip(b"\r")
    text = line[:limit].decode("latin-1")
    out = "".join(c if c.isprintable() and ord(c) < 127 else f"\\x{ord(c):02x}" for c in text)
    return out + ("..." if len(line) > limit else "")


def describe_bytes(data: bytes) -> str:
    """What the first bytes a peer sent look like, in words, for a report.

    Recognises TLS records, HTTP responses and requests, HTTP/2 server prefaces (SETTINGS,
    GOAWAY), SSH / SMTP / FTP banners, Redis replies, the MySQL greeting and PostgreSQL
    messages; anything else is shown escaped.
    """
    if not data:
        return "nothing (the peer sent no bytes)"
    m = _HTTP_STATUS.match(data)
    if m:
        return f"an HTTP response ({printable_preview(m.group(0))})"
    if data.startswith(b"HTTP/"):
        return f"an HTTP response ({printable_preview(data)})"
    if data.startswith(_HTTP_METHODS):
        return f"an HTTP request ({printable_preview(data)})"
    if data.startswith(b"SSH-"):
        return f"an SSH banner ({printable_preview(data)})"
    if looks_like_tls(data):
        if data[0] == 0x15:
            return "a TLS alert record"
        return "a TLS record"
    if data.startswith(b"<"):
        return f"HTML or XML without an HTTP status line ({printable_preview(data)})"
    if _SMTP_FTP.match(data):
        return f"an SMTP or FTP banner ({printable_preview(data)})"
    if data[:1] in (b"+", b"-", b":") and b"\r\n" in data[:512]:
        return f"a Redis reply ({printable_preview(data)})"
    http2 = _http2_frame(data)
    if http2 is not None:
        return http2
    mysql = _mysql_greeting(data)
    if mysql is not None:
        return mysql
    if data[:1] in (b"N", b"S") and len(data) == 1:
        return "a PostgreSQL SSLRequest answer"
    if data[:1] in (b"E", b"R") and len(data) >= 5:
        # PostgreSQL backend message: type byte, then a 4-byte big-endian length.
        length = int.from_bytes(data[1:5], "big")
        if 4 <= length <= 65536:
            kind = "an error" if data[:1] == b"E" else "an authentication request"
            return f"a PostgreSQL message ({kind})"
    if data[:1] == b"{":
        return f"JSON or text ({printable_preview(data)})"
    return f"unrecognised bytes ({printable_preview(data, 32)})"


def _http2_frame(data: bytes) -> str | None:
    # RFC 9113 §4.1: a 24-bit length, type, flags, a 31-bit stream id. A server's first frame
    # is SETTINGS (§3.4: the server preface), or a GOAWAY for a preface it did not like;
    # both on stream 0, SETTINGS a multiple of 6 bytes long.
    if len(data) < 9 or data[0] != 0:
        return None
    length = int.from_bytes(data[0:3], "big")
    stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
    if stream != 0 or length > 16384:
        return None
    if data[3] == 0x04 and length % 6 == 0 and data[4] & ~0x01 == 0:
        return "an HTTP/2 SETTINGS frame (a cleartext HTTP/2 server: h2c, gRPC)"
    if data[3] == 0x07 and length >= 8:
        return "an HTTP/2 GOAWAY frame (a cleartext HTTP/2 server: h2c, gRPC)"
    return None


def _mysql_greeting(data: bytes) -> str | None:
    # MySQL packet: 3-byte little-endian length, 1-byte sequence 0, then protocol version 10
    # and a NUL-terminated server version (or 0xff and an error, e.g. 1040 too many conns).
    if len(data) < 6 or data[3] != 0:
        return None
    length = int.from_bytes(data[0:3], "little")
    if not 1 <= length <= 1 << 16:
        return None
    if data[4] == 10:
        version = data[5:].split(b"\0", 1)[0]
        return f"a MySQL server greeting (version {printable_preview(version, 40)})"
    if data[4] == 0xFF and len(data) >= 7:
        code = int.from_bytes(data[5:7], "little")
        return f"a MySQL error packet (error {code})"
    return None
