"""Deadlines: no diagnosis outlives its total deadline by more than 100 ms, in any lab scenario
(needs root: the fault lab).

Run: .venv/bin/python benchmarks/deadlines.py [--jobs 4] [--only SUBSTRING]
Results: benchmarks/RESULTS-reliability.md

Scenarios: every case of ``tests/lab/test_lab.py`` CASES, and every scenario of the fault
catalog (``nplab/catalog_scenarios.py`` ``build_scenarios``, databases included). Each
scenario runs once with its own options (its natural duration), then with the total deadline
(``timeout`` / ``--timeout``) set to 0.2 s, 0.5 s, 1.0 s and to its natural duration, so the
deadline cuts it at different rungs. For each cut:

* in-process: a fresh process in the client namespace builds the scenario's local state, then
  times ``await diagnose()`` (``perf_counter`` around the call, inside the event loop);
  overshoot = wall - deadline; also around ``anyio.run(...)``, which adds the event loop's
  start and shutdown (a script's view);
* CLI: ``netprobe diagnose TARGET ... --timeout T --json`` in the client namespace (through
  ``nplab/catalog_cli.py`` when it exists, which builds the local state first), timed
  from outside; its wall - deadline includes Python's start-up and the imports, so the header
  gives the start-up baseline (the same CLI on a target that fails at once) to compare with.

A cell shows the overshoot in ms when the deadline cut the diagnosis (the report carries
``diagnosis.deadline``), "done" when the diagnosis ended first. Scenarios that change
client-namespace sysctls run alone; the others run ``--jobs`` at a time (more jobs, more CPU
contention on a small machine: the lead's reference run uses ``--jobs 2``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from nplab.catalog_scenarios import build_scenarios, cli_options, client_sysctls
from nplab.scenario import Scenario
from nplab.topology import HERE as LAB_DIR
from nplab.topology import PY, Lab, build_lab

ROOT = LAB_DIR.parent.parent
CUTS = (0.2, 0.5, 1.0)
LIMIT_MS = 100.0


def case_scenarios() -> list[Scenario]:
    """test_lab.py's CASES as Scenarios (their options written as CLI flags)."""
    from nplab.cases import CASES

    out = []
    for name, target, options, code, warnings in CASES:
        opts = dict(options)
        pre = opts.pop("pre", {})
        args: list[str] = []
        if "connect_timeout" in opts:
            args += ["--connect-timeout", str(opts.pop("connect_timeout"))]
        if opts.pop("icmp", True) is False:
            args.append("--no-icmp")
        if opts.pop("canary", True) is False:
            args.append("--no-canary")
        assert not opts, f"CASES option not mapped to a flag: {opts}"
        out.append(
            Scenario(
                code=code or ",".join(sorted(warnings)) or "healthy",
                title=f"test_lab: {name}",
                setup="",
                target=target,
                cli_args=tuple(args),
                pre=pre,
                warning=code is None,
            )
        )
    return out


def _without_timeout(args: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--timeout":
            skip = True
        elif not arg.startswith("--timeout="):
            out.append(arg)
    return out


# --- in the client namespace -----------------------------------------------------------------


def worker(spec_json: str) -> None:
    """Build the local state, time diagnose() once per entry of ``timeouts`` (None: the
    scenario's own options; "natural": the first run's wall time), print what each says."""
    import anyio

    from netprobe import diagnose
    from nplab.runner import prepare

    spec = json.loads(spec_json)
    pre = spec["pre"]
    keep: list[Any] = []
    prepare({k: v for k, v in pre.items() if k in ("close_wait", "time_wait", "fds")}, keep)
    if pre.get("fd_exhaustion"):
        from nplab.catalog_cli import _exhaust_fds_at_first_socket

        _exhaust_fds_at_first_socket()
    results: list[dict[str, Any]] = []
    for timeout in spec["timeouts"]:
        options = dict(spec["options"])
        if timeout == "natural":
            options["timeout"] = max(0.001, round(results[0]["wall_s"], 3))
        elif timeout is not None:
            options["timeout"] = timeout
        inner: list[float] = []

        async def timed(options: dict[str, Any] = options, inner: list[float] = inner) -> Any:
            start = time.perf_counter()
            try:
                return await diagnose(spec["target"], **options)
            finally:
                inner.append(time.perf_counter() - start)

        start = time.perf_counter()
        report = anyio.run(timed)
        outer = time.perf_counter() - start
        results.append(
            {
                "deadline": options.get("timeout"),
                "wall_s": inner[0],
                "run_wall_s": outer,
                "code": report.fault.code if report.fault else None,
                "warnings": report.warning_codes(),
                "steps": [s.name for s in report.steps],
            }
        )
    for item in keep:
        item.close()
    print(json.dumps(results))


# --- from the root namespace -----------------------------------------------------------------


def run_worker(
    lab: Lab, scenario: Scenario, timeouts: list[float | str | None]
) -> list[dict[str, Any]]:
    spec = json.dumps(
        {
            "target": scenario.target,
            "options": cli_options(scenario),
            "pre": dict(scenario.pre),
            "timeouts": timeouts,
        }
    )
    proc = subprocess.run(
        ["ip", "netns", "exec", lab.client, PY, __file__, "--worker", spec],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        error = proc.stderr.strip().splitlines()[-1] if proc.stderr else "no output"
        return [{"error": error} for _ in timeouts]
    result: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def run_cli(lab: Lab, scenario: Scenario, timeout: float) -> float:
    args = [
        "diagnose",
        scenario.target,
        *_without_timeout(scenario.cli_args),
        "--timeout",
        f"{timeout:.3f}",
        "--json",
    ]
    if (LAB_DIR / "catalog_cli.py").exists():
        cmd = [PY, str(LAB_DIR / "catalog_cli.py"), json.dumps(dict(scenario.pre)), *args]
    else:
        cmd = [PY, "-m", "netprobe.cli", *args]
    start = time.perf_counter()
    subprocess.run(
        ["ip", "netns", "exec", lab.client, *cmd],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    return time.perf_counter() - start


def measure(lab: Lab, scenario: Scenario) -> dict[str, Any]:
    if "time_wait" in scenario.pre:
        # TIME_WAIT sockets toward the target last a minute: the state is built once, and
        # the natural run and every cut share that process (the cuts are warm calls).
        natural, *cuts = run_worker(lab, scenario, [None, *CUTS, "natural"])
        row: dict[str, Any] = {"scenario": scenario, "natural": natural, "cuts": []}
        for got in cuts:
            row["cuts"].append(
                {"deadline": got.get("deadline", 0.0), "result": got, "cli_wall": None}
            )
        return row
    natural = run_worker(lab, scenario, [None])[0]
    row = {"scenario": scenario, "natural": natural, "cuts": []}
    if "error" in natural:
        return row
    for deadline in (*CUTS, max(0.001, round(natural["wall_s"], 3))):
        got = run_worker(lab, scenario, [deadline])[0]
        cli_wall = run_cli(lab, scenario, deadline)
        row["cuts"].append({"deadline": deadline, "result": got, "cli_wall": cli_wall})
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--only", help="run the scenarios whose title or code contains this")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    with build_lab() as lab, contextlib.ExitStack() as stack:
        scenarios = case_scenarios()
        scenarios += [
            s for s in stack.enter_context(build_scenarios(lab)) if s.command == "diagnose"
        ]
        if args.only:
            scenarios = [s for s in scenarios if args.only in s.title or args.only in s.code]
        startup = statistics.median(
            run_cli(lab, Scenario("", "", "", "198.19.5.5:81"), 5.0) for _ in range(3)
        )
        shared = [s for s in scenarios if not s.pre.get("sysctl")]
        alone = [s for s in scenarios if s.pre.get("sysctl")]
        with ThreadPoolExecutor(max(1, args.jobs)) as pool:
            rows = list(pool.map(lambda s: measure(lab, s), shared))
        for s in alone:
            with client_sysctls(lab, s):
                rows.append(measure(lab, s))
    print_table(rows, startup)


def print_table(rows: list[dict[str, Any]], startup: float) -> None:
    print(
        f"{len(rows)} scenarios; deadlines {', '.join(f'{c:g} s' for c in CUTS)} and each "
        f"scenario's natural duration; CLI start-up baseline {startup * 1000:.0f} ms "
        f"(the CLI on a target that fails at once)\n"
    )
    print(
        "| scenario | verdict | natural s | 0.2 s | 0.5 s | 1.0 s | natural "
        "| max in-process ms | max anyio.run ms | max CLI wall − deadline ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    worst_in: float | None = None
    worst_cli: float | None = None
    problems: list[str] = []
    for row in rows:
        s: Scenario = row["scenario"]
        nat = row["natural"]
        if "error" in nat:
            print(f"| {s.title} | ERROR: {nat['error']} | | | | | | | | |")
            problems.append(f"{s.title}: {nat['error']}")
            continue
        cells, ins, runs, clis = [], [], [], []
        for cut in row["cuts"]:
            res, deadline = cut["result"], cut["deadline"]
            if "error" in res:
                cells.append("ERROR")
                problems.append(f"{s.title} @ {deadline:g} s: {res['error']}")
                continue
            over = (res["wall_s"] - deadline) * 1000.0
            cli_over = None if cut["cli_wall"] is None else (cut["cli_wall"] - deadline) * 1000.0
            if "diagnosis.deadline" in res["warnings"]:
                cells.append(f"{over:+.1f}")
                ins.append(over)
                runs.append((res["run_wall_s"] - deadline) * 1000.0)
                if cli_over is not None:
                    clis.append(cli_over)
            else:
                cells.append("done")
        max_in = max(ins) if ins else None
        max_cli = max(clis) if clis else None
        if max_in is not None:
            worst_in = max_in if worst_in is None else max(worst_in, max_in)
            if max_in > LIMIT_MS:
                problems.append(f"{s.title}: overshoot {max_in:.0f} ms")
        if max_cli is not None:
            worst_cli = max_cli if worst_cli is None else max(worst_cli, max_cli)
        verdict = nat["code"] or (
            "healthy" + (f" ({', '.join(nat['warnings'])})" if nat["warnings"] else "")
        )
        print(
            f"| {s.title} | {verdict} | {nat['wall_s']:.3f} | {' | '.join(cells)} "
            f"| {'-' if max_in is None else f'{max_in:+.1f}'} "
            f"| {f'{max(runs):+.1f}' if runs else '-'} "
            f"| {'-' if max_cli is None else f'{max_cli:+.0f}'} |"
        )
    shown_in = "-" if worst_in is None else f"{worst_in:+.1f}"
    shown_cli = "-" if worst_cli is None else f"{worst_cli:+.0f}"
    print(
        f"\nmax overshoot: in-process {shown_in} ms (limit {LIMIT_MS:.0f} ms), "
        f"CLI wall − deadline {shown_cli} ms (start-up baseline {startup * 1000:.0f} ms)"
    )
    for p in problems:
        print(f"PROBLEM: {p}")


if __name__ == "__main__":
    main()
