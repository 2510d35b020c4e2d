"""A real ``redis-server`` process on loopback, in a temporary directory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from types import TracebackType
from typing import Self

from ._tcp import closed_port

__all__ = ["RedisServer"]


class RedisServer:
    """A real ``redis-server`` on 127.0.0.1 and a free port, removed on exit.

    Extra server arguments go straight to ``redis-server`` (``"--maxclients", "1"``,
    ``"--requirepass", "pw"``...). Nothing is saved to disk, the log is kept in the
    temporary directory (`log_tail`). ``with RedisServer()`` starts it and waits
    until it answers; leaving the block stops it and removes the directory. `stop`
    and `start` again restart it on the same port: the database going away and
    coming back, as a readiness check sees it.

    Example:
        ```python
        with RedisServer("--maxclients", "1") as redis:
            held = socket.create_connection(("127.0.0.1", redis.port))  # takes the one slot
            held.sendall(b"PING\\r\\n"); held.recv(64)
            report = await netprobe.diagnose(f"redis://{redis.address}")
            assert report.fault.code == "db.too_many_connections"
        ```

    Args:
        *args: extra ``redis-server`` arguments.
        binary: the server binary; default: ``redis-server`` on ``PATH``.
        startup_timeout: how long `start` waits for the server to answer, seconds.

    Raises:
        FileNotFoundError: no ``redis-server`` binary (``apt install redis-server``).
    """

    def __init__(self, *args: str, binary: str | None = None, startup_timeout: float = 5.0) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError(
                "redis-server is not installed (Debian/Ubuntu: apt install redis-server)"
            )
        self.binary = found
        self.port = closed_port()
        self.dir = tempfile.mkdtemp(prefix="netprobe-redis-")
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None
        self._startup_timeout = startup_timeout

    @staticmethod
    def available() -> bool:
        """True when a ``redis-server`` binary is on ``PATH``."""
        return shutil.which("redis-server") is not None

    @property
    def address(self) -> str:
        """``127.0.0.1:port``."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the server and wait until it answers (at most ``startup_timeout``).

        Raises:
            RuntimeError: the server exited (its log is in the message) or never answered.
        """
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
                self.proc = None
                raise RuntimeError(f"redis-server exited: {self.log_tail()}")
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
        """Send one command on a fresh connection (after ``AUTH`` if given); the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
            if password is not None:
                s.sendall(_resp("AUTH", password))
                s.recv(1024)
            s.sendall(_resp(*args))
            return s.recv(65536)

    def log_tail(self) -> str:
        """The last 2,000 characters of the server's log."""
        try:
            with open(os.path.join(self.dir, "redis.log"), encoding="utf-8", errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s); `start` restarts it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _resp(*args: str) -> bytes:
    """A command as a RESP array of bulk strings (the Redis protocol's request form)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)
