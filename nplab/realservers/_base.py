"""What every real-server harness shares: a private directory, a foreground process (in the
root namespace on loopback, or inside a given network namespace), a bounded wait until it
listens, and a teardown that leaves nothing behind, also when start-up fails half-way."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

from nplab.require import require, require_binary

__all__ = [
    "LoopbackNamespace",
    "RealServer",
    "SilentUdp",
    "SilentUdpServer",
    "StartError",
    "free_port",
    "in_netns",
    "is_root",
    "listening",
    "require_server_binary",
    "started",
]


class StartError(RuntimeError):
    """A real server did not come up; the message carries the tail of its log."""


def is_root() -> bool:
    return os.geteuid() == 0


def require_server_binary(name: str) -> str:
    """The binary's path; skips on a laptop without it and fails under CI=true.

    Debian puts daemons in /usr/sbin, which a non-root PATH often lacks: look there too.
    """
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if os.access(p, os.X_OK)), None
    )
    if path is None:
        return require_binary(name)  # skips or fails with the usual message
    return path


def free_port(host: str = "127.0.0.1", kind: int = socket.SOCK_STREAM) -> int:
    """A port on which nothing listens now (bound by us, then released).

    In a fresh network namespace every port is free: the root namespace's answer serves.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bind_host = host if host.startswith(("127.", "::1")) else "127.0.0.1"
    if family == socket.AF_INET6:
        bind_host = "::1"
    with socket.socket(family, kind) as s:
        s.bind((bind_host, 0))
        port: int = s.getsockname()[1]
    return port


def in_netns(argv: list[str], netns: str | None) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def listening(host: str, port: int, *, udp: bool = False, netns: str | None = None) -> bool:
    """Whether a socket is bound to host:port (TCP: listening), read with ``ss`` in the
    namespace: no packet is sent, so this is safe for lab addresses too."""
    flags = "-Hlun" if udp else "-Hltn"
    out = subprocess.run(
        in_netns(["ss", flags, f"sport = :{port}"], netns),
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    wanted = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return any(
        wanted in line or f"*:{port}" in line or f"0.0.0.0:{port}" in line
        for line in out.splitlines()
    )


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """PR_SET_PDEATHSIG(SIGKILL): a server outlives no test process, even one killed hard
    (the setting survives the execve of ``ip netns exec`` and of the server itself)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _wait_group_gone(pgid: int, timeout: float = 5.0) -> None:
    """Wait (bounded) until no process of the group is left, killed children included."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def _uid_gid(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


class RealServer:
    """Base of every harness: subclasses write their config in ``configure`` and say how to
    run the binary in the foreground in ``argv``.

    Use as a context manager (``with Nginx(...) as web:``) or ``start()`` / ``stop()``.
    ``host`` is 127.0.0.1 by default; with ``netns`` the process runs through
    ``ip netns exec NS`` and ``host`` is an address of that namespace.
    """

    name = "server"
    #: run the process as this user when we are root (None: as root)
    run_as: str | None = None
    start_timeout = 20.0
    #: how stop() asks the server to end (SIGKILL for servers whose orderly shutdown is slow
    #: and whose state lives only in the directory removed afterwards)
    stop_signal: int = signal.SIGTERM

    def __init__(
        self, *, host: str = "127.0.0.1", port: int | None = None, netns: str | None = None
    ) -> None:
        self.host = host
        self.netns = netns
        self.port = port if port is not None else free_port(host)
        self.dir = Path(tempfile.mkdtemp(prefix=f"nplab-{self.name}-"))
        os.chmod(self.dir, 0o755)
        self.proc: subprocess.Popen[bytes] | None = None
        self._stdout: int | None = None

    # ---- to override

    def configure(self) -> None:
        """Write the configuration into ``self.dir``."""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        """Whether the server answers (default: its TCP port listens)."""
        return listening(self.host, self.port, netns=self.netns)

    # ---- shared

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """The file the process's stdout and stderr go to (servers may keep others in dir)."""
        return self.dir / "console.log"

    def log(self) -> str:
        texts = []
        for path in sorted(self.dir.glob("*.log")):
            with contextlib.suppress(OSError):
                texts.append(f"--- {path.name}\n{path.read_text(errors='replace')}")
        return "\n".join(texts)

    def chown_dir(self, user: str) -> None:
        """Give ``self.dir`` (recursively) to ``user``, when we are root."""
        if not is_root():
            return
        uid, gid = _uid_gid(user)
        for root, dirs, files in os.walk(self.dir):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), uid, gid)
        os.chown(self.dir, uid, gid)

    def command(self) -> list[str]:
        argv = self.argv()
        if self.run_as and is_root():
            # setpriv execs the server itself (runuser would stay as its parent).
            argv = ["setpriv", f"--reuid={self.run_as}", f"--regid={self.run_as}",
                    "--init-groups", *argv]  # fmt: skip
        return in_netns(argv, self.netns)

    def start(self) -> Self:
        try:
            self.configure()
            if self.run_as:
                self.chown_dir(self.run_as)
            self._stdout = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._stdout,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends all its children
                cwd=self.dir,
                preexec_fn=_die_with_parent,  # only a prctl: safe in the forked child
            )
            deadline = time.monotonic() + self.start_timeout
            while not self.ready():
                if self.proc.poll() is not None:
                    raise StartError(
                        f"{self.name} exited with {self.proc.returncode}:\n{self.log()[-3000:]}"
                    )
                if time.monotonic() > deadline:
                    raise StartError(
                        f"{self.name} not ready after {self.start_timeout} s:\n{self.log()[-3000:]}"
                    )
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the server's process group (SIGSTOP freezes it, SIGCONT thaws it)."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        """End the whole process group, wait for it, and remove the directory."""
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, self.stop_signal)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=10)
            # Children of the group (nginx workers, squid helpers) may outlive the leader.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            _wait_group_gone(proc.pid)
        if self._stdout is not None:
            os.close(self._stdout)
            self._stdout = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class SilentUdp:
    """A UDP socket on loopback that reads every datagram and never answers (a silent DNS
    server or forwarder). Counts what it read."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self._sock.settimeout(0.1)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="silent-udp", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self._sock.recvfrom(4096)
            except OSError:
                continue
            self.received += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()

    def __enter__(self) -> SilentUdp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SILENT_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    s.recvfrom(4096)
"""


class SilentUdpServer(RealServer):
    """:class:`SilentUdp` as a process, so that it can run inside a namespace (on port 53, as
    glibc's resolver needs): reads every datagram, answers none."""

    name = "silent-udp"

    def argv(self) -> list[str]:
        return [sys.executable, "-c", _SILENT_UDP, self.host, str(self.port)]

    def ready(self) -> bool:
        return listening(self.host, self.port, udp=True, netns=self.netns)


class LoopbackNamespace:
    """A network namespace with only ``lo`` (and whatever the caller adds): servers inside it
    may bind well-known ports (53 for glibc's resolver, which cannot use another) without
    meeting the machine's own services, and nothing in it can reach anything outside.

    ``resolv_conf`` becomes ``/etc/netns/NAME/resolv.conf`` (what ``getaddrinfo`` reads inside
    it); ``hosts`` its hosts file. The name is ``nplab<pid><letter>`` so that the lab's
    ``cleanup_stale()`` removes it after a crash.
    """

    def __init__(
        self, letter: str, *, resolv_conf: str | None = None, hosts: str | None = None
    ) -> None:
        assert len(letter) == 1 and letter.isalpha() and letter not in "cs", letter
        self.name = f"nplab{os.getpid()}{letter}"
        self.resolv_conf = resolv_conf
        self.hosts = hosts

    def start(self) -> LoopbackNamespace:
        require(is_root(), "needs root (network namespaces)")
        require_binary("ip")
        from nplab.topology import cleanup_stale

        cleanup_stale()
        self.stop()
        try:
            subprocess.run(["ip", "netns", "add", self.name], check=True, timeout=10)
            subprocess.run(
                ["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, timeout=10
            )
            etc = Path(f"/etc/netns/{self.name}")
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text(self.resolv_conf or "nameserver 127.0.0.1\n")
            (etc / "hosts").write_text(self.hosts or "127.0.0.1 localhost\n")
            routes = self.run(["ip", "route", "show"]).stdout
            assert "default" not in routes, routes
        except BaseException:
            self.stop()
            raise
        return self

    def run(
        self, argv: list[str], *, timeout: float = 30, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (not checked: read returncode yourself)."""
        return subprocess.run(
            ["ip", "netns", "exec", self.name, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            check=False,
        )

    def stop(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=10)
        shutil.rmtree(f"/etc/netns/{self.name}", ignore_errors=True)

    def __enter__(self) -> LoopbackNamespace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def started(*servers: RealServer) -> Iterator[None]:
    """Start several servers; all are stopped on exit (also when one fails to start)."""
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.enter_context(server)
        yield
