"""btob's testing kit: an in-memory cluster of real nodes for application tests.

Example::

    async with btob.testing.open_local_cluster(n=4) as cluster:
        await cluster.nodes[0].broadcast(b"hello")
        async for delivery in cluster.nodes[3].deliveries():
            ...
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import attrs
import trio

from btob._util import fixup_module_metadata
from btob.core.settings import Settings
from btob.crypto import KeyRegistry, SigningKey
from btob.runtime.config import ClusterConfig, MemberAddress
from btob.runtime.node import Node, Transport, open_node

__all__ = ["LocalCluster", "MemoryNetwork", "MemoryTransport", "open_local_cluster"]


class MemoryTransport:
    """One member's end of a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, member: int) -> None:
        self._network = network
        self.member = member
        self._send, self._receive = trio.open_memory_channel[tuple[int, bytes]](
            network.queue_frames_max
        )
        self.dropped = 0

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Queue ``frame`` for ``dest``; False (and counted) when its queue is full."""
        if dest == self.member or not 0 <= dest < len(self._network.endpoints):
            return False
        try:
            self._network.endpoints[dest]._send.send_nowait((self.member, frame))
        except trio.WouldBlock:
            self.dropped += 1
            return False
        return True

    async def receive(self) -> tuple[int, bytes]:
        """The next ``(source, frame)`` for this member."""
        return await self._receive.receive()


class MemoryNetwork:
    """In-process links between ``n`` members with bounded per-member queues."""

    def __init__(self, n: int, *, queue_frames_max: int = 8192) -> None:
        self.queue_frames_max = queue_frames_max
        self.endpoints: list[MemoryTransport] = []
        self.endpoints.extend(MemoryTransport(self, i) for i in range(n))


@attrs.frozen
class LocalCluster:
    """A running in-memory cluster: ``nodes[i]`` is member i's :class:`~btob.Node`."""

    config: ClusterConfig
    nodes: tuple[Node, ...]
    keys: tuple[SigningKey, ...]


@asynccontextmanager
async def open_local_cluster(
    n: int = 4,
    *,
    faults: Sequence[str] = (),
    settings: Settings | None = None,
    brb: str = "bracha",
    variant: str = "bb",
    seed: int = 0,
) -> AsyncIterator[LocalCluster]:
    """Start ``n`` nodes wired by a :class:`MemoryNetwork` for the ``async with`` block.

    ``faults`` takes ``--fault`` specs (e.g. ``"0=silent"``); their behaviours wrap those
    members' transports exactly as in ``btob node --fault``. An exception raised in the block
    propagates as itself (see :func:`btob.open_node`).
    """
    from btob.faults import parse_fault
    from btob.runtime.faulty import FaultyTransport

    keys = tuple(SigningKey.from_seed(hashlib.sha256(b"local/%d/%d" % (seed, i)).digest())
                 for i in range(n))
    config = ClusterConfig(
        b"local-%d" % seed, KeyRegistry(tuple(k.public_key() for k in keys)),
        tuple(MemberAddress("memory", 1) for _ in range(n)),
    )
    specs = {s.member: s for s in (parse_fault(text, n) for text in faults)}
    network = MemoryNetwork(n)
    effective = settings or Settings()
    async with AsyncExitStack() as stack:
        nodes = []
        for i in range(n):
            wrapper = None
            spec = specs.get(i)
            if spec is not None:
                def wrapper(inner: Transport, spec: object = spec, key: SigningKey = keys[i]
                            ) -> Transport:
                    return FaultyTransport(inner, spec, n=n, signing_key=key,  # type: ignore[arg-type]
                                           cluster_id=config.cluster_id, settings=effective,
                                           seed=seed)
            node = await stack.enter_async_context(open_node(
                config, i, keys[i], transport=network.endpoints[i], settings=effective,
                brb=brb, variant=variant, transport_wrapper=wrapper,
            ))
            nodes.append(node)
        yield LocalCluster(config, tuple(nodes), keys)

# Reprs and tracebacks name the public package, not the private module a name lives in.
fixup_module_metadata(__name__, globals())
del fixup_module_metadata
