"""A first import of a lazily imported dependency runs off the event loop (probes/_lazy.py):
the total deadline can cut it, and the import completes for the next caller."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from netprobe.probes._lazy import import_off_loop

pytestmark = pytest.mark.anyio

MODULE = "netprobe_test_gated_module"


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """A module whose import blocks until the returned event is set (5 s at most)."""
    event = threading.Event()
    (tmp_path / f"{MODULE}.py").write_text(
        "import sys\nsys.modules['_netprobe_test_gate'].wait(5)\nVALUE = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sys.modules, "_netprobe_test_gate", event)
    try:
        yield event
    finally:
        event.set()
        sys.modules.pop(MODULE, None)


async def test_a_deadline_cuts_a_first_import(gate: threading.Event) -> None:
    with anyio.move_on_after(0.05) as scope:
        await import_off_loop(MODULE)
    # The import is still blocked in its worker thread, yet the deadline could end the wait.
    assert scope.cancelled_caught
    assert not gate.is_set()
    gate.set()
    await import_off_loop(MODULE)  # waits for the same import to finish, not a second one
    assert sys.modules[MODULE].VALUE == 1


async def test_an_imported_module_needs_no_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_thread(*args: object, **kwargs: object) -> None:
        raise AssertionError("a worker thread for a module already imported")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
    await import_off_loop("json", "netprobe.probes.tls")
