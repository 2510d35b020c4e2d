"""netprobe.testing's servers on a lab address, for processes inside the lab's server namespace.

The public fixture servers refuse anything but loopback. These subclasses lift that rule, and
only code that runs inside a lab namespace (started with ``ip netns exec``, whose addresses
are 198.18.0.0/15 and which has no route out) may use them.
"""

from __future__ import annotations

from typing import ClassVar

from netprobe.testing import DnsServer, L7Server

__all__ = ["LabDnsServer", "LabL7Server"]


class LabL7Server(L7Server):
    """:class:`netprobe.testing.L7Server` on a lab address (inside the server namespace)."""

    _loopback_only: ClassVar[bool] = False


class LabDnsServer(DnsServer):
    """:class:`netprobe.testing.DnsServer` on a lab address (inside the server namespace)."""

    _loopback_only: ClassVar[bool] = False
