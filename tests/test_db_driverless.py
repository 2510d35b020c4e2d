"""A credentialed database target without its login driver (issue 11).

Installed as a service installs it (``pip install netprobe-sdk``, no extras), a DSN with
credentials used to report the greeting alone: HEALTHY, exit 0, for wrong credentials. A check
the user asked for that cannot run is bad input instead: ``InvalidOption`` before any I/O,
naming the install command; exit 2 in the CLI.

The tests run in a real virtual environment holding netprobe and its base dependencies only
(linked from this one, nothing downloaded): the drivers are absent from its ``sys.path``, as
after ``pip install netprobe-sdk``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

DIST = "netprobe-sdk"
DRIVERS = {"mysql": ("asyncmy", "mysql"), "postgresql": ("asyncpg", "postgres"),
           "redis": ("redis", "redis")}  # fmt: skip


def _base_closure() -> list[metadata.Distribution]:
    """netprobe-sdk and what it requires without any extra, transitively."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [DIST]
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        dist = metadata.distribution(name)
        seen[key] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(seen.values())


def make_bare_venv(root: Path) -> Path:
    """A venv in ``root`` with netprobe-sdk and its base dependencies (symlinked), no extra;
    its python."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=60
    )
    site = root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = site / "site-packages"
    assert site.is_dir()
    names = set()
    for dist in _base_closure():
        base = Path(str(dist.locate_file("")))
        for f in dist.files or []:
            top = Path(f).parts[0]
            if top in names or top == ".." or top.endswith("__pycache__"):
                continue
            src = base / top
            if src.exists():
                names.add(top)
                (site / top).symlink_to(src)
    for module in ("asyncmy", "asyncpg", "redis"):
        assert module not in {n.split(".")[0] for n in names}, f"{module} is a base dependency?"
    return root / "bin" / "python"


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bare_venv(tmp_path_factory.mktemp("bare-venv"))


def run(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, timeout=120, cwd="/"
    )


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that counts connections: any would be I/O the check made."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    s.setblocking(False)
    try:
        yield s
    finally:
        s.close()


def accepted(s: socket.socket) -> int:
    n = 0
    while True:
        try:
            conn, _ = s.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


def test_the_venv_really_lacks_the_drivers(bare_python: Path) -> None:
    out = run(bare_python, "-c", "import netprobe, anyio, httpx, pydantic; import asyncmy")
    assert out.returncode == 1 and "No module named 'asyncmy'" in out.stderr, out.stderr
    for module in ("asyncpg", "redis"):
        assert "No module named" in run(bare_python, "-c", f"import {module}").stderr


@pytest.mark.parametrize("proto", sorted(DRIVERS))
def test_cli_credentials_without_driver_is_an_option_error(
    bare_python: Path, listener: socket.socket, proto: str
) -> None:
    module, extra = DRIVERS[proto]
    port = listener.getsockname()[1]
    target = f"{proto}://root:wrong@127.0.0.1:{port}/"
    if proto == "redis":
        target = f"redis://:wrong@127.0.0.1:{port}/0"
    out = run(bare_python, "-m", "netprobe", "diagnose", target, "--timeout", "3")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert f"pip install 'netprobe-sdk[{extra}]'" in lines[0] and module in lines[0], lines[0]
    assert "wrong" not in out.stderr  # the password is never printed
    assert "HEALTHY" not in out.stdout and "Traceback" not in out.stderr
    assert accepted(listener) == 0  # before any I/O


def test_cli_json_and_wait_and_pool_refuse_too(bare_python: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    target = f"mysql://root:wrong@127.0.0.1:{port}/"
    for args in (
        ("diagnose", "--json", target),
        ("wait", "--timeout", "2", target),
        ("pool", target, "--size", "2"),
    ):
        out = run(bare_python, "-m", "netprobe", *args)
        assert out.returncode == 2, (args, out.returncode, out.stdout, out.stderr)
        assert "pip install 'netprobe-sdk[mysql]'" in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert accepted(listener) == 0


def test_api_raises_invalid_option_before_io(bare_python: Path, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    code = textwrap.dedent(
        f"""
        import anyio, netprobe
        from netprobe.health import HealthChecker

        calls = [
            lambda: netprobe.diagnose("postgresql://app:wrong@127.0.0.1:{port}/app"),
            lambda: netprobe.diagnose_many(["redis://:pw@127.0.0.1:{port}"]),
            lambda: netprobe.probe_pool("mysql://root:wrong@127.0.0.1:{port}/", size=2),
            lambda: netprobe.wait_until_ready("mysql://root@127.0.0.1:{port}/", timeout=2),
        ]
        for call in calls:
            try:
                anyio.run(call)
            except netprobe.InvalidOption as exc:
                print("refused:", exc)
            else:
                print("RAN")
        try:
            HealthChecker(["postgresql://app:pw@127.0.0.1:{port}/app"])
        except netprobe.InvalidOption as exc:
            print("refused:", exc)
        # Without credentials the check is the greeting: no driver needed.
        report = anyio.run(lambda: netprobe.diagnose(
            "redis://127.0.0.1:{port}", icmp=False, timeout=1, read_timeout=0.3))
        print("greeting-only:", report.fault.code if report.fault else "ok")
        """
    )
    out = run(bare_python, "-c", code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 6, out.stdout
    refused = lines[:5]
    assert all(line.startswith("refused:") for line in refused), out.stdout
    assert "netprobe-sdk[postgres]" in refused[0] and "netprobe-sdk[redis]" in refused[1]
    assert "netprobe-sdk[mysql]" in refused[2] and "netprobe-sdk[mysql]" in refused[3]
    assert "netprobe-sdk[postgres]" in refused[4]
    # The greeting-only diagnosis did connect (the only connection of the test).
    assert lines[5].startswith("greeting-only:"), out.stdout
    assert accepted(listener) == 1


def test_a_driver_that_fails_to_import_is_an_option_error(
    tmp_path: Path, listener: socket.socket
) -> None:
    """Installed but broken (here: a driver whose import fails as one missing its shared
    library does): the login could never run, so the check is refused like a missing
    driver, never left to read 'unavailable' and healthy."""
    python = make_bare_venv(tmp_path / "venv")
    site = next((tmp_path / "venv" / "lib").glob("python*/site-packages"))
    (site / "asyncmy").mkdir()
    (site / "asyncmy" / "__init__.py").write_text(
        "raise ImportError('libmariadb.so.3: cannot open shared object file')\n"
    )
    port = listener.getsockname()[1]
    out = run(python, "-m", "netprobe", "diagnose", f"mysql://root:pw@127.0.0.1:{port}/")
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "fails to import" in lines[0], out.stderr
    assert "libmariadb.so.3" in lines[0] and "netprobe-sdk[mysql]" in lines[0], lines[0]
    assert "HEALTHY" not in out.stdout and "Traceback" not in out.stderr
    assert accepted(listener) == 0
