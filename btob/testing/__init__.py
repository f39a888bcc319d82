"""btob's testing kit: an in-memory cluster of real nodes for application tests, and
deliberately broken members (:mod:`btob.testing.breaks`) for testing adversarial suites.

Example::

    async with btob.testing.open_local_cluster(n=4, faults=["0=crash:at=2"]) as cluster:
        await cluster.nodes[1].broadcast(b"hello")
        async for delivery in cluster.nodes[3].deliveries():
            ...
"""

from btob._util import fixup_module_metadata
from btob.runtime.memory import MemoryNetwork as MemoryNetwork
from btob.runtime.memory import MemoryTransport as MemoryTransport
from btob.testing.breaks import BREAKS as BREAKS
from btob.testing.breaks import broken as broken
from btob.testing.cluster import LocalCluster as LocalCluster
from btob.testing.cluster import open_local_cluster as open_local_cluster
from btob.testing.ports import free_port_range as free_port_range
from btob.testing.ports import free_ports as free_ports

__all__ = ["BREAKS", "LocalCluster", "MemoryNetwork", "MemoryTransport", "broken",
           "free_port_range", "free_ports", "open_local_cluster"]

# Reprs and tracebacks name the public package, not the private module a name lives in.
fixup_module_metadata(__name__, globals())
del fixup_module_metadata
