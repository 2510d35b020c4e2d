"""Pool rules: what one pool connection's observations mean, and what the connections say
taken together (the most common fault speaks for the pool, with the connections it hit).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ..describe import server_name
from ..options import Options
from ..report import ConnectionOutcome, Evidence, Fault, IdleSearch, PoolConnection
from ..steps import DatabaseResult, HoldCheck, Step, TlsStep
from ..target import Target
from . import classify
from ._observations import fault
from .database import db_error_code

__all__ = [
    "ConnectionVerdict",
    "PoolVerdict",
    "connection_detail",
    "connection_verdict",
    "held_detail",
    "idle_kill",
    "idle_search_verdict",
    "pool_verdict",
]


@dataclass(frozen=True)
class ConnectionVerdict:
    """One pool connection: validated, refused by the server, or failed; and why."""

    outcome: ConnectionOutcome
    fault_code: str | None = None
    detail: str | None = None


def connection_verdict(
    target: Target, options: Options, steps: Sequence[Step]
) -> ConnectionVerdict:
    """The verdict of one pool connection's steps (classify()), in the pool's terms."""
    verdict = classify(target, options, steps)
    if verdict.fault is None:
        return ConnectionVerdict("validated")
    app = next((s for s in steps if s.name == "application"), None)
    db = getattr(app, "database", None)
    tls = next((s for s in steps if isinstance(s, TlsStep) and s.status == "failed"), None)
    if isinstance(db, DatabaseResult):
        outcome: ConnectionOutcome = "refused" if db.outcome == "server_error" else "failed"
        return ConnectionVerdict(outcome, verdict.fault.code, connection_detail(db))
    detail = tls.reason if tls is not None else verdict.fault.summary
    return ConnectionVerdict("failed", verdict.fault.code, detail)


def held_detail(r: DatabaseResult) -> str | None:
    """Why a held connection no longer counts, or None when it still answers."""
    return None if r.outcome in ("ready", "validated") else connection_detail(r)


@dataclass(frozen=True)
class IdleKill:
    """A held connection found dead by the keepalive probe after its hold."""

    code: str
    detail: str


def idle_kill(check: HoldCheck) -> IdleKill | None:
    """``l4.idle_killed`` when the keepalive probe after the hold got silence, an RST, or
    found the connection closed; None when it was answered (or could not be sent)."""
    waited = f"{check.waited_ms / 1000:.1f} s"
    if check.outcome == "silence":
        n = check.probes_unanswered or 0
        probes = f"{n} keepalive probe{'s' if n != 1 else ''}" if n else "a keepalive probe"
        return IdleKill(
            "l4.idle_killed",
            f"silence: no ACK to {probes} in {waited} (a stateful firewall or NAT on the "
            "path dropped the idle session)",
        )
    if check.outcome == "reset":
        return IdleKill(
            "l4.idle_killed",
            "RST: the keepalive probe was answered with a reset (a firewall or NAT that "
            "forgot the idle session, or the server, reset it)",
        )
    if check.outcome == "closed":
        how = f" ({check.error.errno_name})" if check.error and check.error.errno_name else ""
        return IdleKill(
            "l4.idle_killed",
            f"closed{how}: the peer had closed the idle connection (FIN): the server's or a "
            "proxy's idle timeout",
        )
    return None


_IDLE_HINTS = (
    "Compare the hold with the idle timeouts on the path (firewall / NAT / load balancer "
    "session timeouts, conntrack's nf_conntrack_tcp_timeout_established) and with the "
    "pool's idle settings (HikariCP idleTimeout / keepaliveTime, SQLAlchemy pool_recycle / "
    "pool_pre_ping).",
    "`netprobe pool TARGET --find-idle-timeout` measures the longest idle that survives.",
)


@dataclass(frozen=True)
class PoolVerdict:
    """The pool as a whole."""

    ok: bool
    fault: Fault | None
    summary: str
    first_failure: int | None
    most_common_fault: str | None
    #: Connections whose connect needed a retransmitted SYN (None: no count was read).
    syn_retransmitted: int | None = None


def pool_verdict(
    target: Target,
    connections: Sequence[PoolConnection],
    *,
    requested: int,
    hold_s: float,
    held_ok: int | None,
    dns_fault: Fault | None = None,
) -> PoolVerdict:
    """The pool's verdict: ok when every requested connection opened, validated and (when
    held) still answered; else the most common fault, naming the connections it hit."""
    conns = list(connections)
    opened = sum(1 for c in conns if c.outcome == "validated")
    failed = [c for c in conns if c.outcome in ("refused", "failed")]
    counts = Counter(c.fault_code for c in failed if c.fault_code)
    common = counts.most_common(1)[0][0] if counts else None
    found = dns_fault
    if found is None and common is not None:
        first = next(c for c in failed if c.fault_code == common)
        found = _with_detail(fault(common, _summary(target, conns, opened, common)), first)
    held_codes = Counter(c.held_fault_code for c in conns if c.held_fault_code)
    if found is None and held_codes:
        code = common = held_codes.most_common(1)[0][0]
        hit = [c for c in conns if c.held_fault_code == code]
        text = (
            f"{_summary(target, conns, opened, None)[:-1]}, but after holding them {hold_s:g} s "
            f"idle, {_ranges([c.index for c in hit])} died: {hit[0].detail}."
        )
        ev = Evidence(
            step="tcp",
            observation=f"connection {hit[0].index}: {hit[0].detail}",
            data={
                "index": hit[0].index,
                "outcome": hit[0].hold_check.outcome if hit[0].hold_check else None,
                "waited_ms": hit[0].hold_check.waited_ms if hit[0].hold_check else None,
                "idle_ms": hit[0].hold_check.idle_ms if hit[0].hold_check else None,
                "probes_unanswered": (
                    hit[0].hold_check.probes_unanswered if hit[0].hold_check else None
                ),
            },
        )
        found = fault(code, text, (ev,), _IDLE_HINTS)
        summary = found.summary
        if held_ok is not None and held_ok + len(hit) < opened:
            summary += f" Only {held_ok} of {opened} still answered."
    else:
        summary = found.summary if found else _summary(target, conns, opened, None)
        if held_ok is not None and held_ok < opened:
            summary += f" After holding {hold_s:g} s, only {held_ok} still answered."
    counted = [c for c in conns if c.tcp is not None and c.tcp.syn_retransmits is not None]
    lost = sum(1 for c in counted if c.tcp is not None and (c.tcp.syn_retransmits or 0) > 0)
    if lost:
        summary += (
            f" {lost} of {len(counted)} connects needed a retransmitted SYN (TCP_INFO): "
            "SYNs or SYN+ACKs are being lost."
        )
    ok = found is None and opened == requested and (held_ok is None or held_ok == opened)
    return PoolVerdict(
        ok=ok,
        fault=found,
        summary=summary,
        first_failure=failed[0].index if failed else None,
        most_common_fault=common,
        syn_retransmitted=lost if counted else None,
    )


def idle_search_verdict(
    target: Target, search: IdleSearch, connections: Sequence[PoolConnection]
) -> PoolVerdict:
    """The idle-timeout search: ``l4.idle_killed`` naming the bracket (the longest idle that
    survived, the shortest that died, and how); ok when every idle tried survived. A search
    whose connections could not open is the pool's opening fault."""
    conns = list(connections)
    failed = [c for c in conns if c.outcome in ("refused", "failed")]
    if not any(c.outcome == "validated" for c in conns):
        return pool_verdict(target, conns, requested=len(conns), hold_s=0.0, held_ok=None)
    where = target.netloc
    if search.died_s is not None:
        dead = next(c for c in conns if c.held_fault_code is not None)
        lower = (
            f"{search.survived_s:g} s survived"
            if search.survived_s is not None
            else "no shorter idle was tried"
        )
        summary = (
            f"Connections to {where} idle for {search.died_s:g} s died ({dead.detail}); "
            f"{lower}: the idle timeout on the path is "
            + (
                f"between {search.survived_s:g} and {search.died_s:g} s."
                if search.survived_s is not None
                else f"under {search.died_s:g} s."
            )
        )
        ev = Evidence(
            step="tcp",
            observation="; ".join(f"idle {t.idle_s:g} s: {t.outcome}" for t in search.trials),
            data={
                "survived_s": search.survived_s,
                "died_s": search.died_s,
                "death": search.death,
                "max_idle_s": search.max_idle_s,
            },
        )
        found = fault("l4.idle_killed", summary, (ev,), _IDLE_HINTS[:1])
        return PoolVerdict(False, found, summary, dead.index, "l4.idle_killed")
    longest = search.survived_s
    summary = (
        f"Connections to {where} survived every idle tried, up to {longest:g} s: no idle "
        "timeout shorter than that on the path."
        if longest is not None
        else f"No connection to {where} could be checked after an idle."
    )
    ok = longest is not None and not failed
    return PoolVerdict(ok, None, summary, failed[0].index if failed else None, None)


def connection_detail(r: DatabaseResult) -> str:
    """``MariaDB 1040 Too many connections (max_connections reached)``."""
    mapped = db_error_code(r)
    meaning = f" ({mapped[1]})" if mapped else ""
    if r.outcome == "server_error":
        text = r.error_message or ""
        if r.protocol == "redis":
            return f"{server_name(r)} -{text}{meaning}"
        return f"{server_name(r)} {r.error_code} {text}{meaning}"
    if r.outcome == "mismatch":
        return f"not {server_name(r)}: {r.looks_like}"
    if r.outcome == "timeout":
        return f"no answer from {server_name(r)} during the {r.phase}"
    return f"{server_name(r)}: {r.outcome} {r.error_message or ''}".strip()


def _ranges(indices: list[int]) -> str:
    out: list[str] = []
    i = 0
    while i < len(indices):
        j = i
        while j + 1 < len(indices) and indices[j + 1] == indices[j] + 1:
            j += 1
        out.append(str(indices[i]) if i == j else f"{indices[i]}–{indices[j]}")
        i = j + 1
    return ", ".join(out)


_VERBS = {
    "db.too_many_connections": "were refused by the server",
    "db.host_blocked": "were refused by the server",
    "db.access_denied": "were denied by the server",
    "db.auth_failed": "failed to log in",
    "db.not_ready": "found the server not ready",
    "db.greeting_timeout": "got no greeting in time",
}


def _summary(
    target: Target, conns: Sequence[PoolConnection], opened: int, common: str | None
) -> str:
    n = len(conns)
    text = f"{opened} of {n} opened"
    if common is None:
        return text + f" and validated at the same time on {target.netloc}."
    idx = [c.index for c in conns if c.fault_code == common]
    verb = _VERBS.get(common, f"failed ({common})")
    first = next(c for c in conns if c.fault_code == common)
    # An error packet sent instead of the greeting does not name the product: take it from
    # a sibling connection that got a greeting.
    known = next((c.database.server for c in conns if c.database and c.database.server), None)
    db = first.database
    if db is not None and db.server is None and known is not None:
        db = db.replace(server=known)
    # A connection that failed before any database byte carries its fault's summary, which
    # ends with its own full stop.
    detail = connection_detail(db) if db else (first.detail or common).rstrip(".")
    text += f"; {_ranges(idx)} {verb}: {detail}"
    others = [c for c in conns if c.fault_code not in (None, common)]
    if others:
        text += f"; {len(others)} more failed otherwise"
    return text + "."


def _with_detail(fault: Fault, first: PoolConnection) -> Fault:
    ev = Evidence(
        step="application" if first.database else "tcp",
        observation=f"connection {first.index}: {first.detail or first.outcome}",
        data={"index": first.index, "outcome": first.outcome, "fault_code": first.fault_code},
    )
    return fault.replace(evidence=(ev,))
