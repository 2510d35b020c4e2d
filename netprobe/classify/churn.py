"""Churn rules: what fresh and reused source ports say together.

A stateful firewall or NAT tracks sessions by their 5-tuple. When it keeps a session after
the client closed it (many keep a closed session for seconds to minutes), a new SYN that
reuses the same source port belongs to a session it still holds, in the wrong state: it is
dropped. From the client: reconnects from the just-closed port time out, or connect only
after a retransmitted SYN (once the firewall forgot), while fresh ports connect on the first
SYN. When fresh ports fail as well, the fault is not the reuse: the ordinary connect verdict
is given.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .._frozen import FrozenMap
from ..report import ChurnAttempt, ChurnStats, Evidence, Fault
from ..target import Target
from ._observations import fault

__all__ = ["ChurnVerdict", "churn_stats", "churn_verdict"]

#: A kind of connect is in trouble when at least this share of its connects timed out or
#: needed a retransmitted SYN (and at least two did).
_BAD_SHARE = 0.25


def churn_stats(attempts: Sequence[ChurnAttempt]) -> ChurnStats:
    """Counts and connect times of one kind of connect (bind failures are not connects)."""
    tried = [a for a in attempts if a.outcome != "bind_failed"]
    est = [a for a in tried if a.outcome == "established"]
    times = sorted(a.connect_ms for a in est if a.connect_ms is not None)
    by = Counter(
        "timeout" if a.outcome == "timeout" else str(a.syns_sent)
        for a in tried
        if a.outcome == "timeout" or (a.outcome == "established" and a.syns_sent is not None)
    )
    order = sorted(by, key=lambda k: (k == "timeout", int(k) if k.isdigit() else 0))
    return ChurnStats(
        attempts=len(tried),
        established=len(est),
        timed_out=sum(1 for a in tried if a.outcome == "timeout"),
        failed=sum(1 for a in tried if a.outcome not in ("established", "timeout")),
        retransmitted=sum(1 for a in est if _retransmitted(a)),
        by_syns=FrozenMap({k: by[k] for k in order}),
        median_ms=round(statistics.median(times), 3) if times else None,
        max_ms=round(times[-1], 3) if times else None,
    )


def _retransmitted(a: ChurnAttempt) -> bool:
    # Without TCP_INFO, a connect of 1 s or more is the first SYN's retransmission timeout.
    if a.syns_sent is not None:
        return a.syns_sent > 1
    return a.connect_ms is not None and a.connect_ms >= 900.0


def _bad(s: ChurnStats) -> int:
    return s.timed_out + s.retransmitted


@dataclass(frozen=True)
class ChurnVerdict:
    ok: bool
    fault: Fault | None
    summary: str


def _spread(s: ChurnStats) -> str:
    parts = []
    for k, n in s.by_syns.items():
        parts.append(f"{n} timed out" if k == "timeout" else f"{n} on SYN {k}")
    return ", ".join(parts)


def churn_verdict(
    target: Target,
    fresh: ChurnStats,
    reused: ChurnStats,
    *,
    attempts: Sequence[ChurnAttempt] = (),
    timeout_s: float,
) -> ChurnVerdict:
    """``l4.reused_port_dropped`` when reused ports time out (or need retransmitted SYNs)
    while fresh ports connect; the ordinary connect fault when fresh ports fail too."""
    where = target.netloc
    if fresh.attempts == 0:
        return ChurnVerdict(False, None, f"No connect to {where} could be made.")
    if fresh.established == 0:
        outcomes = Counter(a.outcome for a in attempts if a.kind == "fresh")
        top = outcomes.most_common(1)[0][0] if outcomes else "timeout"
        code = {"refused": "l4.refused", "timeout": "l4.connect_timeout"}.get(
            top, "l4.connect_failed"
        )
        summary = (
            f"No fresh connect to {where} was established ({fresh.attempts} tried, most "
            f"{top}): the target is not reachable at all, whatever the source port."
        )
        return ChurnVerdict(False, fault(code, summary), summary)
    reused_bad, fresh_bad = _bad(reused), _bad(fresh)
    reused_share = reused_bad / reused.attempts if reused.attempts else 0.0
    fresh_share = fresh_bad / fresh.attempts
    if reused_bad >= 2 and reused_share >= _BAD_SHARE and fresh_share <= reused_share / 4:
        summary = (
            f"Reconnects to {where} from just-closed source ports are dropped: "
            f"{reused_bad} of {reused.attempts} lost their SYN ({_what(reused, timeout_s)}), "
            f"while {fresh.established} of {fresh.attempts} "
            f"fresh ports connected"
            + (" on the first SYN" if fresh_bad == 0 else f" ({fresh_bad} slow)")
            + ": a stateful firewall or NAT on the path still holds the closed sessions."
        )
        ev = (
            Evidence(
                step="tcp",
                observation=f"reused ports: {_spread(reused)}; fresh ports: {_spread(fresh)}",
                data={
                    "reused_attempts": reused.attempts,
                    "reused_timed_out": reused.timed_out,
                    "reused_retransmitted": reused.retransmitted,
                    "fresh_attempts": fresh.attempts,
                    "fresh_timed_out": fresh.timed_out,
                    "fresh_retransmitted": fresh.retransmitted,
                },
            ),
        )
        hints = (
            "Compare the firewall's or NAT's hold time for closed sessions (TIME_WAIT / "
            "closing timeouts) with how fast clients reuse source ports under churn; on "
            "the client, a wider ip_local_port_range and connection pooling reuse ports "
            "less often.",
        )
        return ChurnVerdict(False, fault("l4.reused_port_dropped", summary, ev, hints), summary)
    ok = reused_bad == 0 and fresh_bad == 0 and fresh.failed == 0 and reused.failed == 0
    summary = (
        f"{fresh.established} of {fresh.attempts} fresh and {reused.established} of "
        f"{reused.attempts} reused-port connects to {where} established"
    )
    if ok:
        summary += (
            f", each on its first SYN (median {fresh.median_ms:g} ms): no session table "
            "holds closed connections against a reuse."
        )
    else:
        summary += (
            f"; fresh ports: {_spread(fresh) or 'none'}; reused ports: "
            f"{_spread(reused) or 'none'}: not a port-reuse pattern."
        )
    return ChurnVerdict(ok, None, summary)


def _what(s: ChurnStats, timeout_s: float) -> str:
    parts = []
    if s.timed_out:
        parts.append(f"{s.timed_out} timed out after {timeout_s:g} s")
    if s.retransmitted:
        parts.append(f"{s.retransmitted} connected only on a retransmitted SYN")
    return ", ".join(parts)
