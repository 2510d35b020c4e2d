"""netprobe: find out why a service cannot reach its dependency.

```python
report = await netprobe.diagnose("db:3306")
```

``import netprobe`` loads what a diagnosis needs and no more: the service helpers (health
endpoints, ``wait_until_ready``, ``probe_pool``) are imported at first access, and httpx,
dnspython, cryptography, rich and click by the rungs and the CLI that use them
(benchmarks/RESULTS-import.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import InvalidOption as InvalidOption
from ._errors import InvalidTarget as InvalidTarget
from ._errors import NetprobeError as NetprobeError
from ._unavailable import DependencyUnavailable as DependencyUnavailable
from ._version import __version__ as __version__
from .diagnose import diagnose as diagnose
from .diagnose import diagnose_many as diagnose_many
from .options import Options as Options
from .report import FAULT_CODES as FAULT_CODES
from .report import WARNING_CODES as WARNING_CODES
from .report import Evidence as Evidence
from .report import Fault as Fault
from .report import PoolReport as PoolReport
from .report import Report as Report
from .report import ReportWarning as ReportWarning
from .report import Timings as Timings
from .target import Target as Target
from .target import parse_target as parse_target

if TYPE_CHECKING:
    from .health import Dependency as Dependency
    from .health import HealthApp as HealthApp
    from .health import health_app as health_app
    from .health import wait_until_ready as wait_until_ready
    from .pool import probe_pool as probe_pool

#: Public names imported at first access: name -> submodule.
_LAZY = {
    "Dependency": "health",
    "HealthApp": "health",
    "health_app": "health",
    "wait_until_ready": "health",
    "probe_pool": "pool",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'netprobe' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = (
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
)
