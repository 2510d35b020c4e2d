"""netprobe: find out why a service cannot reach its dependency.

```python
report = await netprobe.diagnose("db:3306")
```

The report and what each rung observed are exported too (``netprobe.TcpStep``...), to read a
report with types. ``import netprobe`` loads what a diagnosis needs and no more: the service
helpers (health endpoints, ``wait_until_ready``, ``probe_pool``) are imported at first
access, and httpx, dnspython, cryptography, rich and click by the rungs and the CLI that use
them (benchmarks/RESULTS-import.md).
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
from .diagnose import diagnose_stream as diagnose_stream
from .options import Options as Options
from .options import OptionsKwargs as OptionsKwargs
from .report import FAULT_CODES as FAULT_CODES
from .report import WARNING_CODES as WARNING_CODES
from .report import ChurnReport as ChurnReport
from .report import Evidence as Evidence
from .report import Fault as Fault
from .report import PoolConnection as PoolConnection
from .report import PoolReport as PoolReport
from .report import Report as Report
from .report import ReportWarning as ReportWarning
from .report import Timings as Timings
from .steps import AddressAttempt as AddressAttempt
from .steps import ApplicationStep as ApplicationStep
from .steps import CertificateInfo as CertificateInfo
from .steps import DatabaseResult as DatabaseResult
from .steps import DeadlineCut as DeadlineCut
from .steps import DnsStep as DnsStep
from .steps import ErrorInfo as ErrorInfo
from .steps import GrpcResult as GrpcResult
from .steps import HttpHop as HttpHop
from .steps import HttpResult as HttpResult
from .steps import IcmpAddressResult as IcmpAddressResult
from .steps import IcmpStep as IcmpStep
from .steps import LocalHealth as LocalHealth
from .steps import NameserverAnswer as NameserverAnswer
from .steps import ProxyStep as ProxyStep
from .steps import ResolverWalk as ResolverWalk
from .steps import Step as Step
from .steps import TcpStep as TcpStep
from .steps import TlsStep as TlsStep
from .target import Target as Target
from .target import parse_target as parse_target

if TYPE_CHECKING:
    from .churn import probe_churn as probe_churn
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
    "probe_churn": "churn",
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
    "AddressAttempt",
    "ApplicationStep",
    "CertificateInfo",
    "ChurnReport",
    "DatabaseResult",
    "DeadlineCut",
    "Dependency",
    "DependencyUnavailable",
    "DnsStep",
    "ErrorInfo",
    "Evidence",
    "Fault",
    "GrpcResult",
    "HealthApp",
    "HttpHop",
    "HttpResult",
    "IcmpAddressResult",
    "IcmpStep",
    "InvalidOption",
    "InvalidTarget",
    "LocalHealth",
    "NameserverAnswer",
    "NetprobeError",
    "Options",
    "OptionsKwargs",
    "PoolConnection",
    "PoolReport",
    "ProxyStep",
    "Report",
    "ReportWarning",
    "ResolverWalk",
    "Step",
    "Target",
    "TcpStep",
    "Timings",
    "TlsStep",
    "__version__",
    "diagnose",
    "diagnose_many",
    "diagnose_stream",
    "health_app",
    "parse_target",
    "probe_churn",
    "probe_pool",
    "wait_until_ready",
)
