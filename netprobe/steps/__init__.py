"""Per-rung step models: what each probe observed, as plain data."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from ._base import ErrorInfo, StepBase, StepStatus
from .application import ApplicationStep
from .dns import DnsStep, NameserverAnswer, Rcode
from .http import HttpHop, HttpResult
from .icmp import IcmpAddressResult, IcmpStep
from .tcp import AddressAttempt, ConnectOutcome, TcpStep
from .tls import CertificateInfo, TlsStep

Step = Annotated[
    DnsStep | IcmpStep | TcpStep | TlsStep | ApplicationStep, Field(discriminator="name")
]

__all__ = [
    "AddressAttempt",
    "ApplicationStep",
    "CertificateInfo",
    "ConnectOutcome",
    "DnsStep",
    "ErrorInfo",
    "HttpHop",
    "HttpResult",
    "IcmpAddressResult",
    "IcmpStep",
    "NameserverAnswer",
    "Rcode",
    "Step",
    "StepBase",
    "StepStatus",
    "TcpStep",
    "TlsStep",
]
