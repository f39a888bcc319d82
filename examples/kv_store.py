"""A replicated key-value store on btob: a deterministic state machine that every member runs.

Each member applies the same totally ordered stream of SET commands to its own copy, snapshots
it at every checkpoint (the snapshot's Merkle root is what members sign, so a stable
checkpoint certifies the store's contents), and restores it from a snapshot after a restart
or a state transfer. One member of the cluster here is a Byzantine sequencer that says
nothing; it is replaced by a view change, and the three others end with the same map.

Run it with ``python examples/kv_store.py``.
"""

from __future__ import annotations

import json

import trio

from btob import Delivery, Node, Settings
from btob.testing import open_local_cluster


class KVStore:
    """The replicated state: a dict changed only by delivered commands, in delivery order
    (a :class:`btob.StateMachine`)."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.applied = 0

    def apply(self, delivery: Delivery) -> None:
        """Apply one delivered ``{"key": ..., "value": ...}`` command (anything else is
        ignored - every member ignores it alike)."""
        try:
            command = json.loads(delivery.payload)
            key, value = command["key"], command["value"]
        except (ValueError, KeyError, TypeError):
            return
        if isinstance(key, str) and isinstance(value, str):
            self.data[key] = value
        self.applied += 1

    def snapshot(self) -> bytes:
        """The whole store, canonically encoded (sorted keys), so equal stores give equal
        bytes at every member."""
        return json.dumps([self.applied, self.data], sort_keys=True,
                          separators=(",", ":")).encode()

    def restore(self, snapshot: bytes) -> None:
        """Replace the store by a snapshot (``b""``: the empty store)."""
        self.applied, self.data = json.loads(snapshot) if snapshot else (0, {})


async def set_key(node: Node, key: str, value: str) -> None:
    """Propose ``key = value`` to the whole cluster."""
    await node.broadcast(json.dumps({"key": key, "value": value}).encode())


async def main() -> None:
    settings = Settings(view_change_timeout_s=0.3)
    stores = [KVStore() for _ in range(4)]
    async with open_local_cluster(n=4, faults=["0=silent"], settings=settings,
                                  apps=stores.__getitem__) as cluster:
        honest = cluster.nodes[1:]  # member 0 is Byzantine
        async with trio.open_nursery() as nursery:
            for i, node in enumerate(honest, start=1):
                for k in range(5):
                    nursery.start_soon(set_key, node, f"session-{k}", f"replica-{i}-wrote-{k}")
        with trio.fail_after(30):
            for node in honest:  # the member applied each delivery before publishing it
                async for delivery in node.deliveries():
                    if delivery.index == 14:
                        break
        maps = [stores[i].data for i in (1, 2, 3)]
        assert maps[0] == maps[1] == maps[2], "replicas diverged"
        print(json.dumps(maps[0], indent=1, sort_keys=True))
        print(f"3 replicas agree on {len(maps[0])} keys after 15 concurrent writes")


if __name__ == "__main__":
    trio.run(main)
