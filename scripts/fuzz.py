"""Run tests/test_fuzz.py with N examples per property and print examples and wall time.

Usage: ``scripts/fuzz [N] [pytest args...]`` (N defaults to 100000). The table is markdown,
ready for benchmarks/RESULTS-fuzz.md.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from typing import Any

import pytest


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float]] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call":
            name = report.nodeid.split("::", 1)[-1]
            self.rows.append((name, report.outcome, report.duration))


def main(argv: list[str]) -> int:
    examples = int(argv[0]) if argv and argv[0].isdigit() else 100_000
    extra = argv[1:] if argv and argv[0].isdigit() else argv
    os.environ["NETPROBE_FUZZ"] = str(examples)
    recorder = _Recorder()
    start = time.perf_counter()
    code = pytest.main(
        ["-q", "-p", "no:cacheprovider", "tests/test_fuzz.py", *extra], plugins=[recorder]
    )
    wall = time.perf_counter() - start
    module = sys.modules.get("test_fuzz") or sys.modules.get("tests.test_fuzz")
    counts = getattr(module, "COUNTS", {})
    print(f"\nNETPROBE_FUZZ={examples}, Python {platform.python_version()}, {wall:.0f} s in all\n")
    print("| property | examples run | wall time (s) | outcome |")
    print("|---|---:|---:|---|")
    for name, outcome, duration in recorder.rows:
        key = _count_key(name)
        ran = counts.get(key, "") if key else ""
        print(f"| {name} | {ran} | {duration:.1f} | {outcome} |")
    return int(code)


def _count_key(name: str) -> str | None:
    # Node ids: test_mysql_parsers[mysql.parse_greeting] -> COUNTS key mysql.parse_greeting.
    if "[" in name:
        return name[name.index("[") + 1 : -1]
    return {
        "test_mysql_split_packet": "mysql.split_packet",
        "test_redis_parse_reply": "redis.parse_reply",
        "test_redis_info_field": "redis.info_field",
        "test_sniff_describers": "sniff.describe_bytes",
        "test_x509_describe_chain": "x509.describe_chain",
        "test_target_grammar": "target.parse_target",
        "test_target_never_shows_the_password": "target.password_hidden",
    }.get(name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
