"""The one fact netprobe reads from a bare HTTP response head of its own: the ``Date`` header.

Pure and sans-IO. RFC 9110 §6.6.1: an origin server with a clock sends ``Date`` in every
response, as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``); recipients also accept the
obsolete forms, which :func:`email.utils.parsedate_to_datetime` parses.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["END_OF_HEAD", "date_header"]

END_OF_HEAD = b"\r\n\r\n"


def date_header(head: bytes) -> datetime | None:
    """The ``Date`` of a response head (UTC), or None when it has none (or an unreadable one)."""
    if not head.startswith(b"HTTP/"):
        return None
    from email.utils import parsedate_to_datetime  # only after a certificate date failure

    for line in head.split(END_OF_HEAD, 1)[0].split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"date":
            try:
                when = parsedate_to_datetime(value.strip().decode("latin-1"))
            except (TypeError, ValueError, IndexError):
                return None
            return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return None
