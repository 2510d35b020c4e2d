"""What the commands of the command line share: exit codes, the diagnosis options, and the
one place that turns a user mistake into one line and exit code 2.

Apart from ``cli.py`` so that the commands defined elsewhere (``netprobe wait``, in
``health/_cli.py``) use them without importing the command group (an import cycle).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import anyio
import click
from rich.console import Console

from ._errors import NetprobeError

__all__ = [
    "EXIT_FAULT",
    "EXIT_OK",
    "EXIT_USAGE",
    "console",
    "diagnosis_options",
    "options_from_cli",
    "run_async",
    "usage_error",
]

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def usage_error(message: str) -> NoReturn:
    console(stderr=True).print(f"[red]netprobe: error:[/] {message}", markup=True)
    sys.exit(EXIT_USAGE)


def diagnosis_options(fn: F) -> F:
    """The options every probing command shares (they mirror diagnose()'s keywords)."""
    decorators = [
        click.option("--timeout", type=float, help="Total deadline of a diagnosis, seconds [10]."),
        click.option("--connect-timeout", type=float, help="TCP connect timeout, seconds [3]."),
        click.option("--dns-timeout", type=float, help="DNS budget, seconds [2]."),
        click.option("--read-timeout", type=float, help="L7 answer timeout, seconds [3]."),
        click.option(
            "--nameserver",
            "nameservers",
            multiple=True,
            help="Resolve with this name server (IP or IP:port); repeatable.",
        ),
        click.option("--no-icmp", is_flag=True, help="Do not send ICMP echoes."),
        click.option(
            "--no-canary",
            is_flag=True,
            help="No extra connect to a closed port as a liveness witness.",
        ),
        click.option(
            "--ca-file",
            type=click.Path(dir_okay=False),
            help="CA bundle (PEM) to verify TLS certificates against.",
        ),
        click.option("--insecure", is_flag=True, help="Do not verify TLS certificates."),
        click.option(
            "--client-cert",
            type=click.Path(dir_okay=False),
            help="Client certificate (PEM) for servers that require one (mTLS).",
        ),
        click.option(
            "--client-key",
            type=click.Path(dir_okay=False),
            help="Key of the client certificate (PEM), if not in --client-cert.",
        ),
    ]
    for d in reversed(decorators):
        fn = d(fn)
    return fn


def options_from_cli(kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the shared diagnosis options out of click's keywords as ``diagnose()`` keywords."""
    opts: dict[str, Any] = {
        "timeout": kw.pop("timeout", None),
        "connect_timeout": kw.pop("connect_timeout", None),
        "dns_timeout": kw.pop("dns_timeout", None),
        "read_timeout": kw.pop("read_timeout", None),
        "nameservers": tuple(kw.pop("nameservers", ())) or None,
        "ca_file": kw.pop("ca_file", None),
        "client_cert": kw.pop("client_cert", None),
        "client_key": kw.pop("client_key", None),
    }
    if kw.pop("no_icmp", False):
        opts["icmp"] = False
    if kw.pop("no_canary", False):
        opts["canary"] = False
    if kw.pop("insecure", False):
        opts["verify"] = False
    return {k: v for k, v in opts.items() if v is not None}


def run_async(fn: Callable[[], Any]) -> Any:
    """Run a coroutine function; user mistakes become one line and exit code 2."""
    try:
        return anyio.run(fn)
    except NetprobeError as exc:
        usage_error(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
