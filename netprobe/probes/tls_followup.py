"""Follow-up handshakes: after a failure, a few bounded TLS handshakes on fresh connections to
the same address, each learning one fact the failed exchange could not show.

* a plain-HTTP port that closed without a byte: does it answer a ClientHello (the port
  expects TLS: ``http.tls_required``)?
* a ``protocol_version`` failure: which versions does the server accept, one handshake
  pinned to each (``tls.protocol_version`` names both sides' ranges);
* a refused handshake with no version problem: which suite does the server pick when it is
  offered every one (no shared cipher, said as such);
* a certificate for another name on an IP target: which certificate does the server present
  for a server name (it chooses by SNI);
* a certificate that is not valid yet or expired: the server's ``Date`` header, read over
  TLS that verifies nothing (this host's clock, ``local.clock_skew``).

Each is made only in its case, never on a healthy path; each runs within the read timeout
and what is left of the total deadline (several at once, for the versions), and verifies
nothing: it learns a fact, it does not establish trust. Observations only: what each fact
means is decided in ``classify/tls.py``.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from datetime import UTC, datetime

import anyio

from ..protocols.http_head import END_OF_HEAD, date_header
from ..protocols.sniff import describe_bytes, looks_like_tls
from ..steps import ApplicationStep, CertificateInfo, FollowUpHandshake, FollowUpPurpose, TlsStep
from ._context import ProbeContext
from ._io import (
    STREAM_ERRORS,
    StreamError,
    TlsStream,
    elapsed_ms,
    stream_error,
    stream_from_socket,
)
from .ssl_contexts import fact_context
from .tcp import connect_address

__all__ = [
    "VERSIONS",
    "follow_up",
    "learn_why",
    "names_of",
    "server_versions",
    "tls_expected",
]

#: The versions a server's range is learnt from, low to high (this OpenSSL 3 still speaks
#: TLS 1.0 and 1.1 at @SECLEVEL=0).
VERSIONS: tuple[tuple[str, ssl.TLSVersion], ...] = (
    ("TLSv1", ssl.TLSVersion.TLSv1),
    ("TLSv1.1", ssl.TLSVersion.TLSv1_1),
    ("TLSv1.2", ssl.TLSVersion.TLSv1_2),
    ("TLSv1.3", ssl.TLSVersion.TLSv1_3),
)
_HEAD_CAP = 16 * 1024


async def follow_up(
    ctx: ProbeContext,
    address: str,
    purpose: FollowUpPurpose,
    *,
    server_name: str | None = None,
    version: ssl.TLSVersion | None = None,
    every_suite: bool = False,
    offered: str | None = None,
) -> FollowUpHandshake:
    """One handshake on a fresh connection to ``address`` (module docstring). Never raises
    for a network or TLS fault; outer cancellation propagates."""
    start = time.perf_counter()
    base = FollowUpHandshake(
        purpose=purpose,
        address=address,
        server_name=server_name,
        offered=offered,
        outcome="error",
    )
    alpn = ("http/1.1",) if purpose == "server_clock" else ()
    context = fact_context(version, every_suite=every_suite, alpn=alpn)
    _, sock = await connect_address(
        address, ctx.target.port, ctx.budget(ctx.options.connect_timeout)
    )
    if sock is None:
        return base.replace(outcome="connect_failed", duration_ms=elapsed_ms(start))
    stream = await stream_from_socket(sock)
    first = bytearray()

    def observe(data: bytes) -> None:
        if len(first) < 64:
            first.extend(data[: 64 - len(first)])

    try:
        tls = TlsStream(stream, context, server_name)
        with anyio.fail_after(max(0.0, ctx.budget(ctx.options.read_timeout))):
            await tls.handshake(observe)
            result = base.replace(
                outcome="ok",
                version=tls.ssl_object.version(),
                cipher=(tls.ssl_object.cipher() or (None,))[0],
                leaf=_leaf(tls.ssl_object),
            )
            if purpose == "server_clock":
                result = await _server_clock(ctx, tls, result)
    except STREAM_ERRORS as exc:
        result = _failed(base, stream_error(exc), bytes(first))
    except ValueError:  # a server name OpenSSL refuses (from the hosts file): nothing learnt
        result = base
    finally:
        with anyio.CancelScope(shield=True), contextlib.suppress(*STREAM_ERRORS):
            await stream.aclose()
    return result.replace(duration_ms=elapsed_ms(start))


def _failed(base: FollowUpHandshake, failed: StreamError, peer: bytes) -> FollowUpHandshake:
    if peer and not looks_like_tls(peer):
        return base.replace(outcome="not_tls", peer_sent=describe_bytes(peer))
    if failed.kind == "timeout":
        return base.replace(outcome="timeout")
    if failed.kind == "tls_alert":
        from .tls import alert_of

        return base.replace(outcome="alert", alert=alert_of(failed.tls_reason) or failed.tls_reason)
    return base.replace(outcome="closed", peer_sent=describe_bytes(peer) if peer else None)


async def server_versions(
    ctx: ProbeContext, address: str, server_name: str | None
) -> list[FollowUpHandshake]:
    """One handshake pinned to each version of :data:`VERSIONS`, all at once."""
    results: list[FollowUpHandshake | None] = [None] * len(VERSIONS)

    async def one(i: int, name: str, version: ssl.TLSVersion) -> None:
        results[i] = await follow_up(
            ctx,
            address,
            "server_version",
            server_name=server_name,
            version=version,
            offered=f"{name} only",
        )

    async with anyio.create_task_group() as tg:
        for i, (name, version) in enumerate(VERSIONS):
            tg.start_soon(one, i, name, version)
    return [r for r in results if r is not None]


def _leaf(obj: ssl.SSLObject) -> CertificateInfo | None:
    try:
        der = obj.getpeercert(binary_form=True)
    except (ssl.SSLError, ValueError):
        return None
    if not der:
        return None
    from ..protocols.x509 import describe_chain

    chain = describe_chain([der])
    return chain[0] if chain else None


async def _server_clock(
    ctx: ProbeContext, tls: TlsStream, result: FollowUpHandshake
) -> FollowUpHandshake:
    """``HEAD`` of the target's path (no body, no side effect for a sane server); the
    ``Date`` of the answer, and this host's clock when it arrived."""
    t = ctx.target
    host = f"[{t.host}]" if ":" in t.host else t.host
    request = (
        f"HEAD {t.path or '/'} HTTP/1.1\r\nHost: {host}:{t.port}\r\n"
        "User-Agent: netprobe\r\nConnection: close\r\n\r\n"
    ).encode()
    head = b""
    with contextlib.suppress(*STREAM_ERRORS):
        await tls.send(request)
        while END_OF_HEAD not in head and len(head) < _HEAD_CAP:
            head += await tls.receive(4096)
    when = date_header(head)
    if when is None:
        return result
    return result.replace(server_date=when, local_time=datetime.now(UTC))


# -- What to learn after which failure ---------------------------------------------------------

#: X509_V_ERR_* codes (include/openssl/x509_vfy.h) that call for a follow-up.
_NOT_YET_VALID, _EXPIRED = 9, 10
_NAME_MISMATCH = frozenset({62, 64})  # host name, IP address
#: Alerts of a refused handshake that may mean "no suite in common".
_REFUSED = frozenset({"handshake_failure", "no_shared_cipher", "insufficient_security"})
#: Below this much of the total deadline, no follow-up starts: the verdict comes first.
_MIN_LEFT_S = 0.05
_HOSTS = "/etc/hosts"
_MAX_NAMES = 3


async def learn_why(ctx: ProbeContext, address: str, step: TlsStep) -> TlsStep:
    """The failed TLS step with the follow-up handshakes its failure calls for (module
    docstring), or the step as it was. ``address``: the one the diagnosis connected to."""
    if step.status != "failed" or ctx.remaining() < _MIN_LEFT_S:
        return step
    found: list[FollowUpHandshake] = []
    name = step.server_name
    if step.failure == "alert" and step.alert == "protocol_version":
        found = await server_versions(ctx, address, name)
    elif step.failure == "alert" and step.alert in _REFUSED and not step.client_cert_requested:
        found = [
            await follow_up(
                ctx,
                address,
                "cipher",
                server_name=name,
                every_suite=True,
                offered="every suite this client has (ALL:@SECLEVEL=0), TLS 1.0-1.3",
            )
        ]
    elif ctx.target.is_ip and (
        (step.failure == "verify" and step.verify_code in _NAME_MISMATCH)
        or (step.failure == "alert" and step.alert == "unrecognized_name")
    ):
        leaf = step.chain[0] if step.chain else None
        found = await _by_server_name(ctx, address, _sni_candidates(ctx.target.host, leaf))
    elif (
        step.failure == "verify"
        and step.verify_code in (_NOT_YET_VALID, _EXPIRED)
        and ctx.target.protocol == "http"
    ):
        found = [await follow_up(ctx, address, "server_clock", server_name=name)]
    return step.replace(follow_ups=tuple(found)) if found else step


async def tls_expected(ctx: ProbeContext, address: str, step: ApplicationStep) -> ApplicationStep:
    """A plain-HTTP exchange that the server closed (or reset) without sending a byte: ask the
    same port with a ClientHello on a fresh connection. A TLS server answers it (HAProxy's
    ``ssl`` bind and Python's ``ssl`` servers close a plain request without a word); the
    answer goes into the HTTP result, for ``http.tls_required``."""
    http = step.http
    if (
        ctx.target.tls
        or http is None
        or http.failure != "closed"
        or not http.request_sent
        or http.peer_bytes
        or ctx.remaining() < _MIN_LEFT_S
    ):
        return step
    hello = await follow_up(
        ctx,
        address,
        "tls_required",
        server_name=None if ctx.target.is_ip else ctx.target.host,
        offered="TLS 1.0-1.3",
    )
    return step.replace(http=http.replace(tls_follow_up=hello))


async def _by_server_name(
    ctx: ProbeContext, address: str, names: list[str]
) -> list[FollowUpHandshake]:
    results: list[FollowUpHandshake | None] = [None] * len(names)

    async def one(i: int, name: str) -> None:
        results[i] = await follow_up(ctx, address, "sni", server_name=name)

    async with anyio.create_task_group() as tg:
        for i, name in enumerate(names):
            tg.start_soon(one, i, name)
    return [r for r in results if r is not None]


def _sni_candidates(ip: str, leaf: CertificateInfo | None) -> list[str]:
    """Server names to try for an IP target: the DNS names of the certificate it got, and
    the names this host's hosts file gives that IP (the names it is known by here)."""
    names: list[str] = []
    for name in leaf.dns_names if leaf is not None else ():
        if not name.startswith("*.") and name not in names:
            names.append(name)
    for name in _hosts_names(ip):
        if name not in names and name != "localhost":
            names.append(name)
    return names[:_MAX_NAMES]


def _hosts_names(ip: str) -> list[str]:
    """The names of ``ip`` in the hosts file (hosts(5)): read locally, nothing is sent."""
    try:
        with open(_HOSTS, encoding="utf-8", errors="replace") as f:
            text = f.read(256 * 1024)
    except OSError:
        return []
    return names_of(text, ip)


def names_of(hosts: str, ip: str) -> list[str]:
    """Pure: the names a hosts(5) text gives ``ip``, in order."""
    out: list[str] = []
    for line in hosts.splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == ip:
            out.extend(n for n in fields[1:] if n not in out)
    return out
