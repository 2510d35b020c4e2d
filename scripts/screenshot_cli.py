"""Screenshots of ``netprobe diagnose`` in a 60-column terminal, for the docs.

Runs the real CLI on a pty of 60 columns (as ``tests/test_cli_terminal.py`` does) against
loopback servers of ``netprobe.testing`` (a refused port, a TLS server with an expired
certificate), keeps what stays on the screen, and renders it with Debian's chromium
(headless) into ``docs/img/cli-60-columns-*.png``. Loopback only, no root.

    .venv/bin/python scripts/screenshot_cli.py
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from netprobe.testing import CertBook, L7Server, closed_port
from nplab.terminal import run_in_terminal, screen_lines

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
COLUMNS = 60
CHAR_W, LINE_H, PAD = 9.6, 20, 16  # px of the 16 px DejaVu Sans Mono used below

PAGE = """<!doctype html><meta charset="utf-8"><style>
body {{ margin: 0; background: #1e1e1e; }}
pre {{ margin: 0; padding: {pad}px; color: #e6e6e6; font: 16px/{line}px 'DejaVu Sans Mono',
      monospace; white-space: pre; }}
.title {{ color: #8ab4f8; }}
</style><pre><span class="title">{title}</span>
{body}</pre>"""


def shoot(name: str, args: list[str]) -> Path:
    """Run ``netprobe ARGS`` in a 60-column pty and save what stays on the screen."""
    code, raw = run_in_terminal(args, columns=COLUMNS, rows=60)
    lines = screen_lines(raw)
    while lines and not lines[-1].strip():
        lines.pop()
    too_wide = [line for line in lines if len(line) > COLUMNS]
    if too_wide:
        raise SystemExit(f"screenshot_cli: a line wider than {COLUMNS} columns: {too_wide[0]!r}")
    title = f"$ netprobe {' '.join(args)}    (exit {code}, {COLUMNS} columns)"
    page = PAGE.format(
        pad=PAD,
        line=LINE_H,
        title=html.escape(title[:COLUMNS] + ("…" if len(title) > COLUMNS else "")),
        body=html.escape("\n".join(lines)),
    )
    width = int(COLUMNS * CHAR_W + 2 * PAD) + 4
    height = (len(lines) + 1) * LINE_H + 2 * PAD
    out = OUT / f"cli-60-columns-{name}.png"
    with tempfile.TemporaryDirectory(prefix="netprobe-shot-") as tmp:
        page_file = Path(tmp) / "page.html"
        page_file.write_text(page)
        subprocess.run(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={tmp}/profile",
                f"--window-size={width},{height}",
                f"--screenshot={out}",
                page_file.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return out


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("screenshot_cli: no chromium (Debian package chromium)")


def main() -> int:
    shots = [shoot("refused", ["diagnose", f"127.0.0.1:{closed_port()}", "--no-icmp"])]
    with (
        CertBook() as book,
        L7Server("tls", ssl_context=book.server_context("expired")) as server,
    ):
        url = f"https://localhost:{server.port}/health"
        shots.append(shoot("expired", ["diagnose", url, "--ca-file", book.ca_file, "--no-icmp"]))
    for shot in shots:
        print(f"screenshot_cli: wrote {shot.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
