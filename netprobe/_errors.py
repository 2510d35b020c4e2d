"""Exceptions raised for user mistakes. Network faults are never raised: they are verdicts.

This module imports nothing of netprobe: every other module may raise these.
"""

from __future__ import annotations

__all__ = ["InvalidOption", "InvalidTarget", "NetprobeError"]


class NetprobeError(Exception):
    """Base class of netprobe's own exceptions."""


class InvalidTarget(NetprobeError, ValueError):
    """The target string is not valid; raised before any I/O. The message names the problem."""


class InvalidOption(NetprobeError, ValueError):
    """An option has a bad name or value; raised before any I/O."""
