"""libfaketime: run one child process (the netprobe CLI, a Python snippet) with its clock
shifted, and only that process: the rest of the machine, and the servers the test talks to,
keep the real time.

    out = run_shifted(["netprobe", "diagnose", url, "--json"], "+400d")

The shift is libfaketime's ``FAKETIME`` syntax: ``"+400d"``, ``"-2h"`` (relative, the clock
keeps running) or ``"@2030-01-01 00:00:00"`` (absolute start). ``FAKETIME_DONT_FAKE_MONOTONIC``
keeps the monotonic clock real, so that timeouts and asyncio's loop are not affected: only
the wall clock (``time()``, ``gettimeofday``, ``clock_gettime(CLOCK_REALTIME)``, what
certificate verification reads) moves.
"""

from __future__ import annotations

import datetime
import glob
import os
import subprocess

from nplab.require import require

__all__ = ["faketime_env", "libfaketime", "run_shifted"]


def libfaketime() -> str:
    """The path of libfaketime.so.1 (skip on a laptop without it, fail under CI=true)."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1")) + sorted(
        glob.glob("/usr/lib/faketime/libfaketime.so.1")
    )
    require(bool(found), "needs libfaketime (Debian package faketime)")
    return found[0]


def _spec(shift: str | datetime.timedelta) -> str:
    if isinstance(shift, datetime.timedelta):
        seconds = int(shift.total_seconds())
        return f"{seconds:+d}"
    return shift


def faketime_env(
    shift: str | datetime.timedelta, base: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment that runs a dynamically linked child with its wall clock shifted."""
    env = dict(os.environ if base is None else base)
    preload = libfaketime()
    env["LD_PRELOAD"] = f"{preload} {env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else preload
    env["FAKETIME"] = _spec(shift)
    env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    env["FAKETIME_NO_CACHE"] = "1"
    return env


def run_shifted(
    argv: list[str],
    shift: str | datetime.timedelta,
    *,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with its clock shifted by ``shift``; returns its completed process (not
    checked: read ``returncode``)."""
    return subprocess.run(
        argv,
        env=faketime_env(shift, env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
