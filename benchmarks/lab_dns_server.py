"""A name server for the lab's server namespace: ``lab_dns_server.py ADDRESS [PORT]``.

Serves (netprobe.testing.DnsServer, through nplab.inlab) on ADDRESS:PORT (53 by default):
``ok.lab`` → ADDRESS, ``nodata.lab`` exists with no address, ``broken.lab`` SERVFAIL,
``slow.lab`` never answered, any other name NXDOMAIN. Prints "ready" once bound and exits
when stdin closes (the lab's servers convention, nplab/topology.py ``Lab._start``).
"""

from __future__ import annotations

import sys

from nplab.inlab import LabDnsServer


def main() -> None:
    address = sys.argv[1]
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 53
    records = {"ok.lab": [address], "nodata.lab": []}
    zone = {"servfail": {"broken.lab"}, "silent": {"slow.lab"}}
    with LabDnsServer(records, **zone, host=address, port=port):
        print("ready", flush=True)
        while sys.stdin.read(1024):
            pass


if __name__ == "__main__":
    main()
