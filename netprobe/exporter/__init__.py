"""``netprobe serve``: a blackbox-exporter-compatible multi-target exporter, with the reasons.

Prometheus asks ``/probe?target=db:5432&module=tcp_connect`` at every scrape, as it asks
blackbox exporter; the answer carries blackbox's series (``probe_success``,
``probe_duration_seconds``...) and netprobe's ``netprobe_fault{layer,code}``. See
docs/exporter.md. Needs the ``exporter`` extra (``pip install 'netprobe-sdk[exporter]'``).
"""

from __future__ import annotations

from .app import ExporterApp as ExporterApp
from .config import ConfigError as ConfigError
from .config import ExporterConfig as ExporterConfig
from .config import Module as Module
from .config import TargetRefused as TargetRefused
from .config import load_config as load_config
from .config import parse_config as parse_config
from .metrics import probe_metrics_text as probe_metrics_text

__all__ = (
    "ConfigError",
    "ExporterApp",
    "ExporterConfig",
    "Module",
    "TargetRefused",
    "load_config",
    "parse_config",
    "probe_metrics_text",
)
