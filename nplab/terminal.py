"""A terminal for tests and screenshots: run ``netprobe`` on a pty of a given size, and
replay what it drew as the lines that stay on the screen."""

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
