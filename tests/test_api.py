"""The public API surface is pinned: changing it is a deliberate act."""

from __future__ import annotations

import netprobe

EXPECTED = {
    "FAULT_CODES",
    "WARNING_CODES",
    "Dependency",
    "DependencyUnavailable",
    "Evidence",
    "Fault",
    "HealthApp",
    "InvalidOption",
    "InvalidTarget",
    "NetprobeError",
    "Options",
    "PoolReport",
    "Report",
    "ReportWarning",
    "Target",
    "Timings",
    "__version__",
    "diagnose",
    "diagnose_many",
    "health_app",
    "parse_target",
    "probe_pool",
    "wait_until_ready",
}


def test_all_is_pinned() -> None:
    assert isinstance(netprobe.__all__, tuple)
    assert set(netprobe.__all__) >= EXPECTED
    for name in netprobe.__all__:
        assert hasattr(netprobe, name), name


def test_errors_are_value_errors() -> None:
    assert issubclass(netprobe.InvalidTarget, ValueError)
    assert issubclass(netprobe.InvalidOption, ValueError)


def test_import_loads_no_optional_or_cli_dependency() -> None:
    """``import netprobe`` leaves httpx, rich, click, dnspython, cryptography and the database
    drivers unloaded: they are imported by the rungs and the CLI that use them."""
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, netprobe\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert "netprobe" in loaded and "pydantic" in loaded  # the probe itself ran
    lazy = {"httpx", "httpcore", "rich", "click", "dns", "cryptography", "asyncpg", "asyncmy"}
    assert not loaded & lazy, sorted(loaded & lazy)


def test_lazy_names_resolve() -> None:
    """The service helpers are imported at first access, and are the real objects."""
    from netprobe.health import HealthApp, wait_until_ready
    from netprobe.pool import probe_pool

    assert netprobe.HealthApp is HealthApp
    assert netprobe.wait_until_ready is wait_until_ready
    assert netprobe.probe_pool is probe_pool
    assert "probe_pool" in dir(netprobe)
