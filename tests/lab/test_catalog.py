"""The fault catalog (docs/catalog.md) is what the lab shows today, for every code.

``scripts/gen_catalog.py --check`` rebuilds every scenario in the namespace lab, runs the
real CLI for each from the client namespace, fails when a verdict is not the scenario's code,
and compares the page with the committed one (volatile parts aside). Needs root, iproute2,
nftables and /dev/net/tun (skips on a laptop, fails under CI=true).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netprobe.report import FAULT_CODES, WARNING_CODES
from nplab.require import require, require_binary, require_root

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "catalog.md"


def test_every_code_has_a_section_with_real_output() -> None:
    text = PAGE.read_text()
    sections = dict(
        re.findall(r'<a id="([a-z0-9_.]+)"></a>\n\n### `[^`]+`\n(.*?)(?=<a id=|\Z)', text, re.S)
    )
    for code in [*FAULT_CODES, *WARNING_CODES]:
        assert code in sections, f"docs/catalog.md has no section for {code}"
        body = sections[code]
        assert "```text" in body and "```json" in body, f"{code}: no lab output in its section"
        assert f'"code": "{code}"' in body, f"{code}: its JSON excerpt does not show the code"
    assert set(sections) == {*FAULT_CODES, *WARNING_CODES}, "sections for unknown codes"


@pytest.mark.lab
def test_catalog_is_up_to_date() -> None:
    require_root()
    require_binary("ip")
    require_binary("nft")
    require_binary("prlimit")
    require(os.path.exists("/dev/net/tun"), "needs /dev/net/tun for the delay line")
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_catalog.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-20000:]
