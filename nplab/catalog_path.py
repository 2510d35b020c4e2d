"""The middle of the path for the fault catalog (issue 13): the routed path of
``nplab/pathlab.py`` (client -> r1 -> r2 -> servers) hung off the lab's client namespace.

``path_scenarios(lab)`` builds the path (its namespaces ``h``, ``m``, ``g``, ``p``), yields
one :class:`Scenario` per code it shows, and removes everything on exit.

=================  ==================================================================
198.18.67.10:80    plain HTTP behind an MTU black hole (``/big``: 64 KiB)
=================  ==================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nplab.pathlab import MTU_BLACKHOLE, PATH_MTU, build_path
from nplab.scenario import Scenario
from nplab.topology import Lab

__all__ = ["path_scenarios"]


@contextlib.contextmanager
def path_scenarios(lab: Lab) -> Iterator[list[Scenario]]:
    """Build the routed path off the lab's client namespace; yield its scenarios."""
    with build_path(lab):
        yield [
            Scenario(
                code="l3.pmtu_blackhole",
                title="A large response behind a path MTU black hole",
                setup=(
                    f"The client reaches {MTU_BLACKHOLE} through two routers (`nplab/pathlab.py`)."
                    f" The second forwards at most {PATH_MTU} bytes to and from it (`ip route "
                    f"... mtu lock {PATH_MTU}`, every interface says 1500) and its nftables "
                    "output chain drops the ICMP it owes the sender "
                    "(`icmp type destination-unreachable icmp code frag-needed drop`). "
                    f"The server on {MTU_BLACKHOLE}:80 answers `/big` with 64 KiB."
                ),
                target=f"http://{MTU_BLACKHOLE}/big",
            )
        ]
