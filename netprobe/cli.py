"""The command line: `netprobe diagnose`, `demo`, `pool` and `wait` (docs/cli.md).

Exit codes: 0 healthy, 1 fault found, 2 usage error (bad target, bad option); `wait` runs
COMMAND and ends with its status.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import anyio
import click
from rich.console import Console

from ._errors import NetprobeError
from .health._cli import WaitCommand
from .render import render_ladder
from .report import Report

__all__ = ["main"]

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _usage_error(message: str) -> NoReturn:
    _console(stderr=True).print(f"[red]netprobe: error:[/] {message}", markup=True)
    sys.exit(EXIT_USAGE)


def diagnosis_options(fn: F) -> F:
    """The options every probing command shares (they mirror diagnose()'s keywords)."""
    decorators = [
        click.option("--timeout", type=float, help="Total deadline of a diagnosis, seconds [10]."),
        click.option("--connect-timeout", type=float, help="TCP connect timeout, seconds [3]."),
        click.option("--dns-timeout", type=float, help="DNS budget, seconds [2]."),
        click.option("--read-timeout", type=float, help="L7 answer timeout, seconds [3]."),
        click.option(
            "--nameserver",
            "nameservers",
            multiple=True,
            help="Resolve with this name server (IP or IP:port); repeatable.",
        ),
        click.option("--no-icmp", is_flag=True, help="Do not send ICMP echoes."),
        click.option(
            "--no-canary",
            is_flag=True,
            help="No extra connect to a closed port as a liveness witness.",
        ),
        click.option(
            "--ca-file",
            type=click.Path(dir_okay=False),
            help="CA bundle (PEM) to verify TLS certificates against.",
        ),
        click.option("--insecure", is_flag=True, help="Do not verify TLS certificates."),
        click.option(
            "--client-cert",
            type=click.Path(dir_okay=False),
            help="Client certificate (PEM) for servers that require one (mTLS).",
        ),
        click.option(
            "--client-key",
            type=click.Path(dir_okay=False),
            help="Key of the client certificate (PEM), if not in --client-cert.",
        ),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def options_from_cli(kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the shared diagnosis options out of click's keywords as ``diagnose()`` keywords."""
    opts: dict[str, Any] = {
        "timeout": kw.pop("timeout", None),
        "connect_timeout": kw.pop("connect_timeout", None),
        "dns_timeout": kw.pop("dns_timeout", None),
        "read_timeout": kw.pop("read_timeout", None),
        "nameservers": tuple(kw.pop("nameservers", ())) or None,
        "ca_file": kw.pop("ca_file", None),
        "client_cert": kw.pop("client_cert", None),
        "client_key": kw.pop("client_key", None),
    }
    if kw.pop("no_icmp", False):
        opts["icmp"] = False
    if kw.pop("no_canary", False):
        opts["canary"] = False
    if kw.pop("insecure", False):
        opts["verify"] = False
    return {k: v for k, v in opts.items() if v is not None}


def run_async(fn: Callable[[], Any]) -> Any:
    """Run a coroutine function; user mistakes become one line and exit code 2."""
    try:
        return anyio.run(fn)
    except NetprobeError as exc:
        _usage_error(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)


def print_report(report: Report, *, as_json: bool, verbose: bool = False) -> None:
    """Print one report on stdout: the ladder, or the JSON form with ``as_json``."""
    if as_json:
        click.echo(report.model_dump_json(indent=2))
        return
    console = _console()
    for line in render_ladder(report, verbose=verbose):
        console.print(line)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="netprobe")
def cli() -> None:
    """Find out why a service cannot reach its dependency."""


@cli.command()
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show all evidence.")
@diagnosis_options
def diagnose(target: str, as_json: bool, verbose: bool, **kw: Any) -> None:
    """Diagnose the path to TARGET (host:port, URL or DSN)."""
    from .diagnose import diagnose as run

    options = options_from_cli(kw)

    async def go() -> Report:
        return await run(target, **options)

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
        console = _console()
        for case, report in results:
            console.print(f"\n[bold magenta]# {case.title}[/]")
            for line in render_ladder(report):
                console.print(line)
    mismatched = [c for c, r in results if (r.fault.code if r.fault else None) != c.expect]
    for case in mismatched:
        _console(stderr=True).print(f"[red]demo case did not show its fault:[/] {case.title}")
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
@click.option("--json", "as_json", is_flag=True, help="Print the pool report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show every connection.")
@diagnosis_options
def pool(target: str, size: int, hold: float, as_json: bool, verbose: bool, **kw: Any) -> None:
    """Open SIZE connections to TARGET at once, like a pool filling, hold and validate them."""
    from .pool import probe_pool
    from .render_pool import render_pool

    options = options_from_cli(kw)
    console = _console(stderr=True)
    show_progress = not as_json and console.is_terminal

    async def go() -> Any:
        if not show_progress:
            return await probe_pool(target, size=size, hold=hold, **options)
        from rich.progress import Progress

        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("opening connections", total=size)
            return await probe_pool(
                target,
                size=size,
                hold=hold,
                on_progress=lambda _c: progress.advance(task),
                **options,
            )

    report = run_async(go)
    if as_json:
        click.echo(report.model_dump_json(indent=2))
    else:
        out = _console()
        for line in render_pool(report, verbose=verbose):
            out.print(line)
    sys.exit(EXIT_OK if report.ok else EXIT_FAULT)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `netprobe` command."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="netprobe",
            standalone_mode=True,
        )
    except NetprobeError as exc:  # pragma: no cover - run_async already maps these
        _usage_error(str(exc))


if __name__ == "__main__":
    main()
