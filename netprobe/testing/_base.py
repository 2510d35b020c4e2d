"""What every fixture server shares: the loopback rule, the address, the worker threads."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from typing import ClassVar

__all__ = ["ThreadedServer", "family_of", "format_address"]


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ThreadedServer:
    """Base of the fixture servers: loopback only, worker threads tracked and joined."""

    #: Fixture servers listen on loopback only. The namespace lab (nplab) overrides this in
    #: a subclass to serve a lab address from inside its own network namespace.
    _loopback_only: ClassVar[bool] = True

    host: str
    port: int

    @classmethod
    def _check_host(cls, host: str) -> None:
        if not cls._loopback_only:
            return
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(
                f"{cls.__name__} listens on loopback only (127.0.0.0/8 or ::1), not {host!r}"
            )

    @property
    def address(self) -> str:
        """``host:port`` (``[::1]:port`` for IPv6), ready to put in a target."""
        return format_address(self.host, self.port)

    def _init_workers(self) -> None:
        self._workers: list[threading.Thread] = []
        self._workers_lock = threading.Lock()

    def _start_worker(self, target: Callable[..., None], *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        with self._workers_lock:
            # Finished workers are dropped as new ones start: a long soak keeps no history.
            self._workers = [w for w in self._workers if w.is_alive()]
            self._workers.append(t)
        t.start()

    def _join_workers(self, timeout: float) -> None:
        with self._workers_lock:
            workers = list(self._workers)
        for t in workers:
            t.join(timeout)
