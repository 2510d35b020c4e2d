"""Generate docs/catalog.md: every fault and warning code, shown by a real scenario in the lab.

Run (root; iproute2, nftables, /dev/net/tun):

    .venv/bin/python scripts/gen_catalog.py            # (re)write docs/catalog.md
    .venv/bin/python scripts/gen_catalog.py --check    # regenerate in memory and compare
    .venv/bin/python scripts/gen_catalog.py --only dns.refused   # preview: writes nothing

It builds the namespace lab (nplab/topology.py) and the catalog's scenarios
(nplab/catalog_scenarios.py, with the database ones of nplab/catalog_db.py), runs
``netprobe diagnose TARGET ... --json`` for each inside the lab's client namespace (no default
route), checks that the verdict is the scenario's code (a wrong catalog is never written),
and prints the same report with the CLI's own text renderer. The hand-written parts of each
section are in nplab/catalog_prose.py.

``--check`` fails on any difference from the committed page other than the volatile parts
(see ``normalise``) and on any code without a scenario.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netprobe._cliutil import console, print_lines
from netprobe.cli import print_report
from netprobe.render_churn import render_churn
from netprobe.render_pool import render_pool
from netprobe.report import FAULT_CODES, WARNING_CODES, ChurnReport, PoolReport, Report
from nplab.catalog_prose import HOW_MADE, INTRO, LAYERS, PROSE
from nplab.catalog_scenarios import (
    CATALOG_CA,
    build_scenarios,
    client_sysctls,
    is_exclusive,
)
from nplab.scenario import Scenario
from nplab.topology import Lab, build_lab

ROOT = Path(__file__).resolve().parent.parent

OUTPUT = ROOT / "docs" / "catalog.md"
PY = str(ROOT / ".venv" / "bin" / "python")
#: Scenario runs at once: the runs mostly wait (timeouts, servers), but each CLI start costs
#: ~1 s of CPU (imports) and each diagnosis prepares its TLS context and first imports inside
#: its total deadline: 16 at once on 2 cores spent whole 10 s deadlines. Four per core.
WORKERS = 4 * (os.cpu_count() or 2)
RUN_TIMEOUT_S = 60.0
#: Every run gets this fd limit (soft and hard), so that the report's fd figures do not
#: depend on the shell that ran the generator.
FD_LIMIT = 1024
_STDOUT = threading.Lock()


class CatalogError(Exception):
    """A scenario did not show its code, or the CLI failed: nothing is written."""


@dataclass(frozen=True)
class Result:
    scenario: Scenario
    command: str
    exit_code: int
    report: dict[str, Any]
    text: str
    wall_s: float


def all_codes() -> list[str]:
    return [*FAULT_CODES, *WARNING_CODES]


def _argv(scenario: Scenario, ca_file: str | None) -> tuple[list[str], str]:
    """The command run in the client namespace, and the command shown on the page."""
    args = [scenario.target, *scenario.cli_args, "--json"]
    shown_args = [CATALOG_CA if a == ca_file else a for a in args]
    own = ("sysctl", "faketime", "resolv_conf")
    pre = {k: v for k, v in scenario.pre.items() if k not in own}
    command = scenario.command
    if pre:
        spec = json.dumps(pre)
        argv = [PY, str(ROOT / "nplab" / "catalog_cli.py"), spec, command, *args]
        shown = ["python", "nplab/catalog_cli.py", spec, command, *shown_args]
    else:
        # The same CLI (netprobe.cli.main) in a process that imported it first: the page
        # shows verdicts, and a dozen CLIs starting at once on two cores spent seconds of
        # their --timeout (counted from the process's start) on imports. The process-start
        # deadline itself is tested in tests/test_dns_real.py.
        argv = [PY, str(ROOT / "nplab" / "catalog_cli.py"), "{}", command, *args]
        shown = ["netprobe", command, *shown_args]
    shift = scenario.pre.get("faketime")
    if shift:
        # libfaketime shifts this process's wall clock only (the monotonic clock stays real).
        argv = ["faketime", "--exclude-monotonic", "-f", shift, *argv]
        shown = ["faketime", "--exclude-monotonic", "-f", shift, *shown]
    lines = [
        f"sysctl -w {key}={shlex.quote(value)}"
        for key, value in scenario.pre.get("sysctl", {}).items()
    ]
    resolv = scenario.pre.get("resolv_conf")
    if resolv:
        # This run's own /etc/resolv.conf (the client namespace's stays as it is for the
        # scenarios running at the same time): a private mount namespace, a bind mount.
        bind = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", bind,
                _resolv_file(resolv), *argv]  # fmt: skip
        lines.append(f"printf {shlex.quote(resolv)} > /etc/resolv.conf")
    lines.append(shlex.join(shown))
    return argv, "\n".join(f"$ {line}" for line in lines)


_RESOLV_DIR = tempfile.TemporaryDirectory(prefix="gen-catalog-resolv-")


def _resolv_file(text: str) -> str:
    """A file holding ``text`` (one per distinct text, removed when the generator exits)."""
    path = Path(_RESOLV_DIR.name) / f"resolv-{abs(hash(text)):x}.conf"
    if not path.exists():
        path.write_text(text)
        path.chmod(0o644)
    return str(path)


def _ca_file(scenario: Scenario) -> str | None:
    args = [str(a) for a in scenario.cli_args]
    if "--ca-file" in args:
        return args[args.index("--ca-file") + 1]
    return None


AnyReport = Report | PoolReport | ChurnReport


def parse_report(scenario: Scenario, data: dict[str, Any]) -> AnyReport:
    """The report of the scenario's command (diagnose, pool, churn), validated."""
    if scenario.command == "pool":
        return PoolReport.model_validate(data)
    if scenario.command == "churn":
        return ChurnReport.model_validate(data)
    return Report.model_validate(data)


def render_text(report: AnyReport) -> str:
    """What the command (without --json) prints for this report."""
    buf = io.StringIO()
    with _STDOUT, contextlib.redirect_stdout(buf):  # sys.stdout is global: one at a time
        if isinstance(report, Report):
            print_report(report, as_json=False)
        else:
            lines = render_pool(report) if isinstance(report, PoolReport) else render_churn(report)
            print_lines(console(), lines)
    return buf.getvalue()


def verdict_matches(scenario: Scenario, report: dict[str, Any]) -> bool:
    if scenario.warning:
        return scenario.code in [w["code"] for w in report.get("warnings", [])]
    fault = report.get("fault") or {}
    return bool(fault.get("code") == scenario.code)


def run_scenario(lab: Lab, scenario: Scenario) -> Result:
    """Run one scenario's CLI in the client namespace; raise CatalogError if it misses."""
    argv, shown = _argv(scenario, _ca_file(scenario))
    start = time.perf_counter()
    try:
        out = subprocess.run(
            ["ip", "netns", "exec", lab.client, "prlimit", f"--nofile={FD_LIMIT}", *argv],
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:
        raise CatalogError(f"{scenario.code}: the CLI ran over {RUN_TIMEOUT_S:g} s") from exc
    wall = time.perf_counter() - start
    try:
        data: dict[str, Any] = json.loads(out.stdout)
        report = parse_report(scenario, data)
    except ValueError as exc:
        raise CatalogError(
            f"{scenario.code}: the CLI printed no report (exit {out.returncode}):\n"
            f"{out.stdout[-1500:]}{out.stderr[-3000:]}"
        ) from exc
    if not verdict_matches(scenario, data):
        got = data["fault"]["code"] if data.get("fault") else "healthy"
        warnings = [w["code"] for w in data.get("warnings", [])]
        raise CatalogError(
            f"{scenario.code}: the scenario {scenario.title!r} gave {got} "
            f"(warnings {warnings}), not {scenario.code}:\n{render_text(report)}"
        )
    expected_exit = 0 if report.ok else 1
    if out.returncode != expected_exit:
        raise CatalogError(f"{scenario.code}: exit code {out.returncode}, not {expected_exit}")
    return Result(scenario, shown, out.returncode, data, render_text(report), wall)


#: Warnings that record the moment rather than the scenario (a SYN lost on a loaded machine).
INCIDENTAL = {"tcp.syn_retransmitted"}


def run_steady(lab: Lab, scenario: Scenario, tries: int = 3) -> Result:
    """Run a scenario; a run that caught an incidental warning its scenario is not about is
    run again (at most ``tries`` runs), so one lost SYN does not make the page look stale."""
    for attempt in range(tries):
        result = run_scenario(lab, scenario)
        noise = {w["code"] for w in result.report.get("warnings", [])} & INCIDENTAL
        if not noise - {scenario.code} or attempt == tries - 1:
            return result
        print(f"gen_catalog: {scenario.code}: incidental {sorted(noise)}; again", file=sys.stderr)
    raise AssertionError("unreachable")


def _expected_wait(s: Scenario) -> float:
    """Rough seconds a scenario waits (to start the longest first)."""
    args = list(s.cli_args)
    waits = [float(args[i + 1]) for i, a in enumerate(args[:-1]) if a.endswith("timeout")]
    return max(waits, default=0.0) + (1.5 if s.code.startswith("db.") else 0.0)


def run_all(lab: Lab, scenarios: Sequence[Scenario]) -> list[Result]:
    """Every scenario: the independent ones concurrently, then the exclusive ones alone."""
    shared = sorted((s for s in scenarios if not is_exclusive(s)), key=_expected_wait)
    shared.reverse()
    results: list[Result] = []
    errors: list[str] = []
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(run_steady, lab, s) for s in shared]
        for future in futures:
            try:
                results.append(future.result())
            except CatalogError as exc:
                errors.append(str(exc))
    for s in scenarios:
        if is_exclusive(s):
            try:
                with client_sysctls(lab, s):
                    results.append(run_steady(lab, s))
            except CatalogError as exc:
                errors.append(str(exc))
    if errors:
        raise CatalogError("\n\n".join(errors))
    return results


# -- the page --------------------------------------------------------------------------------


def _excerpt(code: str, report: dict[str, Any]) -> dict[str, Any]:
    """The JSON that shows the verdict: the fault (or the warning) and the steps behind it."""
    out: dict[str, Any] = {"ok": report["ok"]}
    if code in WARNING_CODES:
        out["warnings"] = [w for w in report["warnings"] if w["code"] == code]
    else:
        out["fault"] = report["fault"]
    wanted = _relevant_steps(code, report)
    steps = [_compact(s) for s in report.get("steps", []) if s["name"] in wanted]
    if steps:
        out["steps"] = steps
    if code.startswith("local.") and report.get("local") is not None:
        out["local"] = _compact(report["local"])
    if "connections" in report:  # netprobe pool: the first connection the fault names
        hit = [c for c in report["connections"] if c.get("held_fault_code") == code]
        out["connections"] = [_compact(c) for c in hit[:1]]
    if "reused" in report:  # netprobe churn: both kinds of connect, counted
        out["fresh"], out["reused"] = _compact(report["fresh"]), _compact(report["reused"])
    return out


def _compact(value: Any) -> Any:
    """Leave out null and empty fields (the excerpt shows what was observed)."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v not in (None, [], {}, "")}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _relevant_steps(code: str, report: dict[str, Any]) -> set[str]:
    prefix = code.split(".", 1)[0]
    by_prefix = {
        "dns": {"dns"},
        "l3": {"icmp", "tcp"},
        "l4": {"icmp", "tcp"},
        "local": {"tcp"},
        "tcp": {"tcp"},
        "icmp": {"icmp"},
        "tls": {"tls"},
        "http": {"application"},
        "db": {"application", "tls"},
    }
    if prefix in by_prefix:
        return by_prefix[prefix]
    # l7.connection_closed, diagnosis.deadline: the rung that failed or was cut.
    failed = {s["name"] for s in report.get("steps", []) if s.get("status") == "failed"}
    return failed or {"tcp"}


def _link_codes(text: str, known: Iterable[str]) -> str:
    """Turn `code` mentions in prose into links to their sections."""
    names = set(known)

    def repl(m: re.Match[str]) -> str:
        code = m.group(1)
        return f"[`{code}`](#{code})" if code in names else m.group(0)

    return re.sub(r"(?<!\[)`([a-z0-9_]+\.[a-z0-9_]+)`", repl, text)


def _section(code: str, result: Result | None) -> list[str]:
    prose = PROSE.get(code)
    meaning = FAULT_CODES[code][1] if code in FAULT_CODES else WARNING_CODES[code]
    kind = "warning" if code in WARNING_CODES else f"fault, layer `{FAULT_CODES[code][0]}`"
    codes = all_codes()
    lines = [f'<a id="{code}"></a>', "", f"### `{code}`", "", f"*{meaning}* ({kind})", ""]
    if prose is not None:
        lines += [f"**On the wire.** {_link_codes(prose.wire, codes)}", ""]
        lines += [f"**Told apart from its look-alikes.** {_link_codes(prose.apart, codes)}", ""]
        lines += [f"**Check next.** {_link_codes(prose.next, codes)}", ""]
    if result is None:
        why = (prose.unreproducible if prose is not None else None) or (
            "no lab scenario produced it in this run (see the generator's output)"
        )
        lines += [f'!!! warning "Not shown in the lab"\n    {why}', ""]
        return lines
    s = result.scenario
    lines += [f"**Lab scenario: {s.title}.** {s.setup}", ""]
    lines += ["```console", result.command, "```", ""]
    lines += ["```text", result.text.rstrip("\n"), "```", ""]
    excerpt = json.dumps(_excerpt(code, result.report), indent=2, ensure_ascii=False)
    lines += [f"JSON excerpt (exit code {result.exit_code}):", ""]
    lines += ["```json", excerpt, "```", ""]
    return lines


def render_page(results: Sequence[Result]) -> str:
    by_code = {r.scenario.code: r for r in results}
    lines = [INTRO.strip(), ""]
    lines += ["## Contents", ""]
    for title, codes in _groups():
        links = ", ".join(f"[`{c}`](#{c})" for c in codes)
        lines.append(f"- **{title}**: {links}")
    lines.append("")
    for title, codes in _groups():
        lines += [f"## {title}", ""]
        for code in codes:
            lines += _section(code, by_code.get(code))
    lines += [HOW_MADE.strip(), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _groups() -> list[tuple[str, list[str]]]:
    """Faults by layer (``LAYERS``), then the warnings."""
    groups: list[tuple[str, list[str]]] = []
    for title, layer in LAYERS:
        codes = [c for c, (lay, _) in FAULT_CODES.items() if lay == layer]
        if codes:
            groups.append((title, codes))
    rest = [c for c, (lay, _) in FAULT_CODES.items() if lay not in {lay for _, lay in LAYERS}]
    if rest:
        groups.append(("Other faults", rest))
    groups.append(("Warnings", list(WARNING_CODES)))
    return groups


# -- --check -----------------------------------------------------------------------------------

#: Text that differs from run to run by design. Durations first (the waterfall, "0.4 ms",
#: rtt triples), then dates derived from "now", ephemeral ports of the client's addresses,
#: how many echoes beat the verdict (a race by design: echoes never delay a verdict), and
#: what certificates made on the spot carry (serials, fingerprints, trustme's random names).
_VOLATILE_TEXT: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(timing ms: ).*"), r"\1<waterfall>"),
    (re.compile(r" \(rtt min/avg/max [^)]*\)"), ""),
    (re.compile(r"\d+(?:\.\d+)? ?ms\b"), "<ms>"),
    (
        re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<t>",
    ),
    (re.compile(r"\d+ days left"), "<n> days left"),
    (re.compile(r"(198\.18\.\d+\.1):\d+"), r"\1:<port>"),
    (re.compile(r"[✓✗] icmp"), "? icmp"),
    (re.compile(r"\d+/\d+ answered"), "<n>/<n> answered"),
    (re.compile(r", \d+ still awaiting a reply"), ""),
    # Whether an echo beat the verdict is a race: "not waited for" reads as any count.
    (
        re.compile(r" not waited for \(\d+ echo(?:es)? still awaiting a reply\)"),
        " <n>/<n> answered",
    ),
    (re.compile(r", \d+ not waited for"), ""),
    # How many echoes had an outcome before the verdict (the rest were not waited for).
    (re.compile(r"answered none of \d+ echo requests"), "answered none of <n> echo requests"),
    (re.compile(r"Testing (CA|cert) #[\w-]+"), r"Testing \1 #<id>"),
    # A connect cut by the total deadline: its own timer (cut to what was left) and the
    # deadline end at the same instant, and either may report it (a known race).
    (re.compile(r"\(total deadline reached first\)"), "(no answer)"),
    (re.compile(r"\b\d+\.\d{3,} s\b"), "<s>"),
    # A SYN's wait cut by the total deadline: what the preparation left of it (to 0.1 s).
    (re.compile(r"(got no answer within )\d+(?:\.\d+)? s\b"), r"\1<s>"),
    # Socket and fd counts of this host: the kernel's table is read while the diagnosis's
    # own connection is opening or closing, so it may count once more (a known race).
    (re.compile(r"\d+ (sockets (?:of this host )?toward)"), r"<n> \1"),
    (re.compile(r"has \d+ file descriptors open"), "has <n> file descriptors open"),
    # Session tables: how many keepalive probes left while waiting, how long the churn took.
    (
        re.compile(r"no ACK to (?:\d+ keepalive probes?|a keepalive probe) in \d+(?:\.\d+)? s"),
        "no ACK to <n> keepalive probes in <s>",
    ),
    (re.compile(r"closed with RST, \d+(?:\.\d+)? s\)"), "closed with RST, <s>)"),
]
#: JSON keys whose values differ from run to run (and every key ending in ``_ms``).
_VOLATILE_KEYS = {
    "started_at",
    "local_address",  # an ephemeral port (the routed path's client is not a .1 address)
    "peer_bytes",
    "serial",
    "sha256",
    "not_before",
    "not_after",
    "days_left",
    "sockets_scanned",
    "sent",
    "received",
    "pending",
    "connection_id",
    "timeout_s",
    "states",
    "open_fds",
    "probes_unanswered",  # keepalive probes sent while waiting: one a second, load permitting
    "skew_s",  # a clock skew measured against a Date header of one-second resolution
}


def _normalise_value(value: Any, key: str = "") -> Any:
    if key in _VOLATILE_KEYS or key.endswith("_ms"):
        return "<volatile>"
    if isinstance(value, dict):
        out = {k: _normalise_value(v, k) for k, v in value.items()}
        if value.get("name") == "icmp":  # whether an echo beat the verdict: a race
            out["status"] = out["reason"] = "<volatile>"
            if "not_waited_for" in out:
                out["not_waited_for"] = "<volatile>"
        return out
    if isinstance(value, list):
        return [_normalise_value(v) for v in value]
    if isinstance(value, str):
        return _normalise_text(value)
    return value


def _normalise_text(text: str) -> str:
    for pattern, repl in _VOLATILE_TEXT:
        text = pattern.sub(repl, text)
    return text


def normalise(page: str) -> str:
    """The page without its volatile parts (what --check compares): JSON blocks key by key,
    the rest by ``_VOLATILE_TEXT``."""
    parts = re.split(r"(```json\n.*?\n```)", page, flags=re.DOTALL)
    out = []
    for part in parts:
        if part.startswith("```json\n"):
            body = part[len("```json\n") : -len("\n```")]
            try:
                part = json.dumps(_normalise_value(json.loads(body)), indent=2)
            except ValueError:
                part = _normalise_text(part)
            out.append(f"```json\n{part}\n```")
        else:
            out.append(_normalise_text(part))
    return "".join(out)


def check(page: str, missing: Sequence[str]) -> list[str]:
    """Problems of a regenerated page against the committed one (empty: up to date)."""
    problems = [f"no scenario shows {code}" for code in missing]
    if not OUTPUT.exists():
        return [*problems, f"{OUTPUT.relative_to(ROOT)} does not exist: run {_RUN}"]
    old, new = normalise(OUTPUT.read_text()), normalise(page)
    if old != new:
        fresh = Path(tempfile.gettempdir()) / "catalog.regenerated.md"
        fresh.write_text(page)
        diff = difflib.unified_diff(
            old.splitlines(), new.splitlines(), "committed (normalised)", "now (normalised)", n=2
        )
        problems.append(
            f"{OUTPUT.relative_to(ROOT)} is stale (the regenerated page is {fresh}); run "
            f"{_RUN}\n" + "\n".join(list(diff)[:200])
        )
    return problems


_RUN = "`sudo .venv/bin/python scripts/gen_catalog.py`"


def generate(only: Sequence[str] = ()) -> tuple[str, list[str], list[Result]]:
    """Build the lab, run every scenario (or those of the codes in ``only``), return the page,
    the codes no scenario shows, and the results."""
    start = time.perf_counter()
    with build_lab() as lab, build_scenarios(lab) as scenarios:
        print(
            f"gen_catalog: lab and {len(scenarios)} scenarios ready in "
            f"{time.perf_counter() - start:.1f} s",
            file=sys.stderr,
        )
        codes = all_codes()
        unknown = [s.code for s in scenarios if s.code not in codes]
        if unknown:
            raise CatalogError(f"scenarios for unknown codes: {unknown}")
        if only:
            scenarios = [s for s in scenarios if s.code in only]
        results = run_all(lab, scenarios)
    shown = {r.scenario.code for r in results}
    missing = [c for c in all_codes() if c not in shown]
    return render_page(results), missing, results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare with docs/catalog.md")
    parser.add_argument(
        "--only",
        metavar="CODE",
        action="append",
        default=[],
        help="run only this code's scenarios and print their sections (nothing written)",
    )
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("gen_catalog: needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        page, missing, results = generate(args.only)
    except CatalogError as exc:
        print(f"gen_catalog: a scenario failed, nothing written:\n{exc}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - start
    slowest = max(results, key=lambda r: r.wall_s)
    print(
        f"gen_catalog: {len(results)} scenarios in {wall:.1f} s "
        f"(slowest run {slowest.scenario.code}, {slowest.wall_s:.1f} s)",
        file=sys.stderr,
    )
    if args.only:
        for result in results:
            print("\n".join(_section(result.scenario.code, result)))
        return 0
    for code in missing:
        print(f"gen_catalog: no scenario shows {code}", file=sys.stderr)
    if args.check:
        problems = check(page, missing)
        for problem in problems:
            print(f"gen_catalog --check: {problem}", file=sys.stderr)
        return 1 if problems else 0
    OUTPUT.write_text(page)
    print(f"gen_catalog: wrote {OUTPUT.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
