"""What the commands of the command line share: exit codes, the diagnosis options, and the
one place that turns a user mistake into one line and exit code 2.

Apart from ``cli.py`` so that the commands defined elsewhere (``netprobe wait``, in
``health/_cli.py``) use them without importing the command group (an import cycle).
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import anyio
import click
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ._errors import NetprobeError
from .options import Options

__all__ = [
    "EXIT_FAULT",
    "EXIT_OK",
    "EXIT_USAGE",
    "SHARED_OPTIONS",
    "CliOption",
    "cli_words",
    "command_age",
    "console",
    "diagnosis_options",
    "options_from_cli",
    "print_lines",
    "process_age",
    "run_async",
    "start_command",
    "time_left",
    "usage_error",
    "usage_words",
    "wrap_offsets",
]

EXIT_OK, EXIT_FAULT, EXIT_USAGE = 0, 1, 2

F = TypeVar("F", bound=Callable[..., Any])

#: When this module was first imported: the process's start where /proc cannot say.
_IMPORTED = time.monotonic()
#: The least a command's deadline is cut to (its start-up took longer than the deadline).
_MIN_LEFT_S = 0.05


def process_age() -> float:
    """Seconds since this process started: a command's ``--timeout`` counts from there, not
    from the end of its imports (which take a second and more on a loaded machine).

    Linux: the process's start time in /proc (clock ticks since boot) against CLOCK_BOOTTIME,
    the same clock; elsewhere, or if that reads oddly, the time since this module's import.
    """
    fallback = time.monotonic() - _IMPORTED
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return fallback
    return age if fallback <= age < fallback + 60.0 else fallback


#: When the running command started (``perf_counter``): set by :func:`start_command`.
_COMMAND_START: float | None = None


def start_command(*, from_process_start: bool) -> float:
    """Mark the start of a command and return it (``perf_counter`` time). Run as the process
    (``netprobe ...``, ``python -m netprobe``), its ``--timeout`` counts from the process's
    start; called in a running program (``main([...])``), from this call."""
    global _COMMAND_START
    now = time.perf_counter()
    _COMMAND_START = now - process_age() if from_process_start else now
    return _COMMAND_START


def command_age() -> float:
    """Seconds since the running command started (the process's age outside a command)."""
    if _COMMAND_START is None:
        return process_age()
    return time.perf_counter() - _COMMAND_START


def time_left(timeout: float) -> float:
    """What is left of a command's ``timeout`` counted from the command's start."""
    return max(_MIN_LEFT_S, timeout - command_age())


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def usage_error(message: str) -> NoReturn:
    """Print one line, ``netprobe: error: ...`` in the command line's words, and exit 2."""
    console(stderr=True).print(
        f"[red]netprobe: error:[/] {escape(cli_words(message))}", markup=True
    )
    sys.exit(EXIT_USAGE)


def cli_words(message: str) -> str:
    """An error about an option, in the command line's words: ``--ca-file``, not
    ``option 'ca_file'`` (the keyword is the library's word for it)."""
    for option in SHARED_OPTIONS:
        flag = option.flag
        message = message.replace(f"option {option.field!r}", flag)
        message = message.replace(f"unknown option {option.field!r}", f"unknown option {flag}")
        if "_" in option.field:
            message = re.sub(rf"\b{option.field}\b", flag, message)
    return message


def usage_words(exc: click.UsageError, args: list[str]) -> str:
    """click's usage error as one line in the user's words, with where to look."""
    command = exc.ctx.command_path if exc.ctx is not None else "netprobe"
    see = f" (see '{command} --help')"
    if isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        for arg in args:
            if arg.startswith(name) and any(c in arg for c in ":/.") and not arg.startswith("--"):
                return (
                    f"{arg!r} starts with '-', so it is read as an option; a target's host "
                    "name cannot start with '-'" + see
                )
        hint = ""
        if exc.possibilities:
            hint = f" (did you mean {' or '.join(sorted(exc.possibilities))}?)"
        return f"no such option {name}{hint}" + ("" if hint else see)
    message = exc.format_message().rstrip(".")
    message = re.sub(r"^Invalid value for '([^']+)': ", r"\1: ", message)
    message = message.replace("is not a valid float", "is not a number")
    message = message.replace("is not a valid integer", "is not a whole number")
    message = re.sub(r"^Missing argument '([^']+)'", r"missing \1", message)
    message = re.sub(r"^Missing option '([^']+)'", r"missing \1", message)
    message = re.sub(
        r"^Got unexpected extra (arguments?) \((.*)\)$", r"unexpected extra \1: \2", message
    )
    if message[:1].isupper() and not message[:2].isupper():
        message = message[0].lower() + message[1:]
    return message + see


_HANGING = re.compile(r"^(\s*(?:\S \w+\s+|[\w.]+: ))")


def print_lines(out: Console, lines: Iterable[str]) -> None:
    """Print rich markup lines. On a terminal each is wrapped at the terminal's width on
    word boundaries, its continuation indented under its text (``hint: ...``, a rung's
    observation): a narrow terminal never cuts a word, an address or a port in the middle.
    Piped, each stays one line (for grep)."""
    if not out.is_terminal:
        for line in lines:
            out.print(line)
        return
    width = max(24, out.width)
    for line in lines:
        text = Text.from_markup(line)
        plain = text.plain
        if len(plain) <= width:
            out.print(text, soft_wrap=True)
            continue
        leading = len(plain) - len(plain.lstrip(" "))
        match = _HANGING.match(plain)
        hang = len(match.group(1)) if match else leading + 2
        if hang > width // 2:
            hang = leading + 2
        for i, (a, b) in enumerate(wrap_offsets(plain, width, width - hang)):
            piece = text[a:b]
            piece.rstrip()
            out.print(piece if i == 0 else Text.assemble(" " * hang, piece), soft_wrap=True)


def wrap_offsets(plain: str, first: int, rest: int) -> list[tuple[int, int]]:
    """Greedy word wrap: the (start, end) of each line of ``plain``, the first at most
    ``first`` characters long, the others ``rest``. Breaks at spaces only; a single word
    longer than a line (a long URL) is folded, the only case where one is cut."""
    out: list[tuple[int, int]] = []
    pos, avail, n = 0, first, len(plain)
    while pos < n:
        if out:
            while pos < n and plain[pos] == " ":
                pos += 1
            if pos >= n:
                break
        end = pos + max(1, avail)
        if end >= n:
            out.append((pos, n))
            break
        cut = plain.rfind(" ", pos, end + 1)
        if cut <= pos or not plain[pos:cut].strip():
            cut = end
        out.append((pos, cut))
        pos, avail = cut, rest
    return out


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
    CliOption("--no-resolver-walk", "resolver_walk", turns_off=True),
    CliOption("--no-icmp", "icmp", turns_off=True),
    CliOption("--no-canary", "canary", turns_off=True),
    CliOption("--no-trace", "trace", turns_off=True),
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
