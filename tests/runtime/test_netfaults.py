"""Network faults around real transports: a ``--net`` spec applied to what a node sends."""

from __future__ import annotations

import trio

from ..helpers import collect


async def test_network_faults_around_real_transports() -> None:
    import hashlib

    from btob import open_node
    from btob.crypto import KeyRegistry, SigningKey
    from btob.faults import parse_net
    from btob.runtime.config import ClusterConfig, MemberAddress
    from btob.runtime.netfaults import NetFaultTransport
    from btob.testing import MemoryNetwork

    n = 4
    keys = [SigningKey.from_seed(hashlib.sha256(b"net%d" % i).digest()) for i in range(n)]
    config = ClusterConfig(b"net", KeyRegistry(tuple(k.public_key() for k in keys)),
                           tuple(MemberAddress("memory", 1) for _ in range(n)))
    network = MemoryNetwork(n)
    net = parse_net("loss=0.2,gst=1,delay=0.001-0.01,dup=0.05,partition=0-0.5:0+1+2|3", n)
    wrappers = []
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            nodes = []
            for i in range(n):
                async def run(i: int = i, task_status=trio.TASK_STATUS_IGNORED) -> None:  # type: ignore[no-untyped-def]
                    def wrap(inner, i=i):  # type: ignore[no-untyped-def]
                        wrapped = NetFaultTransport(inner, net, member=i, seed=1)
                        wrappers.append(wrapped)
                        return wrapped
                    async with open_node(config, i, keys[i], transport=network.endpoints[i],
                                         transport_wrapper=wrap) as node:
                        nodes.append(node)
                        task_status.started()
                        await trio.sleep_forever()
                await nursery.start(run)
            nodes.sort(key=lambda node: node.id)
            for k in range(30):
                await nodes[k % 3].broadcast(b"n%d" % k)
            orders = [await collect(node, 30) for node in nodes]
            nursery.cancel_scope.cancel()
    assert all(order == orders[0] for order in orders)
    assert sum(w.dropped for w in wrappers) > 0  # the faults really bit
