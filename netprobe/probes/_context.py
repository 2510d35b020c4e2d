"""What every probe gets: the target, the options, the clock and the total deadline."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .._hooks import DEADLINE_ORIGIN
from ..options import Options
from ..proxies import ProxyRoute
from ..target import Target

__all__ = ["ProbeContext"]


@dataclass
class ProbeContext:
    """Per-diagnosis state shared by the probes. Times are ``time.perf_counter()`` seconds."""

    target: Target
    options: Options
    #: The forward proxy the target is reached through (netprobe/proxies.py), if any: the
    #: DNS and TCP rungs then go to the proxy (``dial_host``, ``dial_port``).
    route: ProxyRoute | None = None
    started: float = field(default_factory=time.perf_counter)
    #: Where the total deadline counts from (the CLI: its process's start), if not ``started``.
    origin: float | None = field(default_factory=DEADLINE_ORIGIN.get)
    #: When the timings' clock started (``start_clock``): after the preparation (first
    #: imports, the TLS context), so that every timing is the network's. The total deadline
    #: counts from ``started`` (or ``origin``).
    clock: float | None = None
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def dial_host(self) -> str:
        """The host the DNS and TCP rungs reach: the proxy's, or the target's."""
        return self.route.host if self.route is not None else self.target.host

    @property
    def dial_port(self) -> int:
        return self.route.port if self.route is not None else self.target.port

    @property
    def dial_is_ip(self) -> bool:
        return self.route.is_ip if self.route is not None else self.target.is_ip

    @property
    def deadline(self) -> float:
        origin = self.started if self.origin is None else min(self.origin, self.started)
        return origin + self.options.timeout

    def remaining(self) -> float:
        """Seconds left before the total deadline (never negative)."""
        return max(0.0, self.deadline - time.perf_counter())

    def budget(self, seconds: float) -> float:
        """A rung's own timeout, cut to what is left of the total deadline."""
        return min(seconds, self.remaining())

    def start_clock(self) -> None:
        """Start the timings' clock: what came before it was netprobe's own preparation."""
        self.clock = time.perf_counter()

    def setup_ms(self) -> float | None:
        """Milliseconds of preparation before the clock started (None: it never started)."""
        return None if self.clock is None else round((self.clock - self.started) * 1000.0, 3)

    def restart_clock(self) -> None:
        """Start the total deadline again: a later round trip on a held connection (a pool's
        check after its hold) gets a whole deadline of its own, not what was left of the
        opening's. The marks keep counting from the new start."""
        self.started = time.perf_counter()
        self.clock = None
        self.marks.clear()

    def elapsed_ms(self) -> float:
        """Milliseconds on the timings' clock (since ``started`` until it starts)."""
        origin = self.started if self.clock is None else self.clock
        return (time.perf_counter() - origin) * 1000.0

    def since_start_ms(self) -> float:
        """Milliseconds since the diagnosis started, preparation included (the deadline's)."""
        return (time.perf_counter() - self.started) * 1000.0

    def mark(self, name: str) -> None:
        """Record a curl-style cumulative timing (ms since the start), once."""
        self.marks.setdefault(name, round(self.elapsed_ms(), 3))
