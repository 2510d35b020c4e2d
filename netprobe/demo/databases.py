"""A real redis-server on loopback for `netprobe demo` (and the tests): no root, no network.

The demo case starts redis-server (when installed) with ``maxclients 1``, fills that one
slot with a real client, and lets netprobe find ``db.too_many_connections``: the server
itself pushes ``-ERR max number of clients reached``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import TYPE_CHECKING

from .servers import closed_port

if TYPE_CHECKING:
    from . import DemoCase

__all__ = ["RedisServer", "database_cases"]


class RedisServer:
    """``redis-server`` in a temporary directory, on 127.0.0.1 and a free port."""

    def __init__(self, *args: str, binary: str | None = None, startup_timeout: float = 5.0) -> None:
        self.binary = binary or shutil.which("redis-server") or "redis-server"
        self.port = closed_port()
        self.dir = tempfile.mkdtemp(prefix="netprobe-redis-")
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self._startup_timeout = startup_timeout

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        cmd = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", self.dir,
            "--logfile", os.path.join(self.dir, "redis.log"),
            *self.args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log_tail()
                self.stop()
                raise RuntimeError(f"redis-server exited: {log}")
            if self._answers():
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("redis-server did not start in time")

    def _answers(self) -> bool:
        # QUIT and read until EOF: the server has freed this client before we return, so a
        # test that fills maxclients right after start() finds every slot free.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"QUIT\r\n")
                while s.recv(64):
                    pass
        except OSError:
            return False
        return True

    def command(self, *args: str, password: str | None = None) -> bytes:
        """Send one command on a fresh connection; returns the raw reply."""
        from ..protocols.redis import build_command

        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
            if password is not None:
                s.sendall(build_command("AUTH", password))
                s.recv(1024)
            s.sendall(build_command(*args))
            return s.recv(65536)

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def database_cases(stack: contextlib.ExitStack) -> list[DemoCase]:
    """Demo cases: a real redis-server whose only client slot is taken (if installed)."""
    from . import DemoCase

    if shutil.which("redis-server") is None:
        return []
    full = stack.enter_context(RedisServer("--maxclients", "1"))
    ok = stack.enter_context(RedisServer())
    holder = socket.create_connection(("127.0.0.1", full.port), timeout=2.0)
    stack.callback(holder.close)
    holder.sendall(b"PING\r\n")
    holder.recv(64)  # the slot is now a real, registered client
    return [
        DemoCase("a real redis-server (loopback)", f"redis://{ok.address}", None),
        DemoCase(
            "a real redis-server with maxclients 1, its slot taken",
            f"redis://{full.address}",
            "db.too_many_connections",
        ),
    ]
