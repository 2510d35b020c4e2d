"""The command line as a person sees it: in a real terminal (a pty of 60 columns), piped, and
when they make a mistake."""

from __future__ import annotations

import re
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netprobe._cliutil import wrap_offsets
from netprobe.cli import main
from netprobe.testing import SilentPort, closed_port
from nplab.terminal import ANSI, NETPROBE, run_in_terminal, screen_lines


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
