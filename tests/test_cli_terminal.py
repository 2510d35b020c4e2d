"""The command line as a person sees it: in a real terminal (a pty of 60 columns), piped, and
when they make a mistake."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netprobe._cliutil import wrap_offsets
from netprobe.cli import main
from netprobe.testing import SilentPort, closed_port

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
NETPROBE = [sys.executable, "-m", "netprobe"]


def run_in_terminal(
    args: list[str], *, columns: int = 60, rows: int = 40, timeout: float = 30
) -> tuple[int, str]:
    """Run ``netprobe ARGS`` with a pty of ``columns`` x ``rows`` as its terminal (stdin,
    stdout and stderr); returns the exit code and everything it drew, raw."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm-256color"
    proc = subprocess.Popen(
        [*NETPROBE, *args], stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True
    )
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed its end
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")


def screen_lines(raw: str) -> list[str]:
    """What stays on the screen: a small terminal (newline, carriage return, cursor up,
    erase line; colours ignored), so that the live line, drawn and then erased in place,
    leaves nothing, as on a real terminal."""
    lines, row, col = [""], 0, 0
    for tok in re.split(r"(\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r|\n)", raw):
        if tok == "\n":
            row, col = row + 1, 0
            lines.extend([""] * (row + 1 - len(lines)))
        elif tok == "\r":
            col = 0
        elif tok.startswith("\x1b["):
            if tok.endswith("A"):
                row = max(0, row - int(tok[2:-1] or 1))
            elif tok == "\x1b[2K":
                lines[row] = ""
        elif tok and not tok.startswith("\x1b"):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + tok + line[col + len(tok) :]
            col += len(tok)
    return lines


def tokens(text: str) -> list[str]:
    """The words of a text, every duration (which differs from run to run) as ``N``."""
    text = re.sub(r"\d+\.\d+", "N", text)
    return [t for line in text.splitlines() for t in line.split()]


@pytest.fixture(scope="module")
def refused() -> int:
    return closed_port()


# -- Narrow terminals ------------------------------------------------------------------------


def test_a_60_column_terminal_cuts_no_word_and_no_port(refused: int) -> None:
    target = f"127.0.0.1:{refused}"
    code, raw = run_in_terminal(["diagnose", target, "--no-icmp"])
    assert code == 1, raw
    lines = [line for line in screen_lines(raw) if line.strip()]
    assert all(len(line) <= 60 for line in lines), [line for line in lines if len(line) > 60]
    piped = subprocess.run(
        [*NETPROBE, "diagnose", target, "--no-icmp"], capture_output=True, text=True, timeout=30
    )
    # Every word of the report (the port in every address included) is whole on the screen:
    # the same words as piped, where no line is wrapped at all.
    shown = tokens("\n".join(lines))
    assert sorted(shown) == sorted(tokens(piped.stdout)), "a word was cut"
    assert any(len(line) > 60 for line in piped.stdout.splitlines())  # the test wraps lines
    # The continuation of a hint is indented under its text.
    hint = next(i for i, line in enumerate(lines) if line.startswith("  hint: "))
    assert lines[hint + 1].startswith(" " * 8) and lines[hint + 1][8] != " "


def test_the_wait_table_shows_every_port_at_60_columns(refused: int) -> None:
    long_target = f"https://127.0.0.2:{refused}/health/ready/with/a/rather/long/path"
    code, raw = run_in_terminal(
        ["wait", f"postgresql://127.0.0.1:{refused}", long_target, "--timeout", "1.5"]
    )
    assert code == 1
    # The live table, as drawn (it is erased when the diagnoses are printed).
    table = [line for line in ANSI.sub("", raw).split("\n") if line.startswith("│")]
    assert table, raw
    assert any(f"│ 127.0.0.1:{refused} " in line for line in table)
    assert any(f"│ 127.0.0.2:{refused} " in line for line in table)
    assert all(len(line) <= 60 for line in table)


# -- Live progress ---------------------------------------------------------------------------


def test_diagnose_shows_the_rung_in_flight_on_a_terminal(silent_port: SilentPort) -> None:
    args = ["diagnose", f"127.0.0.1:{silent_port.port}", "--no-icmp", "--connect-timeout", "1.5"]
    code, raw = run_in_terminal(args)
    assert code == 1
    live = [s for s in re.split(r"[\r\n]", ANSI.sub("", raw.replace("\r", "\n"))) if "·" in s]
    assert any("connecting" in s and f"127.0.0.1:{silent_port.port}" in s for s in live), raw
    elapsed = [float(m) for s in live for m in re.findall(r"(\d+\.\d) s ·", s)]
    assert elapsed and max(elapsed) >= 1.0  # it counted while waiting
    # Then the report replaces it.
    assert "FAULT l4.filtered" in ANSI.sub("", raw)


def test_piped_output_is_plain(silent_port: SilentPort) -> None:
    out = subprocess.run(
        [
            *NETPROBE,
            "diagnose",
            f"127.0.0.1:{silent_port.port}",
            "--no-icmp",
            "--connect-timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1
    assert "connecting" not in out.stderr and "\x1b" not in out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == f"tcp://127.0.0.1:{silent_port.port}  (tcp)"


# -- Mistakes: one line, in the command line's words ------------------------------------------


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["diagnose", "127.0.0.1:1", "--ca-file", "/nonexistent"],
            "--ca-file: '/nonexistent' is not a readable file",
        ),
        (
            ["diagnose", "127.0.0.1:1", "--connect-timeout", "-1"],
            "--connect-timeout: must be greater than 0 (got -1.0)",
        ),
        (
            ["diagnose", "127.0.0.1:1", "--client-key", "/etc/hostname"],
            "--client-key: needs --client-cert",
        ),
        (
            ["diagnose", "127.0.0.1:1", "--bogus"],
            "no such option --bogus (did you mean --verbose?)",
        ),
        (
            ["diagnose", "-db:5432"],
            "'-db:5432' starts with '-', so it is read as an option; a target's host name "
            "cannot start with '-' (see 'netprobe diagnose --help')",
        ),
        (["diagnose"], "missing TARGET (see 'netprobe diagnose --help')"),
        (
            ["diagnose", "x:1", "--timeout", "abc"],
            "--timeout: 'abc' is not a number (see 'netprobe diagnose --help')",
        ),
        (
            ["diagnose", "x:1", "y:2"],
            "unexpected extra argument: y:2 (see 'netprobe diagnose --help')",
        ),
        (["bogus"], "no such command 'bogus' (see 'netprobe --help')"),
        (
            ["wait", "127.0.0.1:5432", "echo", "hi"],
            "'echo' is not a target: to run a command once the targets are ready, put -- "
            "before it: netprobe wait 127.0.0.1:5432 -- echo hi",
        ),
        (["diagnose", "127.0.0.1:99999"], "port 99999 is out of range in '127.0.0.1:99999'"),
    ],
)
def test_mistakes_are_one_line_in_the_users_words(
    args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith("netprobe: error: ") and line in err, err
    for pydantic in ("Input should", "Value error", "validation error", "Usage:", "Traceback"):
        assert pydantic not in err
    assert "option '" not in err  # the keyword, not the flag


def test_help_and_version_still_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--help"], ["diagnose", "--help"], ["--version"]):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 0
    assert "Usage: netprobe diagnose" in capsys.readouterr().out


# -- The wrapping itself ---------------------------------------------------------------------

WORDS = st.lists(
    st.text(alphabet="abc:.0123456789-/", min_size=1, max_size=12), min_size=1, max_size=30
)


@given(WORDS, st.integers(min_value=12, max_value=80), st.integers(min_value=12, max_value=80))
def test_wrapping_keeps_every_word_whole(words: list[str], first: int, rest: int) -> None:
    plain = " ".join(words)
    pieces = [plain[a:b] for a, b in wrap_offsets(plain, first, rest)]
    assert "\n".join(pieces).split() == words  # no word split (none is longer), none lost
    for i, piece in enumerate(pieces):
        limit = first if i == 0 else rest
        assert len(piece.rstrip()) <= limit or " " not in piece.strip()


def test_a_word_longer_than_the_line_is_folded() -> None:
    plain = "see https://example.invalid/a/very/long/path/that/does/not/fit ok"
    pieces = [plain[a:b] for a, b in wrap_offsets(plain, 20, 20)]
    assert all(len(p) <= 20 for p in pieces)
    assert "".join(p.strip() for p in pieces) == plain.replace(" ", "")
