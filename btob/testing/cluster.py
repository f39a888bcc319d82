"""The in-memory cluster of real nodes, for application tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs

from btob.core.application import StateMachine
from btob.core.settings import Settings
from btob.crypto import KeyRegistry, SigningKey
from btob.runtime.config import ClusterConfig, MemberAddress
from btob.runtime.memory import MemoryNetwork
from btob.runtime.node import Node, open_node

__all__ = ["LocalCluster", "open_local_cluster"]


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
    data_dir: str | os.PathLike[str] | None = None,
    apps: Callable[[int], StateMachine] | None = None,
) -> AsyncIterator[LocalCluster]:
    """Start ``n`` nodes wired by a :class:`MemoryNetwork` for the ``async with`` block.

    ``faults`` takes ``--fault`` specs (e.g. ``"0=crash:at=2"``, ``"1=silent"``); each is
    injected as in ``btob node --fault`` and ``btob sim``, its time counted from when the
    cluster starts. ``settings`` are every member's (the cluster-wide fields become the
    cluster's configuration). With ``data_dir``, member i keeps its durable state in
    ``DATA_DIR/node-<i>``, and a cluster started again on the same directory resumes it.
    ``apps(i)`` builds member i's replicated application (see :func:`btob.open_node`).
    An exception raised in the block propagates as itself (see :func:`btob.open_node`).
    """
    from btob.faults import parse_fault

    keys = tuple(SigningKey.from_seed(hashlib.sha256(b"local/%d/%d" % (seed, i)).digest())
                 for i in range(n))
    effective = settings or Settings()
    config = ClusterConfig(
        b"local-%d" % seed, KeyRegistry(tuple(k.public_key() for k in keys)),
        tuple(MemberAddress("memory", 1) for _ in range(n)), brb=brb, variant=variant,
        settings=effective,
    )
    specs = {s.member: s for s in (parse_fault(text, n) for text in faults)}
    network = MemoryNetwork(n)
    async with AsyncExitStack() as stack:
        nodes = []
        for i in range(n):
            node = await stack.enter_async_context(open_node(
                config, i, keys[i], transport=network.endpoints[i], settings=effective,
                fault=specs.get(i), seed=seed,
                data_dir=None if data_dir is None else Path(data_dir) / f"node-{i}",
                app=None if apps is None else apps(i),
            ))
            nodes.append(node)
        yield LocalCluster(config, tuple(nodes), keys)
