"""What the commands of the command line share: exit codes, the diagnosis options, and the
one place that turns a user mistake into one line and exit code 2.

Apart from ``cli.py`` so that the commands defined elsewhere (``netprobe wait``, in
``health/_cli.py``) use them without importing the command group (an import cycle).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import anyio
import click
from rich.console import Console

from ._errors import NetprobeError
from .options import Options

__all__ = [
    "EXIT_FAULT",
    "EXIT_OK",
    "EXIT_USAGE",
    "SHARED_OPTIONS",
    "CliOption",
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


@dataclass(frozen=True)
class CliOption:
    """One shared command-line option: its flag and the :class:`Options` field it sets. The
    type, the help text and the default shown come from the field (one definition)."""

    flag: str
    field: str
    #: A flag that turns the (boolean, on by default) field off: ``--no-icmp``.
    turns_off: bool = False
    metavar: str | None = None
    #: Given several times, the values make the field's tuple (``--nameserver``).
    repeatable: bool = False

    @property
    def param(self) -> str:
        """click's parameter name (the keyword the command receives)."""
        return self.field if self.repeatable else self.flag.lstrip("-").replace("-", "_")

    def help(self) -> str:
        info = Options.model_fields[self.field]
        text = (info.description or self.field).rstrip(".") + "."
        if self.turns_off:
            return f"{text} On by default: this flag turns it off."
        if self.repeatable:
            text += " Repeatable."
        if isinstance(info.default, int | float) and not isinstance(info.default, bool):
            text += f" [default: {info.default:g}]"
        return text

    def decorator(self) -> Callable[[F], F]:
        annotation = Options.model_fields[self.field].annotation
        kind: Any = None
        if self.turns_off:
            return click.option(self.flag, is_flag=True, help=self.help())
        if annotation in (float, float | None):
            kind = click.FLOAT
        elif self.metavar == "PATH":
            kind = click.Path(dir_okay=False)
        return click.option(
            self.flag,
            self.param,
            type=kind,
            multiple=self.repeatable,
            metavar=self.metavar,
            help=self.help(),
        )


#: The options every probing command shares, in the order ``--help`` lists them.
SHARED_OPTIONS: tuple[CliOption, ...] = (
    CliOption("--timeout", "timeout", metavar="SECONDS"),
    CliOption("--connect-timeout", "connect_timeout", metavar="SECONDS"),
    CliOption("--dns-timeout", "dns_timeout", metavar="SECONDS"),
    CliOption("--read-timeout", "read_timeout", metavar="SECONDS"),
    CliOption("--nameserver", "nameservers", metavar="IP[:PORT]", repeatable=True),
    CliOption("--no-icmp", "icmp", turns_off=True),
    CliOption("--no-canary", "canary", turns_off=True),
    CliOption("--ca-file", "ca_file", metavar="PATH"),
    CliOption("--insecure", "verify", turns_off=True),
    CliOption("--client-cert", "client_cert", metavar="PATH"),
    CliOption("--client-key", "client_key", metavar="PATH"),
    CliOption("--proxy", "proxy", metavar="URL"),
    CliOption("--no-env-proxy", "trust_env", turns_off=True),
)


def diagnosis_options(fn: F) -> F:
    """The options every probing command shares (:data:`SHARED_OPTIONS`, derived from the
    :class:`Options` fields they set)."""
    for option in reversed(SHARED_OPTIONS):
        fn = option.decorator()(fn)
    return fn


def options_from_cli(kw: dict[str, Any]) -> dict[str, Any]:
    """Pop the shared diagnosis options out of click's keywords as ``diagnose()`` keywords
    (only those given: the others keep their :class:`Options` default)."""
    opts: dict[str, Any] = {}
    for option in SHARED_OPTIONS:
        value = kw.pop(option.param, None)
        if option.turns_off:
            if value:
                opts[option.field] = False
        elif option.repeatable:
            if value:
                opts[option.field] = tuple(value)
        elif value is not None:
            opts[option.field] = value
    return opts


def run_async(fn: Callable[[], Any]) -> Any:
    """Run a coroutine function; user mistakes become one line and exit code 2."""
    try:
        return anyio.run(fn)
    except NetprobeError as exc:
        usage_error(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
