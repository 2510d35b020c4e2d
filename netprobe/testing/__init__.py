"""Real servers on loopback for your own tests: each fault netprobe names, made on demand.

The servers behind netprobe's own test suite, its benchmarks and ``netprobe demo``, public
so that a service can test its own startup check, readiness endpoint or error messages
against the real thing, without root and without a network:

* `TcpServer`: accepts connections (healthy ``tcp://``); `closed_port`: RST
  (``l4.refused``); `SilentPort`: SYNs dropped (``l4.filtered``).
* `DnsServer`: answers names from a dict; NXDOMAIN, NODATA, SERVFAIL or silence.
* `CertBook`: a throwaway PKI, with the certificate of every TLS fault (expired,
  unknown CA, wrong name...); `L7Server`: HTTP or HTTPS that answers by path (503,
  404, a hang, garbage), or a peer that never answers or resets.
* `RedisServer`: a real ``redis-server`` (when installed).

Every server is a context manager that listens on loopback only, serves from its own
threads (so ``with`` works the same in sync and async tests: the servers never need the
test's event loop), bounds what it does (timeouts on every connection) and removes every
socket, thread, process and file it made when the block ends.

Example: a test in your own suite.

```python
import netprobe
from netprobe.testing import TcpServer, closed_port

async def test_startup_check_names_the_fault():
    with TcpServer() as db:
        await netprobe.wait_until_ready(f"tcp://{db.address}", timeout=5)
    with pytest.raises(netprobe.DependencyUnavailable, match="l4.refused"):
        await netprobe.wait_until_ready(f"127.0.0.1:{closed_port()}", timeout=1)
```
"""

from __future__ import annotations

from ._dns import DnsServer as DnsServer
from ._http import L7Server as L7Server
from ._pki import CertBook as CertBook
from ._redis import RedisServer as RedisServer
from ._tcp import SilentPort as SilentPort
from ._tcp import TcpServer as TcpServer
from ._tcp import closed_port as closed_port

__all__ = (
    "CertBook",
    "DnsServer",
    "L7Server",
    "RedisServer",
    "SilentPort",
    "TcpServer",
    "closed_port",
)
