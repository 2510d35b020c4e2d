"""Blocking calls that may never return (getaddrinfo on a silent resolver), in daemon threads.

anyio's worker threads (and asyncio's default executor) are joined when the interpreter
exits: a ``getaddrinfo`` abandoned at the deadline kept a finished CLI process alive until
glibc gave up (``timeout:5 attempts:2``, ~10-13 s), which a startup check or a Kubernetes
exec probe sees as a hang. A daemon thread of our own never holds the interpreter's exit;
the call's result comes back to the event loop through the backend's thread-safe wake-up
(``call_soon_threadsafe`` / trio's ``run_sync_soon``), which never blocks the thread, so a
thread that finishes after its event loop ended just ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import sniffio

__all__ = ["run_in_daemon_thread"]

T = TypeVar("T")


def _waker() -> Callable[[Callable[[], object]], object]:
    """The running loop's thread-safe "call this soon" (non-blocking, from any thread)."""
    if sniffio.current_async_library() == "trio":
        import trio

        return trio.lowlevel.current_trio_token().run_sync_soon
    import asyncio

    return asyncio.get_running_loop().call_soon_threadsafe


async def run_in_daemon_thread(fn: Callable[..., T], *args: Any, name: str) -> T:
    """Run ``fn(*args)`` in a new daemon thread and wait for it; cancellation abandons the
    thread (its result is dropped) without waiting. ``fn``'s exception is raised here."""
    done = anyio.Event()
    outcome: list[tuple[bool, Any]] = []
    wake = _waker()

    def work() -> None:
        try:
            outcome.append((True, fn(*args)))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting task as is
            outcome.append((False, exc))
        # RuntimeError: the event loop is gone (the caller was abandoned): nothing to do.
        with contextlib.suppress(RuntimeError):
            wake(done.set)

    threading.Thread(target=work, name=name, daemon=True).start()
    await done.wait()
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
