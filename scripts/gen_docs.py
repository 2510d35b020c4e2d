"""Regenerate the docs that are derived from code: the fault table, the CLI's shared options,
every field of the report, and the report's JSON schema.

Run: .venv/bin/python scripts/gen_docs.py  (tests/test_docs.py fails when they are stale)
"""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from netprobe._cliutil import SHARED_OPTIONS
from netprobe.options import Options
from netprobe.report import FAULT_CODES, WARNING_CODES, Report

ROOT = Path(__file__).resolve().parent.parent


def fault_table() -> str:
    lines = ["| code | layer | meaning |", "|---|---|---|"]
    lines += [f"| `{code}` | `{layer}` | {text} |" for code, (layer, text) in FAULT_CODES.items()]
    lines += ["", "| warning | meaning |", "|---|---|"]
    lines += [f"| `{code}` | {text} |" for code, text in WARNING_CODES.items()]
    return "\n".join(lines) + "\n"


def cli_options_table() -> str:
    """The shared options of the probing commands, from the same definitions as --help."""
    lines = ["| option | meaning | default |", "| --- | --- | --- |"]
    for option in SHARED_OPTIONS:
        field = Options.model_fields[option.field]
        flag = f"`{option.flag}{' ' + option.metavar if option.metavar else ''}`"
        meaning = (field.description or option.field).rstrip(".")
        if option.turns_off:
            meaning = f"turns off: {meaning[0].lower()}{meaning[1:]}"
            default = "on"
        elif option.repeatable:
            meaning += "; repeatable"
            default = "none"
        else:
            value = field.default
            default = f"{value:g}" if isinstance(value, float) else str(value).lower()
        lines.append(f"| {flag} | {meaning} | {default} |")
    return "\n".join(lines) + "\n"


def _type_name(annotation: object, models: list[type[BaseModel]]) -> str:
    """A field's type in the words of the JSON a reader sees, noting the models it holds."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0], models)
    if origin in (typing.Union, types.UnionType):
        parts = [_type_name(a, models) for a in args if a is not type(None)]
        text = " or ".join(parts)
        return f"{text} or null" if type(None) in args else text
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" if isinstance(a, str) else str(a) for a in args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"list of {_type_name(args[0], models)}"
        return "[" + ", ".join(_type_name(a, models) for a in args) + "]"
    if origin is not None and getattr(origin, "__name__", "") == "FrozenMap":
        return f"object of {_type_name(args[1], models)}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in models:
            models.append(annotation)
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if annotation is dt.datetime:
        return "date-time (ISO 8601)"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if isinstance(annotation, type) and annotation in names:
        return names[annotation]
    if isinstance(annotation, typing.TypeAliasType):  # type: ignore[attr-defined]
        return _type_name(annotation.__value__, models)
    return str(annotation).replace("typing.", "")


#: Meanings of the fields whose model gives no description (by "Model.field", or by field
#: name for the fields every step shares). A field with neither fails tests/test_docs.py.
MEANINGS = {
    "PmtuProbe.exchange": "What was repeated: the TLS handshake, or the HTTP request and "
    "its response head.",
    "PmtuProbe.outcome": "How the retry ended: `completed` (an MTU black hole: "
    "`l3.pmtu_blackhole`), `timeout`, `closed`, `connect_failed`, `error`.",
    "TraceStep.address": "The address traced (the one whose connect failed).",
    "TraceStep.port": "The real destination port the trace's SYNs went to.",
    "TraceStep.max_hops": "The highest TTL sent (the `trace_max_hops` option).",
    "TraceStep.hops": "One entry per TTL, up to the first the destination answered or a box "
    "rejected; trailing silence is kept as one silent hop.",
    "TraceHop.ttl": "The TTL (IPv6: hop limit) the SYN was sent with.",
    "TraceHop.outcome": "`time_exceeded` (a router where the TTL ran out answered), `reached` "
    "(the destination answered SYN+ACK or RST), `unreachable` (an ICMP destination "
    "unreachable, e.g. a firewall's admin-prohibited), `silent`, `error` (not sent).",
    "TraceHop.icmp_type": "The ICMP type of the answer (from the socket's error queue).",
    "TraceHop.icmp_code": "The ICMP code of the answer.",
    "IcmpError.icmp_type": "The ICMP type (v4: 3 unreachable, 11 time exceeded; v6: 1, 3).",
    "IcmpError.icmp_code": "The ICMP code (v4 3/13, v6 1/1: administratively prohibited).",
    "FollowUpHandshake.purpose": "What the follow-up was for: `tls_required` (does a closed "
    "plain port speak TLS?), `server_version`, `cipher`, `sni`, `server_clock` (the server's "
    "Date header).",
    "FollowUpHandshake.outcome": "How the follow-up handshake ended: `ok`, `alert`, "
    "`not_tls`, `closed`, `timeout`, `connect_failed`, `error`.",
    "FollowUpHandshake.version": "The TLS version the follow-up negotiated.",
    "FollowUpHandshake.cipher": "The cipher suite the follow-up negotiated.",
    "FollowUpHandshake.alert": "The TLS alert that ended the follow-up, normalised.",
    "ProxyStep.mode": "`connect` (a CONNECT tunnel, for https:// targets) or `forward` (the "
    "absolute URL sent to the proxy, for http:// targets).",
    "ProxyStep.http_reason": "The proxy's reason phrase.",
    "ProxyStep.failure": "What went wrong on the way to or through the proxy: `timeout`, "
    "`closed`, `protocol`, `refused`, `error`.",
    "ProxyStep.error": "The socket error, as data.",
    "ApplicationStep.grpc": "The gRPC health check's exchange, for grpc:// and grpcs:// targets.",
    "GrpcResult.failure": "What went wrong: `timeout`, `closed`, `not_http2`, `not_grpc`, "
    "`reset_stream`, `goaway`, `protocol`, `tls_alert`.",
    "GrpcResult.bytes_received": "Bytes received from the peer in all.",
    "GrpcResult.first_byte_ms": "From the request sent to the first byte back (ms).",
    "status": "`ok`, `failed` or `skipped`.",
    "reason": "Why the rung is not ok (or what it found), in words.",
    "duration_ms": "How long the rung took (ms).",
    "name": "The rung: the discriminator of `steps`.",
    "Report.target": "The target diagnosed, redacted: no password, no secret query value.",
    "Report.fault": "The verdict when something is wrong; null when healthy.",
    "Report.warnings": "Not faults, but they matter (see the warning codes).",
    "Report.timings_ms": "curl-style cumulative timings, where measured.",
    "Report.started_at": "When the diagnosis started (UTC).",
    "Report.netprobe_version": "The netprobe version that made the report.",
    "Target.port": "The TCP port.",
    "Target.username": "The user of a DSN or URL (the password is never in the report).",
    "Fault.layer": "`dns`, `l3`, `l4`, `l7` or `local`.",
    "Fault.evidence": "The observations behind the verdict.",
    "ReportWarning.code": "A stable warning code (WARNING_CODES).",
    "ReportWarning.message": "What was seen, in one sentence.",
    "Timings.setup": (
        "netprobe's own preparation before the clock started (first imports, the TLS "
        "context): not the network's; the other timings count from its end."
    ),
    "Timings.dns": "Name resolution done (curl's time_namelookup), ms from the start.",
    "Timings.tcp_connect": "First connection established (time_connect).",
    "Timings.tls_handshake": "TLS handshake done (time_appconnect).",
    "Timings.first_byte": "First byte of the application's answer (time_starttransfer).",
    "Timings.total": "The whole diagnosis (time_total).",
    "DnsStep.host": "The name resolved (IDNA-encoded).",
    "DnsStep.source": "`literal` (an IP address: no lookup), `getaddrinfo`, or `nameservers` "
    "(getaddrinfo failed and the name servers were asked directly).",
    "DnsStep.queries": "The direct queries made when getaddrinfo failed.",
    "DnsStep.answered_by": "Where getaddrinfo's answer came from: `hosts` (the hosts file, "
    "nsswitch `files` first) or `dns`; null when it failed.",
    "DnsStep.walk": "The resolver's search-list walk (ResolverWalk), when the search list "
    "takes part: resolv.conf `search` with fewer dots in the name than `ndots`, or a failure.",
    "ResolverWalk.nameserver": "The name server the walk asked (resolv.conf's first).",
    "ResolverWalk.ndots": "resolv.conf's `ndots` (1 when unset).",
    "ResolverWalk.search": "resolv.conf's search domains.",
    "ResolverWalk.candidates": "Every name the resolver tries for the target, in glibc's order.",
    "ResolverWalk.queries": "The names asked (A), in order, until one answered (WalkQuery).",
    "ResolverWalk.answered": "The name that answered with an address (null: none did).",
    "ResolverWalk.wasted_queries": "Queries the resolver sends before the answer: an A and "
    "an AAAA per name that does not exist.",
    "ResolverWalk.wasted_ms": "What those misses cost here, in round trips (ms).",
    "ResolverWalk.wildcard": "The search domain that answered, when it answers any name (a "
    "wildcard record): `dns.search_wildcard`.",
    "ResolverWalk.by_nameserver": "The answered name asked of every configured name server "
    "when there are several (NameserverAnswer): `dns.nameservers_disagree` when they differ.",
    "WalkQuery.name": "The name asked.",
    "WalkQuery.rcode": "What the name server answered, or TIMEOUT / ERROR.",
    "WalkQuery.addresses": "The addresses it returned.",
    "WalkQuery.elapsed_ms": "How long it took (ms).",
    "DnsStep.alive_nameservers": "The name servers asked directly that answered a control "
    "query (CHAOS `version.bind`, which a server answers itself): alive even when silent for "
    "the name (`dns.upstream_timeout`).",
    "IcmpStep.engine": "The ICMP engine and socket used.",
    "IcmpStep.results": "The echoes, per address.",
    "IcmpStep.not_waited_for": (
        "Echoes were still pending when the other rungs had answered: the diagnosis does not "
        "wait for ICMP; they are neither answered nor lost (no icmp.no_reply)."
    ),
    "TcpStep.timeout_s": "The connect timeout of each address (s).",
    "TcpStep.attempts": "Every resolved address's connect, with its own outcome.",
    "TcpStep.connected_to": "The address:port kept for the rungs above.",
    "TlsStep.error": "The handshake's error, as data.",
    "TlsStep.failure": "What went wrong: `verify`, `alert`, `not_tls`, `timeout`, `closed`, "
    "`error`.",
    "TlsStep.version": "The negotiated protocol version (TLSv1.3...).",
    "TlsStep.cipher": "The negotiated cipher suite.",
    "TlsStep.alpn": "The negotiated ALPN protocol (h2, http/1.1).",
    "TlsStep.verify_message": "OpenSSL's words for verify_code.",
    "ApplicationStep.protocol": "The application protocol spoken.",
    "ApplicationStep.error": "The exchange's error, as data.",
    "ApplicationStep.database": "The database conversation, for a database target.",
    "ApplicationStep.http": "The request and response, for an HTTP target.",
    "LocalHealth.available": "Whether this host's state could be read (Linux /proc).",
    "LocalHealth.reason": "Why not, when it could not.",
    "LocalHealth.sockets_scanned": "Sockets read from the socket table.",
    "LocalHealth.open_fds": "File descriptors open in this process.",
    "Evidence.data": "The observation as data (addresses, codes, durations).",
    "ErrorInfo.type": "The exception's type name.",
    "ErrorInfo.errno": "The errno number, if any.",
    "ErrorInfo.errno_name": "The errno name (ECONNREFUSED...).",
    "ErrorInfo.message": "The error's message.",
    "NameserverAnswer.nameserver": "The name server asked (address:port).",
    "NameserverAnswer.qtype": "`A` or `AAAA`.",
    "NameserverAnswer.rcode": "What it answered, or TIMEOUT / ERROR.",
    "NameserverAnswer.addresses": "The addresses it returned.",
    "NameserverAnswer.elapsed_ms": "How long it took to answer (ms).",
    "NameserverAnswer.detail": "More about an error.",
    "NameserverAnswer.cname_chain": "The CNAME targets the answer led through, in order; "
    "the last is the name its rcode is about (a dangling CNAME names its missing target).",
    "IcmpAddressResult.address": "The address pinged.",
    "IcmpAddressResult.sent": "Echo requests sent.",
    "IcmpAddressResult.received": "Echo replies received.",
    "IcmpAddressResult.pending": "Echoes still awaiting their reply when the diagnosis ended.",
    "IcmpAddressResult.rtt_min_ms": "Round-trip time, minimum (ms).",
    "IcmpAddressResult.rtt_avg_ms": "Round-trip time, average (ms).",
    "IcmpAddressResult.rtt_max_ms": "Round-trip time, maximum (ms).",
    "AddressAttempt.address": "The address connected to.",
    "AddressAttempt.port": "The port connected to.",
    "AddressAttempt.family": "`ipv4` or `ipv6`.",
    "AddressAttempt.outcome": "`established`, `refused`, `timeout`, `host_unreachable`, "
    "`network_unreachable`, `port_exhaustion`, `fd_exhaustion`, `denied`, `reset`, `error`.",
    "AddressAttempt.error": "The connect's error, as data.",
    "CertificateInfo.common_name": "The subject's CN, if any.",
    "CertificateInfo.not_before": "Valid from.",
    "CertificateInfo.not_after": "Valid until.",
    "CertificateInfo.is_ca": "A CA certificate (basicConstraints CA:TRUE).",
    "DatabaseResult.protocol": "The database protocol spoken.",
    "DatabaseResult.outcome": "`ready`, `validated`, `server_error`, `timeout`, `closed`, "
    "`mismatch`, `tls_failed`, `driver_error`, `unavailable`.",
    "DatabaseResult.protocol_version": "The protocol version the server announced.",
    "DatabaseResult.tls_used": "The conversation ran over TLS.",
    "DatabaseResult.sqlstate": "The SQLSTATE of an error (MySQL and PostgreSQL).",
    "DatabaseResult.error_message": "The server's error message.",
    "DatabaseResult.login_user": "The user of the login with the target's credentials.",
    "DatabaseResult.login_ms": "How long the login took (ms).",
    "DatabaseResult.validation_ms": "How long the validation query took (ms).",
    "DatabaseResult.notes": "Anything else worth knowing, in words.",
    "HttpResult.method": "The HTTP method sent.",
    "HttpResult.status": "The response status, if a response came.",
    "HttpResult.http_version": "The response's HTTP version.",
    "HttpResult.location": "The Location header of a redirect.",
    "HttpResult.healthy": "Whether the status counts as healthy (expect_status).",
    "HttpResult.redirects": "The redirects followed, in order.",
    "HttpResult.failure": "What went wrong without a response: `timeout`, `closed`, "
    "`protocol`, `tls_alert`, `error`.",
    "HttpHop.status": "The status of this response.",
    "HttpHop.url": "The URL requested.",
    "HttpHop.location": "Where it redirected to.",
}


def _meaning(model: type[BaseModel], name: str, description: str | None) -> str:
    text = description or MEANINGS.get(f"{model.__name__}.{name}") or MEANINGS.get(name, "")
    return text.replace("|", "\\|").replace("\n", " ").strip()


def report_fields() -> str:
    """Every field of the report, model by model, from the models themselves."""
    models: list[type[BaseModel]] = [Report]
    out = [
        "<!-- Generated by scripts/gen_docs.py from the models: do not edit by hand. -->",
        "",
    ]
    i = 0
    while i < len(models):
        model = models[i]
        i += 1
        doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        out += [f"### {model.__name__}", "", doc, "", "| field | type | meaning |", "|---|---|---|"]
        for name, info in model.model_fields.items():
            if info.exclude:
                continue
            kind = _type_name(info.annotation, models)
            out.append(f"| `{name}` | {kind} | {_meaning(model, name, info.description)} |")
        for name, computed in model.model_computed_fields.items():
            kind = _type_name(computed.return_type, models)
            text = _meaning(model, name, computed.description)
            out.append(f"| `{name}` | {kind} | {text} (derived) |")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def schema() -> str:
    return (
        json.dumps(Report.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"
    )


def main() -> None:
    (ROOT / "docs" / "faults-table.md").write_text(fault_table())
    (ROOT / "docs" / "cli-options-table.md").write_text(cli_options_table())
    (ROOT / "docs" / "report-fields.md").write_text(report_fields())
    (ROOT / "docs" / "schema" / "report.schema.json").write_text(schema())


if __name__ == "__main__":
    main()
