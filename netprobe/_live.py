"""The live line of ``netprobe diagnose`` on a terminal: which rung is waiting, and since
when, instead of a blank screen for up to the whole deadline (10 s by default).

It goes to stderr and disappears when the report is printed; nothing is drawn when stderr
is not a terminal (piped, in CI, in a container log) or with ``--json``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import anyio
from rich.console import Console
from rich.markup import escape
from rich.status import Status

from ._hooks import DIAGNOSIS_WATCHER

__all__ = ["RUNG_WORDS", "live_line", "with_live_progress"]

T = TypeVar("T")

#: What the diagnosis is waiting for, by rung, in words.
RUNG_WORDS = {
    "dns": "resolving the name",
    "tcp": "connecting",
    "tls": "TLS handshake",
    "application": "waiting for the answer",
    None: "finishing (other addresses, liveness checks)",
}
#: Refreshes of the line per second.
REFRESH_HZ = 10


class _Watched(Protocol):
    def progress(self) -> tuple[Any, float]: ...


def live_line(target: str, rung: str | None, elapsed_s: float) -> str:
    """The text of the live line (rich markup): the time and the rung first, so that a
    narrow terminal crops the target, never them."""
    words = RUNG_WORDS.get(rung, str(rung)) if rung != "start" else "starting"
    return f"{elapsed_s:4.1f} s · {words} · [bold]{escape(target)}[/]"


async def with_live_progress(err: Console, target: str, run: Callable[[], Awaitable[T]]) -> T:
    """Run ``run()`` (one diagnosis) with a live status line on ``err``."""
    watched: list[_Watched] = []
    token = DIAGNOSIS_WATCHER.set(watched.append)
    result: list[T] = []
    try:
        with Status(live_line(target, "start", 0.0), console=err, spinner="dots") as status:

            async def diagnosis() -> None:
                result.append(await run())
                tg.cancel_scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(diagnosis)
                while True:
                    await anyio.sleep(1 / REFRESH_HZ)
                    if watched:
                        rung, elapsed = watched[0].progress()
                        status.update(live_line(target, rung, elapsed))
    finally:
        DIAGNOSIS_WATCHER.reset(token)
    return result[0]
