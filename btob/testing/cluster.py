"""The in-memory cluster of real nodes, for application tests."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs

from btob._errors import ConfigError
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

    @property
    def client_config(self) -> ClusterConfig:
        """The configuration a client of this cluster uses: the members' client ports as
        they are bound (a cluster opened with ``clients=True``)."""
        ports = []
        for node in self.nodes:
            port = node.client_port
            if port is None or port.port is None:
                raise ConfigError("this cluster serves no clients (open it with clients=True)")
            ports.append(MemberAddress("127.0.0.1", port.port))
        # The members talk over memory; the host is loopback so that the file form of this
        # configuration (one host per member, cluster.toml) can say where clients go.
        return attrs.evolve(self.config, client_addresses=tuple(ports),
                            addresses=tuple(MemberAddress("127.0.0.1", 1) for _ in ports))


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
    clients: bool | Sequence[bytes] = False,
) -> AsyncIterator[LocalCluster]:
    """Start ``n`` nodes wired by a :class:`MemoryNetwork` for the ``async with`` block.

    ``faults`` takes ``--fault`` specs (e.g. ``"0=crash:at=2"``, ``"1=silent"``); each is
    injected as in ``btob node --fault`` and ``btob sim``, its time counted from when the
    cluster starts. ``settings`` are every member's (the cluster-wide fields become the
    cluster's configuration). With ``data_dir``, member i keeps its durable state in
    ``DATA_DIR/node-<i>``, and a cluster started again on the same directory resumes it.
    ``apps(i)`` builds member i's replicated application (see :func:`btob.open_node`).
    ``clients`` (True: any key; or the admitted client public keys) makes every member serve
    clients on a loopback TCP port of its own; :attr:`LocalCluster.client_config` names them.
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
        clients_open=clients is True,
        client_keys=() if isinstance(clients, bool) else tuple(clients),
        client_addresses=tuple(MemberAddress("127.0.0.1", 0) for _ in range(n))
        if clients is not False else (),
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
