"""The public surface of netprobe.health is pinned: changing it is a deliberate act."""

from __future__ import annotations

import netprobe.health


def test_health_all_is_pinned() -> None:
    assert netprobe.health.__all__ == (
        "CheckResult",
        "Dependency",
        "HealthApp",
        "HealthChecker",
        "HealthResult",
        "StateChange",
        "health_app",
        "startup_gate",
        "wait_until_ready",
    )
    for name in netprobe.health.__all__:
        obj = getattr(netprobe.health, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"
