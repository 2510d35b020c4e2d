"""The distribution is ``netprobe-sdk`` (issue 17): ``netprobe`` on the package index is an
unrelated project, so an install command naming it installs someone else's code. Every install
command and runtime message in the tree names ``netprobe-sdk``, and every extra they name
exists."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import netprobe

ROOT = Path(__file__).resolve().parent.parent
DIST = "netprobe-sdk"
SEARCHED = ("netprobe", "nplab", "docs", "examples", "scripts", "benchmarks", "README.md")
SUFFIXES = {".py", ".md", ".txt", ".toml", ".yml", ".yaml", ".json", ".html", ""}

# `pip install netprobe`, `pip install netprobe[x]`, `pip install 'netprobe[x]'`, and the
# extras written alone in prose: `netprobe[postgres]`.
WRONG_INSTALL = re.compile(r"pip install\s+['\"]?netprobe(?![-\w])")
WRONG_EXTRA = re.compile(r"(?<![-\w/])netprobe\[")
NAMED_EXTRA = re.compile(r"netprobe-sdk\[([a-z0-9_,-]+)\]")


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _files() -> list[Path]:
    out: list[Path] = []
    for name in SEARCHED:
        path = ROOT / name
        if path.is_file():
            out.append(path)
            continue
        for f in sorted(path.rglob("*")):
            if f.is_file() and f.suffix in SUFFIXES and "__pycache__" not in f.parts:
                out.append(f)
    return out


def test_the_distribution_is_netprobe_sdk() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["name"] == DIST
    assert project["scripts"] == {"netprobe": "netprobe.cli:main"}
    assert metadata.version(DIST) == netprobe.__version__


def test_no_install_command_names_the_other_project() -> None:
    found = []
    for f in _files():
        text = f.read_text(errors="replace")
        for rx in (WRONG_INSTALL, WRONG_EXTRA):
            for m in rx.finditer(text):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{f.relative_to(ROOT)}:{line}: {m.group(0)}")
    assert found == [], "install commands must name netprobe-sdk:\n" + "\n".join(found)


def test_every_extra_named_exists() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    extras = set(project["optional-dependencies"])
    named: set[str] = set()
    for f in _files():
        for m in NAMED_EXTRA.finditer(f.read_text(errors="replace")):
            named.update(m.group(1).split(","))
    assert named, "no install command found: the search is broken"
    assert named <= extras, f"extras named but not defined: {sorted(named - extras)}"


@pytest.mark.parametrize(
    "text",
    ["pip install netprobe", "pip install 'netprobe[mysql]'", "pip install netprobe[otel]"],
)
def test_the_check_catches_the_old_name(text: str) -> None:
    assert WRONG_INSTALL.search(text)
    assert not WRONG_INSTALL.search(text.replace("netprobe", DIST))
    assert not WRONG_EXTRA.search(text.replace("netprobe", DIST))


def test_version_names_the_installed_distribution() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "netprobe", "--version"], capture_output=True, text=True, check=True
    )
    assert netprobe.__version__ in out.stdout
