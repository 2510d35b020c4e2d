"""Inside services: startup dependency checks, health endpoints and Prometheus metrics.

* `wait_until_ready`: block a container's start until its dependencies are healthy,
  or raise `netprobe.DependencyUnavailable` with the diagnosis of each.
* `startup_gate`: wrap any ASGI app so that it starts only once its dependencies are
  ready, and otherwise exits with their diagnosis (no traceback).
* `health_app`: an ASGI app with liveness, readiness and startup endpoints, cached and
  single-flight so a flood of probes never floods the dependencies.
* ``netprobe.health.metrics.HealthCollector``: the same results as Prometheus series
  (needs the ``prometheus`` extra).
"""

from __future__ import annotations

from .asgi import HealthApp as HealthApp
from .asgi import health_app as health_app
from .checker import CheckResult as CheckResult
from .checker import Dependency as Dependency
from .checker import HealthChecker as HealthChecker
from .checker import HealthResult as HealthResult
from .checker import StateChange as StateChange
from .startup import startup_gate as startup_gate
from .wait import wait_until_ready as wait_until_ready

__all__ = (
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
