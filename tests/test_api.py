"""The public API surface is pinned: changing it is a deliberate act."""

from __future__ import annotations

import netprobe

EXPECTED = {
    "FAULT_CODES",
    "WARNING_CODES",
    "AddressAttempt",
    "ApplicationStep",
    "CertificateInfo",
    "DatabaseResult",
    "DeadlineCut",
    "Dependency",
    "DependencyUnavailable",
    "DnsStep",
    "ErrorInfo",
    "Evidence",
    "Fault",
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
    "Report",
    "ReportWarning",
    "ResolverWalk",
    "Step",
    "Target",
    "TcpStep",
    "Timings",
    "TlsStep",
    "ProxyStep",
    "GrpcResult",
    "__version__",
    "diagnose",
    "diagnose_many",
    "diagnose_stream",
    "health_app",
    "parse_target",
    "probe_churn",
    "probe_pool",
    "ChurnReport",
    "wait_until_ready",
}


#: netprobe.health's surface, as it is (another helper reworks its contents).
def test_all_is_pinned() -> None:
    """The public surface is exactly this: adding or removing a name is a deliberate act
    (httpx's test_exported_members)."""
    assert isinstance(netprobe.__all__, tuple)
    assert set(netprobe.__all__) == EXPECTED
    assert len(netprobe.__all__) == len(EXPECTED)
    for name in netprobe.__all__:
        assert hasattr(netprobe, name), name


def test_every_export_is_in_the_api_reference() -> None:
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "api.md").read_text()
    missing = [
        name
        for name in netprobe.__all__
        if f"::: netprobe.{name}\n" not in page
        and f"`netprobe.{name}`" not in page
        # diagnose() and diagnose_many() by their module path: netprobe.diagnose also names
        # the module, which mkdocstrings would render instead (tests/test_docs.py).
        and f"::: netprobe.diagnose.{name}\n" not in page
    ]
    assert missing == []


def test_the_step_models_read_a_report() -> None:
    """What a user needs to read a report is exported, and is what the report holds."""
    from netprobe import report, steps

    for name in ("DnsStep", "IcmpStep", "TcpStep", "TlsStep", "ApplicationStep", "DeadlineCut"):
        assert getattr(netprobe, name) is getattr(steps, name)
    assert netprobe.PoolReport is report.PoolReport


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
    from netprobe.churn import probe_churn

    assert netprobe.probe_churn is probe_churn
    from netprobe import report

    assert netprobe.ChurnReport is report.ChurnReport
