"""`netprobe wait TARGET... [-- COMMAND ARGS]`: the diagnosing replacement for wait-for-it.

Progress goes to stderr (stdout belongs to COMMAND): a live table on a terminal, one plain
line per change of verdict otherwise. When everything is ready, COMMAND replaces this
process (exec, as wait-for-it does), so it receives the container's signals directly.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from .._cliutil import print_lines, run_async, time_left
from .._errors import NetprobeError
from .._unavailable import DependencyUnavailable
from ..probes.db_login import require_driver
from ..render import render_ladder
from ..report import Report
from ..target import Target, parse_target
from .wait import verdict_of, wait_until_ready

__all__ = ["WaitCommand", "run_wait"]

EXIT_READY, EXIT_NOT_READY, EXIT_USAGE = 0, 1, 2
DEFAULT_TIMEOUT = 60.0


class WaitCommand(click.Command):
    """Splits ``-- COMMAND ARGS`` off before click parses the targets."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            if p.name == "timeout" and isinstance(p, click.Option):
                p.help = f"Overall deadline: give up after this many seconds [{DEFAULT_TIMEOUT:g}]."

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            i = args.index("--")
            ctx.meta["netprobe.wait.command"] = args[i + 1 :]
            args = args[:i]
        return super().parse_args(ctx, args)


@dataclass
class _Row:
    target: Target
    verdict: str = "…"
    attempts: int = 0
    summary: str = "waiting for the first diagnosis"


class _Progress:
    def __init__(self, targets: Sequence[Target], console: Console, *, live: bool) -> None:
        self.rows = {t.url: _Row(t) for t in targets}
        self.console = console
        self.started = time.monotonic()
        self.live: Live | None = None
        if live:
            self.live = Live(self._table(), console=console, refresh_per_second=8, transient=True)

    def __enter__(self) -> _Progress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def on_attempt(self, target: Target, report: Report, attempt: int) -> None:
        row = self.rows[target.url]
        verdict = verdict_of(report)
        changed = verdict != row.verdict
        row.verdict, row.attempts = verdict, attempt
        row.summary = "ready" if report.fault is None else report.fault.summary
        if self.live is not None:
            self.live.update(self._table())
        elif changed:
            elapsed = time.monotonic() - self.started
            state = "ready" if report.ok else f"not ready: {verdict}: {row.summary}"
            self.console.print(
                f"netprobe wait: {escape(target.url)} {escape(state)} "
                f"(attempt {attempt}, {elapsed:.1f} s)"
            )

    def _table(self) -> Table:
        elapsed = time.monotonic() - self.started
        table = Table(title=f"waiting for dependencies · {elapsed:.0f} s", title_justify="left")
        # The target's host:port is never cut (its port least of all): its column is as wide
        # as the longest, the scheme and path go on a dim second line, and the verdict gives
        # way, cut to one line with an ellipsis (the full diagnosis of a failing target is
        # printed at the deadline).
        width = self.console.width
        fixed = 17  # the borders and padding of 4 columns, the mark and the tries
        longest = max((len(r.target.netloc) for r in self.rows.values()), default=10)
        target_w = min(max(longest, 6), max(10, width - fixed - 8))
        verdict_w = max(8, width - fixed - target_w)
        table.add_column("", no_wrap=True, width=1)
        table.add_column("target", width=target_w, overflow="fold")
        table.add_column("try", justify="right", no_wrap=True, width=3)
        table.add_column("verdict", no_wrap=True, overflow="ellipsis", width=verdict_w)
        for row in self.rows.values():
            t = row.target
            mark = "[green]✓[/]" if row.verdict == "ok" else "[yellow]…[/]"
            verdict = "[green]ready[/]" if row.verdict == "ok" else escape(row.summary)
            code = "" if row.verdict in ("ok", "…") else f"[bold]{escape(row.verdict)}[/] "
            path = f" {t.path}" if t.protocol == "http" and t.path not in ("", "/") else ""
            shown = f"{escape(t.netloc)}\n[dim]{t.scheme}{escape(path)}[/]"
            table.add_row(mark, shown, str(row.attempts), code + verdict)
        return table


def run_wait(
    targets: Sequence[str],
    command: Sequence[str],
    *,
    timeout: float | None,
    interval: float,
    max_interval: float,
    options: dict[str, Any],
    quiet: bool,
) -> int:
    """The whole command; returns the exit code (or execs COMMAND)."""

    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if not targets:
        err.print("[red]netprobe: error:[/] give at least one TARGET")
        return EXIT_USAGE
    deadline = DEFAULT_TIMEOUT if timeout is None else timeout
    parsed: list[Target] = []
    for i, t in enumerate(targets):
        try:
            parsed.append(parse_target(t))
            require_driver(parsed[-1])
        except NetprobeError as exc:
            message = str(exc)
            if i > 0 and not command and ":" not in t and "/" not in t:
                # `netprobe wait db:5432 echo hi`: the command, without the -- before it.
                shown = " ".join([*targets[:i], "--", *targets[i:]])
                message = (
                    f"{t!r} is not a target: to run a command once the targets are ready, "
                    f"put -- before it: netprobe wait {shown}"
                )
            err.print(f"[red]netprobe: error:[/] {escape(message)}")
            return EXIT_USAGE
    progress = _Progress(parsed, err, live=err.is_terminal and not quiet)

    async def go() -> list[Report] | DependencyUnavailable:
        with progress:
            try:
                return await wait_until_ready(
                    parsed,
                    timeout=time_left(deadline) if 0 < deadline < float("inf") else deadline,
                    interval=interval,
                    max_interval=max_interval,
                    on_attempt=None if quiet else progress.on_attempt,
                    **options,
                )
            except DependencyUnavailable as exc:
                return exc

    outcome = run_async(go)
    if isinstance(outcome, DependencyUnavailable):
        err.print(f"[bold red]netprobe wait: not ready after {deadline:g} s[/]")
        for report in outcome.failing:
            print_lines(err, render_ladder(report))
        return EXIT_NOT_READY
    if not quiet:
        err.print(f"netprobe wait: all {len(parsed)} ready")
    if not command:
        return EXIT_READY
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(command[0], list(command))
    except OSError as exc:
        err.print(f"[red]netprobe wait: cannot run {escape(command[0])!s}:[/] {escape(str(exc))}")
        return 127 if isinstance(exc, FileNotFoundError) else 126
    return EXIT_READY  # pragma: no cover - execvp does not return
