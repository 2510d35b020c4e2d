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
