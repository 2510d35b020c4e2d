"""The L3/L4 cases of the lab: each fault built in nplab/topology.py and the verdict it must get.

Shared by tests/lab/test_lab.py and the deadline sweep (benchmarks/deadlines.py)."""

from __future__ import annotations

from typing import Any

__all__ = ["CASES"]

# (case id, target, options, expected fault code, expected warning codes)
CASES: list[tuple[str, str, dict[str, Any], str | None, set[str]]] = [
    ("nothing listening", "198.18.0.10:81", {}, "l4.refused", set()),
    ("reject with tcp reset", "198.18.0.11:81", {}, "l4.refused", set()),
    ("drop, host answers ping", "198.18.0.12:81", {"connect_timeout": 1.0}, "l4.filtered", set()),
    (
        "drop, ICMP blocked, other ports answer",
        "198.18.0.13:81",
        {"connect_timeout": 1.5},
        "l4.filtered",
        set(),
    ),
    (
        "host drops everything",
        "198.18.0.14:81",
        {"connect_timeout": 1.0},
        "l3.host_unresponsive",
        set(),
    ),
    (
        "drops everything, no witness allowed",
        "198.18.0.14:81",
        {"connect_timeout": 1.0, "icmp": False, "canary": False},
        "l4.connect_timeout",
        set(),
    ),
    (
        "ICMP blocked while the service works",
        "tcp://both.lab:80",  # 198.18.0.15 (works, ICMP dropped) and 198.18.0.14 (drops all)
        {"connect_timeout": 1.5},
        None,
        {"icmp.no_reply", "tcp.address_failed"},
    ),
    ("reject icmp host-unreachable", "198.18.0.16:81", {}, "l3.host_unreachable", set()),
    ("reject icmp admin-prohibited", "198.18.0.17:81", {}, "l3.host_unreachable", set()),
    ("unowned address on the segment", "198.18.0.99:81", {}, "l3.host_unreachable", set()),
    ("network with no route", "198.19.5.5:81", {}, "l3.network_unreachable", set()),
    ("healthy", "tcp://198.18.0.10:80", {}, None, set()),
    (
        "CLOSE_WAIT accumulation",
        "198.18.0.10:82",
        {"pre": {"close_wait": [12, "198.18.0.10:82"]}},
        None,
        {"local.close_wait_leak"},
    ),
    (
        "file descriptors near the limit",
        "tcp://198.18.0.10:80",
        {"pre": {"fds": [64, 0.9]}},
        None,
        {"local.fd_pressure"},
    ),
]
