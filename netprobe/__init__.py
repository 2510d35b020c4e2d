"""netprobe: find out why a service cannot reach its dependency.

```python
report = await netprobe.diagnose("db:3306")
```
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._errors import DependencyUnavailable as DependencyUnavailable
from ._errors import InvalidOption as InvalidOption
from ._errors import InvalidTarget as InvalidTarget
from ._errors import NetprobeError as NetprobeError
from .diagnose import diagnose as diagnose
from .diagnose import diagnose_many as diagnose_many
from .health import Dependency as Dependency
from .health import HealthApp as HealthApp
from .health import health_app as health_app
from .health import wait_until_ready as wait_until_ready
from .options import Options as Options
from .pool import PoolReport as PoolReport
from .pool import probe_pool as probe_pool
from .report import FAULT_CODES as FAULT_CODES
from .report import WARNING_CODES as WARNING_CODES
from .report import Evidence as Evidence
from .report import Fault as Fault
from .report import Report as Report
from .report import ReportWarning as ReportWarning
from .report import Timings as Timings
from .target import Target as Target
from .target import parse_target as parse_target

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
