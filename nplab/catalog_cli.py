"""The netprobe CLI, run in this process after building local state: ``catalog_cli.py PRE ARGS``.

For the catalog's ``local.*`` scenarios, the state lives in the diagnosing process itself
(its file descriptor table) or in its network namespace (CLOSE_WAIT / TIME_WAIT sockets), so
it is built here, in the client namespace, and then the real CLI (``netprobe.cli.main``) runs
in the same process with ``ARGS`` (e.g. ``diagnose tcp://198.18.0.10:80 --json``).

Every other scenario runs through here too, with PRE ``{}``: the CLI's imports are done before
``main(ARGS)`` is called, so its ``--timeout`` counts from the call, not from a process start
slowed by a dozen others starting at once (the page shows verdicts).

PRE is the scenario's ``pre`` as JSON. The keys of ``nplab/runner.py`` (``close_wait``,
``time_wait``, ``fds``) work as there; one more:

``fd_exhaustion``: true: the soft fd limit is lowered to 64 and, right before the first TCP
socket is created, the fd table is filled up to it (a leak at the worst
moment, as in an application that leaks a descriptor per request): that ``socket()`` fails
with EMFILE from the kernel. The filler descriptors are released at the next file ``open``
(an import, /proc), so that the CLI can go on and print its verdict.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
from typing import Any

from netprobe.cli import main as cli_main
from nplab.runner import prepare

FD_LIMIT = 64


def _exhaust_fds_at_first_socket() -> None:
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (FD_LIMIT, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    )
    fillers: list[int] = []
    state = {"armed": True, "busy": False}

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if state["busy"]:  # our own os.open below raises "open" too
            return
        if event == "socket.__new__" and state["armed"]:
            _sock, family, kind, _proto = args
            if family in (socket.AF_INET, socket.AF_INET6) and kind & 0xF == socket.SOCK_STREAM:
                state["armed"] = False
                state["busy"] = True
                try:
                    for _ in range(FD_LIMIT):
                        fillers.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    pass
                finally:
                    state["busy"] = False
        elif event == "open" and fillers:
            while fillers:
                os.close(fillers.pop())

    sys.addaudithook(hook)


def main() -> None:
    pre: dict[str, Any] = json.loads(sys.argv[1])
    keep: list[Any] = []
    prepare({k: v for k, v in pre.items() if k in ("close_wait", "time_wait", "fds")}, keep)
    if pre.get("fd_exhaustion"):
        _exhaust_fds_at_first_socket()
    try:
        cli_main(sys.argv[2:])
    finally:
        for item in keep:
            item.close()


if __name__ == "__main__":
    main()
