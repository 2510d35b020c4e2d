"""The total deadline in every lab scenario: cut short, a diagnosis still returns a Report,
says so (``diagnosis.deadline``) and keeps what it learned before the cut.

Scenarios: test_lab.py's CASES and the fault catalog (catalog_scenarios.py, without the
database servers: those take long to start; benchmarks/deadlines.py covers them). Each runs
once with its own options, then cut twice: at 1 µs (the deadline has passed at the first
checkpoint: the cut lands in the first rung) and, for scenarios that take 0.5 s or more, at
0.25 s (mid-way). No assertion here is about time: how far past its deadline a diagnosis
returns is measured by benchmarks/deadlines.py.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from netprobe.report import Report
from nplab import catalog_scenarios as catalog
from nplab.cases import CASES
from nplab.topology import HERE, PY, ROOT, Lab

pytestmark = pytest.mark.lab

FIRST_CHECKPOINT = 1e-6
MID_CUT = 0.25
RUNGS = ["dns", "tcp", "tls", "application"]


@dataclass
class Case:
    id: str
    target: str
    options: dict[str, Any]
    pre: dict[str, Any] = field(default_factory=dict)
    #: Sets the client-namespace sysctls the case needs, around its run (then it runs alone).
    sysctl: Callable[[], contextlib.AbstractContextManager[None]] | None = None


def _lab_cases() -> list[Case]:
    out = []
    for name, target, options, _, _ in CASES:
        opts = dict(options)
        pre = opts.pop("pre", {})
        out.append(Case(f"test_lab: {name}", target, opts, pre))
    return out


@contextlib.contextmanager
def _catalog_cases(lab: Lab) -> Iterator[list[Case]]:
    # Without the database scenarios: their servers take the longest to start.
    with catalog.build_scenarios(lab, databases=False) as scenarios:
        yield [
            Case(
                f"catalog: {s.code} ({s.title})",
                s.target,
                catalog.cli_options(s),
                {k: v for k, v in s.pre.items() if k != "sysctl"},
                functools.partial(catalog.client_sysctls, lab, s)
                if catalog.is_exclusive(s)
                else None,
            )
            for s in scenarios
            if s.command == "diagnose"  # pool and churn runs are bounded by their own options
        ]


def _run(lab: Lab, jobs: list[dict[str, Any]], pre: dict[str, Any]) -> list[dict[str, Any]]:
    spec = json.dumps({"jobs": jobs, "pre": pre})
    out = subprocess.run(
        ["ip", "netns", "exec", lab.client, PY, str(HERE / "deadline_runner.py"), spec],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    results: list[dict[str, Any]] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


def _run_cases(lab: Lab, cases: list[Case], jobs_of: Any) -> dict[str, list[dict[str, Any]]]:
    """Run every case's jobs: cases without local state together in one process, each case
    with local state in its own, the ones that change namespace sysctls alone."""
    shared = [c for c in cases if not c.pre and c.sysctl is None]
    own = [c for c in cases if c.pre and c.sysctl is None]
    alone = [c for c in cases if c.sysctl is not None]
    results: dict[str, list[dict[str, Any]]] = {}
    with ThreadPoolExecutor(8) as pool:
        flat = [(c, job) for c in shared for job in jobs_of(c)]
        batch = pool.submit(_run, lab, [job for _, job in flat], {})
        singles = {c.id: pool.submit(_run, lab, jobs_of(c), c.pre) for c in own if jobs_of(c)}
        for (case, _), report in zip(flat, batch.result(), strict=True):
            results.setdefault(case.id, []).append(report)
        for case_id, future in singles.items():
            results[case_id] = future.result()
    for case in alone:
        if jobs_of(case):
            assert case.sysctl is not None
            with case.sysctl():
                results[case.id] = _run(lab, jobs_of(case), case.pre)
    return results


@pytest.fixture(scope="module")
def cut_reports(lab: Lab) -> Iterator[list[tuple[str, float, dict[str, Any], dict[str, Any]]]]:
    """(case, deadline, natural report, cut report) for every case and cut."""
    with _catalog_cases(lab) as catalog:
        cases = _lab_cases() + catalog

        def job(case: Case, timeout: float | None) -> dict[str, Any]:
            options = case.options if timeout is None else {**case.options, "timeout": timeout}
            return {"target": case.target, "options": options}

        # The natural run and the 1 µs cut together: a case's local state is built once
        # (TIME_WAIT sockets, for one, cannot be made again for a minute).
        first = _run_cases(lab, cases, lambda c: [job(c, None), job(c, FIRST_CHECKPOINT)])

        def slow(case: Case) -> bool:
            total = first[case.id][0].get("timings_ms", {}).get("total") or 0.0
            return bool(total >= 2 * MID_CUT * 1000) and "time_wait" not in case.pre

        mid = _run_cases(lab, cases, lambda c: [job(c, MID_CUT)] if slow(c) else [])
    out = []
    for case in cases:
        natural, cut = first[case.id]
        out.append((case.id, FIRST_CHECKPOINT, natural, cut))
        if case.id in mid:
            out.append((case.id, MID_CUT, natural, mid[case.id][0]))
    yield out


def test_every_scenario_was_cut(
    cut_reports: list[tuple[str, float, dict[str, Any], dict[str, Any]]],
) -> None:
    ids = {case for case, _, _, _ in cut_reports}
    assert len(ids) >= len(CASES)
    mid_way = [
        case
        for case, deadline, _, cut in cut_reports
        if deadline == MID_CUT
        and any(w["code"] == "diagnosis.deadline" for w in cut.get("warnings", []))
    ]
    # The silent ones at least: dropped SYNs, a silent name server, a silent TLS peer...
    assert len(mid_way) >= 5, mid_way


def _code(report: dict[str, Any]) -> str | None:
    fault = report.get("fault")
    return fault["code"] if fault else None


def test_cut_short_returns_a_report_saying_so(
    cut_reports: list[tuple[str, float, dict[str, Any], dict[str, Any]]],
) -> None:
    failures = []
    for case, deadline, natural, cut in cut_reports:
        where = f"{case} @ {deadline:g} s"
        raised = [f"{r['exception']}" for r in (natural, cut) if "exception" in r]
        if raised:
            failures.append(f"{where} raised {raised}")
            continue
        report = Report.model_validate(cut)
        total = report.timings_ms.total
        if total is None:
            failures.append(f"{where}: no total time")
        elif "diagnosis.deadline" not in report.warning_codes() and (
            # Only a diagnosis whose ladder ended before its deadline may say nothing: on a
            # busy machine a fast scenario (a connect failing at once) can be slow once and
            # be chosen for the mid-way cut, end its ladder in time and then spend a while
            # building its report among a hundred others in the process. Such a report says
            # what the uncut one said; one that ignored its deadline would run on for the
            # scenario's natural length (seconds), past any scheduling delay.
            deadline == FIRST_CHECKPOINT
            or _code(cut) != _code(natural)
            or total >= deadline * 1000 + 1000
        ):
            failures.append(f"{where}: no diagnosis.deadline warning ({total:.1f} ms)")
        if not report.steps or report.steps[0].name != "dns":
            failures.append(f"{where}: steps {[s.name for s in report.steps]}")
        # Healthy only when the target's last rung was reached: a cut between the connect
        # and the TLS or application rung is no all-clear for an https:// target.
        if report.target.protocol != "tcp":
            last: str | None = "application"
        else:
            last = "tls" if report.target.tls else None
        reached = {s.name for s in report.steps if s.status == "ok"}
        if report.ok and last is not None and last not in reached:
            failures.append(f"{where}: healthy without its {last} rung: {sorted(reached)}")
    assert not failures, failures


def test_cut_mid_way_keeps_the_rungs_done_before_the_cut(
    cut_reports: list[tuple[str, float, dict[str, Any], dict[str, Any]]],
) -> None:
    """Every rung before the one the deadline cut is in the report, with the outcome the
    uncut run had: the deadline keeps partial results."""
    checked = 0
    for case, deadline, natural_json, cut_json in cut_reports:
        natural, cut = Report.model_validate(natural_json), Report.model_validate(cut_json)
        warning = next((w for w in cut.warnings if w.code == "diagnosis.deadline"), None)
        if deadline != MID_CUT or warning is None:
            continue
        match = re.search(r"during the (\w+) step", warning.message)
        assert match is not None, warning.message
        if match.group(1) not in RUNGS:
            continue
        before = RUNGS[: RUNGS.index(match.group(1))]
        natural_steps = {s.name: s for s in natural.steps}
        cut_steps = {s.name: s for s in cut.steps}
        for name in before:
            if name not in natural_steps:
                continue
            want, got = natural_steps[name], cut_steps.get(name)
            assert got is not None, f"{case}: {name} missing after a cut during {match[1]}"
            assert got.status == want.status, f"{case}: {name}"
            for attr in ("addresses", "connected_to"):
                assert getattr(got, attr, None) == getattr(want, attr, None), f"{case}: {name}"
            checked += 1
    assert checked >= 5
