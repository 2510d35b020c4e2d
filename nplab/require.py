"""Skips that are failures in CI: a test that needs root or a binary skips on a laptop with
the reason, and fails under ``CI=true``, where every test must run."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["IN_CI", "require", "require_binary", "require_root"]

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` on a laptop; fail under CI=true, where everything must run."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required under CI=true: {reason}")
    pytest.skip(reason)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root (network namespaces, nftables)")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"needs the {name!r} binary")
    assert path is not None
    return path
