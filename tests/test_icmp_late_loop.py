"""The one-task Pinger on a late event loop: an echo whose slot has passed goes out at once.

On a loaded host the loop can wake up after the next echo's slot; the delay to sleep was then
negative, ``anyio.sleep`` raised ValueError and the whole diagnosis died with a traceback
(seen in the namespace lab with ~50 concurrent CLI runs). ``interval=0`` makes every slot
after the first one already past.
"""

from __future__ import annotations

import anyio
from test_icmp import require_icmp

from netprobe.options import Options
from netprobe.probes._context import ProbeContext
from netprobe.probes.icmp import Pinger
from netprobe.target import parse_target


def test_echo_slots_already_past_do_not_raise() -> None:
    require_icmp()
    ctx = ProbeContext(parse_target("localhost:1"), Options(icmp_count=3))
    pinger = Pinger(ctx, ["127.0.0.1"], interval=0.0)
    anyio.run(pinger.run)
    result = pinger.step().results[0]
    assert result.sent == 3 and result.received == 3
