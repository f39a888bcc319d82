"""A replicated key-value store on btob: every replica applies the same totally ordered
stream of SET commands, so all replicas end with the same map - even though one member of
the cluster is a Byzantine sequencer (it is replaced by a view change).

Run it with ``python examples/kv_store.py``.
"""

from __future__ import annotations

import json

import trio

from btob import Node, Settings
from btob.testing import open_local_cluster


class Replica:
    """One replica: a dict updated only by delivered commands, in delivery order."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.data: dict[str, str] = {}
        self.applied = 0

    async def set(self, key: str, value: str) -> None:
        """Propose ``key = value`` to the whole cluster."""
        await self.node.broadcast(json.dumps({"key": key, "value": value}).encode())

    async def apply_until(self, count: int) -> None:
        """Apply delivered commands until ``count`` of them were applied."""
        async for delivery in self.node.deliveries(self.applied):
            command = json.loads(delivery.payload)
            self.data[command["key"]] = command["value"]
            self.applied += 1
            if self.applied == count:
                return


async def main() -> None:
    settings = Settings(view_change_timeout_s=0.3)
    async with open_local_cluster(n=4, faults=["0=silent"], settings=settings) as cluster:
        replicas = [Replica(node) for node in cluster.nodes[1:]]  # member 0 is Byzantine
        async with trio.open_nursery() as nursery:
            for i, replica in enumerate(replicas):
                for k in range(5):
                    nursery.start_soon(replica.set, f"session-{k}", f"replica-{i}-wrote-{k}")
        for replica in replicas:
            await replica.apply_until(15)
        maps = [replica.data for replica in replicas]
        assert maps[0] == maps[1] == maps[2], "replicas diverged"
        print(json.dumps(maps[0], indent=1, sort_keys=True))
        print(f"3 replicas agree on {len(maps[0])} keys after 15 concurrent writes")


if __name__ == "__main__":
    trio.run(main)
