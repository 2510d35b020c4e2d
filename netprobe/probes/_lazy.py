"""First imports off the event loop, so that they cannot hold a diagnosis past its deadline.

Some dependencies are imported at their first use, not with netprobe (httpx, cryptography,
dnspython: 20-100 ms each on an idle machine, several times that on a busy one). Imported
on the event loop's thread, such an import cannot be interrupted: a diagnosis whose total
deadline fell during it returned late by the rest of the import (an http:// target with
``timeout=0.01`` returned after ~100 ms). In a worker thread, the deadline abandons the wait
and the import finishes in the background; once a module is imported, no thread is used.
"""

from __future__ import annotations

import importlib
import sys

import anyio.to_thread

__all__ = ["import_off_loop"]


def _imported(name: str) -> bool:
    module = sys.modules.get(name)
    # A module another thread is still executing is in sys.modules already: not ready.
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _import_all(names: list[str]) -> None:
    for name in names:
        importlib.import_module(name)


async def import_off_loop(*names: str) -> None:
    """Make sure the modules ``names`` are imported, the first time in a worker thread."""
    missing = [name for name in names if not _imported(name)]
    if missing:
        await anyio.to_thread.run_sync(_import_all, missing, abandon_on_cancel=True)
