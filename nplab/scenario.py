"""One catalog scenario: a fault (or warning) built in the namespace lab, and how to show it.

The fault catalog (``scripts/gen_catalog.py``), the tool comparison and the deadline checks
all walk lists of these. A scenario only describes; whoever builds the fault in the lab
(servers, nftables rules, database instances) returns these from a context manager that
tears the fault down again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scenario:
    #: The fault or warning code this scenario demonstrates, e.g. ``"db.too_many_connections"``.
    code: str
    #: Short title shown in the catalog: ``"MariaDB with max_connections reached"``.
    title: str
    #: What the lab built, precisely (server and its settings, nftables rule), in markdown.
    setup: str
    #: The target as given to the CLI; a lab address (198.18.0.0/15) or a lab host name.
    target: str
    #: Extra CLI flags, e.g. ``("--connect-timeout", "1")``.
    cli_args: tuple[str, ...] = ()
    #: Local state the lab runner builds in the client process first (see nplab/runner.py).
    pre: Mapping[str, Any] = field(default_factory=dict)
    #: True when ``code`` is a warning code (the verdict itself may be healthy).
    warning: bool = False
    #: The CLI command that shows it: ``diagnose``, or ``pool`` / ``churn`` (their reports
    #: carry ``fault`` the same way).
    command: str = "diagnose"
