"""Lost SYNs, proved (issue 13): the kernel's retransmission count (TCP_INFO), read right
after connect, says a SYN was lost; the pool probe counts the connects that needed one.

The lab's delay line drops the first SYN of every flow (nplab/delayline.py). Needs root.
"""

from __future__ import annotations

import subprocess

import pytest

from netprobe.render import render_ladder
from netprobe.report import PoolReport, Report
from netprobe.steps import TcpStep
from nplab.topology import PY, ROOT, Lab

pytestmark = pytest.mark.lab


def test_a_dropped_syn_is_counted_by_the_kernel(lab: Lab) -> None:
    server = lab.add_delay_line(drop_first_syn=True)
    report = Report.model_validate(lab.run(f"tcp://{server}:80", {"icmp": False})["report"])
    assert report.ok, render_ladder(report)
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].syn_retransmits is not None
    assert tcp.attempts[0].syn_retransmits >= 1
    (w,) = [w for w in report.warnings if w.code == "tcp.syn_retransmitted"]
    assert "TCP_INFO tcpi_total_retrans" in w.message


def test_no_lost_syn_no_count(lab: Lab) -> None:
    server = lab.add_delay_line(delay_ms=20.0)
    report = Report.model_validate(lab.run(f"tcp://{server}:80", {"icmp": False})["report"])
    tcp = report.step(TcpStep)
    assert tcp is not None and tcp.attempts[0].syn_retransmits == 0
    assert "tcp.syn_retransmitted" not in report.warning_codes()


_POOL = """
import sys, anyio
from netprobe import probe_pool
report = anyio.run(lambda: probe_pool(sys.argv[1], size=4, icmp=False))
print(report.model_dump_json())
"""


def test_the_pool_counts_connects_that_needed_a_retransmitted_syn(lab: Lab) -> None:
    server = lab.add_delay_line(drop_first_syn=True)
    out = subprocess.run(
        ["ip", "netns", "exec", lab.client, PY, "-c", _POOL, f"tcp://{server}:80"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    report = PoolReport.model_validate_json(out.stdout.strip().splitlines()[-1])
    assert report.opened == 4, report.summary
    assert report.syn_retransmitted == 4
    assert "4 of 4 connects needed a retransmitted SYN" in report.summary
