"""The command line: `netprobe diagnose`, `demo`, `pool`, `churn` and `wait` (docs/cli.md).

Exit codes: 0 healthy, 1 fault found, 2 usage error (bad target, bad option); `wait` runs
COMMAND and ends with its status.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import click

from ._cliutil import (
    EXIT_FAULT,
    EXIT_OK,
    command_age,
    console,
    diagnosis_options,
    options_from_cli,
    print_lines,
    run_async,
    start_command,
    usage_error,
    usage_words,
)
from ._errors import NetprobeError
from .health._cli import WaitCommand
from .render import render_ladder
from .report import Report

__all__ = ["main"]


def print_report(report: Report, *, as_json: bool, verbose: bool = False) -> None:
    """Print one report on stdout: the ladder, or the JSON form with ``as_json``."""
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    print_lines(console(), render_ladder(report, verbose=verbose))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netprobe-sdk")
def cli() -> None:
    """Find out why a service cannot reach its dependency."""


@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show all evidence.")
@diagnosis_options
def diagnose(target: str, as_json: bool, verbose: bool, **kw: Any) -> None:
    """Diagnose the path to TARGET (host:port, URL or DSN)."""
    from ._hooks import DEADLINE_ORIGIN
    from .diagnose import diagnose as run

    # --timeout holds for the whole process: its start-up is already spent. The origin is
    # this command's (reset when it ends: a program calling main() goes on with its own).
    origin = DEADLINE_ORIGIN.set(time.perf_counter() - command_age())
    try:
        _diagnose(target, as_json, verbose, kw, run)
    finally:
        DEADLINE_ORIGIN.reset(origin)


def _diagnose(
    target: str,
    as_json: bool,
    verbose: bool,
    kw: dict[str, Any],
    run: Callable[..., Awaitable[Report]],
) -> None:
    options = options_from_cli(kw)
    err = console(stderr=True)

    async def go() -> Report:
        if as_json or not err.is_terminal:
            return await run(target, **options)
        from ._live import with_live_progress
        from .options import make_options
        from .probes.db_login import require_driver
        from .target import parse_target

        # Bad input is one line before anything is drawn (not an error inside the task
        # group of the live line).
        parsed, opts = parse_target(target), make_options(**options)
        require_driver(parsed)
        return await with_live_progress(err, parsed.url, lambda: run(parsed, options=opts))

    report: Report = run_async(go)
    print_report(report, as_json=as_json, verbose=verbose)
    sys.exit(EXIT_OK if report.ok else EXIT_FAULT)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the reports as a JSON list.")
def demo(as_json: bool) -> None:
    """Start small servers on loopback showing each fault, and diagnose them all."""
    from .demo import run_demo

    results = run_async(run_demo)
    if as_json:
        click.echo("[" + ",\n".join(r.model_dump_json(indent=2) for _, r in results) + "]")
    else:
        out = console()
        for case, report in results:
            out.print(f"\n[bold magenta]# {case.title}[/]")
            print_lines(out, render_ladder(report))
    mismatched = [c for c, r in results if (r.fault.code if r.fault else None) != c.expect]
    for case in mismatched:
        console(stderr=True).print(f"[red]demo case did not show its fault:[/] {case.title}")
    sys.exit(EXIT_FAULT if mismatched else EXIT_OK)


@cli.command(cls=WaitCommand)
@click.argument("targets", nargs=-1, metavar="TARGET... [-- COMMAND ARGS...]")
@click.option(
    "--interval", type=float, default=0.25, show_default=True, help="First retry delay, s."
)
@click.option(
    "--max-interval", type=float, default=5.0, show_default=True, help="Largest retry delay, s."
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the diagnosis of a failure.")
@diagnosis_options
def wait(
    targets: tuple[str, ...], interval: float, max_interval: float, quiet: bool, **kw: Any
) -> None:
    """Wait until every TARGET is healthy, then run COMMAND (like wait-for-it, with a diagnosis).

    Exit codes: 0 ready (or COMMAND's), 1 not ready at the deadline (the diagnosis is
    printed), 2 usage error.
    """
    from .health._cli import run_wait

    command = click.get_current_context().meta.get("netprobe.wait.command", [])
    timeout = kw.pop("timeout", None)
    code = run_wait(
        targets,
        command,
        timeout=timeout,
        interval=interval,
        max_interval=max_interval,
        options=options_from_cli(kw),
        quiet=quiet,
    )
    sys.exit(code)


@cli.command()
@click.argument("target")
@click.option("--size", type=int, default=10, show_default=True, help="Connections at once.")
@click.option("--hold", type=float, default=0.0, show_default=True, help="Hold them (seconds).")
@click.option(
    "--find-idle-timeout",
    is_flag=True,
    help="Search the path's idle timeout: connections idle 1, 2, 4... s, each checked after.",
)
@click.option(
    "--max-idle",
    type=float,
    default=600.0,
    show_default=True,
    help="The longest idle --find-idle-timeout tries (seconds).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the pool report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show every connection.")
@diagnosis_options
def pool(
    target: str,
    size: int,
    hold: float,
    find_idle_timeout: bool,
    max_idle: float,
    as_json: bool,
    verbose: bool,
    **kw: Any,
) -> None:
    """Open SIZE connections to TARGET at once, like a pool filling, hold and validate them."""
    from .pool import idle_schedule, probe_pool
    from .render_pool import render_pool

    options = options_from_cli(kw)
    err = console(stderr=True)
    show_progress = not as_json and err.is_terminal

    async def go() -> Any:
        if not show_progress:
            return await probe_pool(
                target,
                size=size,
                hold=hold,
                find_idle_timeout=find_idle_timeout,
                max_idle=max_idle,
                **options,
            )
        from rich.progress import Progress

        total = len(idle_schedule(max_idle)) if find_idle_timeout else size
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("opening connections", total=total)
            return await probe_pool(
                target,
                size=size,
                hold=hold,
                find_idle_timeout=find_idle_timeout,
                max_idle=max_idle,
                on_progress=lambda _c: progress.advance(task),
                **options,
            )

    report = run_async(go)
    _emit(report, as_json, lambda: render_pool(report, verbose=verbose))


@cli.command()
@click.argument("target")
@click.option(
    "--pairs",
    type=int,
    default=20,
    show_default=True,
    help="Fresh-then-reused connect pairs (1-1000).",
)
@click.option(
    "--rate", type=float, default=20.0, show_default=True, help="Pairs started per second, at most."
)
@click.option(
    "--max-time",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds the whole probe may take.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the churn report as JSON.")
@diagnosis_options
def churn(target: str, pairs: int, rate: float, max_time: float, as_json: bool, **kw: Any) -> None:
    """Open and close connections to TARGET quickly, reconnecting from just-closed ports."""
    from .churn import probe_churn
    from .render_churn import render_churn

    options = options_from_cli(kw)
    err = console(stderr=True)
    show_progress = not as_json and err.is_terminal

    async def go() -> Any:
        if not show_progress:
            return await probe_churn(target, pairs=pairs, rate=rate, max_time=max_time, **options)
        from rich.progress import Progress

        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("connect, close, reconnect", total=2 * pairs)
            return await probe_churn(
                target,
                pairs=pairs,
                rate=rate,
                max_time=max_time,
                on_progress=lambda _a: progress.advance(task),
                **options,
            )

    report = run_async(go)
    _emit(report, as_json, lambda: render_churn(report))


@cli.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    metavar="FILE",
    help="The exporter's YAML configuration: modules, allow list (docs/exporter.md).",
)
@click.option("--listen", metavar="HOST:PORT", help="Listen here instead of the file's 'listen'.")
def serve(config_path: str, listen: str | None) -> None:
    """Serve /probe?target=...&module=... for Prometheus, as blackbox exporter does."""
    from .exporter._serve import run_serve

    try:
        run_serve(config_path, listen)
    except NetprobeError as exc:
        usage_error(str(exc))


def _emit(report: Any, as_json: bool, lines: Callable[[], list[str]]) -> None:
    """Print a pool or churn report (JSON, or the rendered lines) and exit by its verdict."""
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        print_lines(console(), lines())
    sys.exit(EXIT_OK if report.ok else EXIT_FAULT)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `netprobe` command. A usage mistake (an unknown option, a missing
    argument, a bad value) is one line on stderr and exit code 2, as every other one."""
    args = list(argv) if argv is not None else sys.argv[1:]
    # As the process (argv from sys.argv), --timeout counts from the process's start.
    start_command(from_process_start=argv is None)
    try:
        code = cli.main(args=args, prog_name="netprobe", standalone_mode=False)
    except click.UsageError as exc:
        usage_error(usage_words(exc, args))
    except click.ClickException as exc:
        usage_error(exc.format_message())
    except click.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else EXIT_OK)


if __name__ == "__main__":
    main()
