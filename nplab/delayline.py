"""A userspace delay line between two network namespaces (this kernel has no netem).

Two TUN devices: the lab moves one into each namespace. This process copies every IP packet
from one to the other after ``--delay-ms`` (each way), and can drop the first SYN of every TCP
flow (``--drop-first-syn``) so that the client's connect needs the 1 s SYN retransmission.
It exits when its stdin closes (the lab, its parent, is gone): it never outlives a run.

Usage: delayline.py TUN_A TUN_B [--delay-ms N] [--drop-first-syn]; prints "ready" once both
devices exist.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import heapq
import os
import selectors
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def first_syn(packet: bytes, seen: set[tuple[bytes, bytes, bytes]]) -> bool:
    """Is this an IPv4 TCP SYN (no ACK) of a flow not seen before? Then remember the flow."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != 6:
        return False
    tcp = packet[(packet[0] & 0x0F) * 4 :]
    if len(tcp) < 14 or tcp[13] & 0x12 != 0x02:
        return False
    key = (packet[12:16], packet[16:20], tcp[0:4])
    if key in seen:
        return False
    seen.add(key)
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("tun_a")
    parser.add_argument("tun_b")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    parser.add_argument("--drop-first-syn", action="store_true")
    args = parser.parse_args()
    a, b = open_tun(args.tun_a), open_tun(args.tun_b)
    peer = {a: b, b: a}
    delay = args.delay_ms / 1000.0
    seen: set[tuple[bytes, bytes, bytes]] = set()
    queue: list[tuple[float, int, int, bytes]] = []
    counter = 0
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ)
    sel.register(b, selectors.EVENT_READ)
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ)
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        for key, _ in sel.select(timeout):
            fd = int(key.fd)
            if fd == sys.stdin.fileno():
                if not os.read(fd, 1024):
                    return
                continue
            for _ in range(256):
                try:
                    packet = os.read(fd, 65535)
                except BlockingIOError:
                    break
                if args.drop_first_syn and first_syn(packet, seen):
                    continue
                counter += 1
                heapq.heappush(queue, (time.monotonic() + delay, counter, peer[fd], packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, packet = heapq.heappop(queue)
            with contextlib.suppress(OSError):
                os.write(out, packet)


if __name__ == "__main__":
    main()
