"""What a running node keeps for ``Node.deliveries(start)`` is bounded in count and in bytes,
and a reader asking for more than that learns the oldest index still kept."""

from __future__ import annotations

import pytest
import trio

from btob import ConfigError, DeliveryNotRetained, Settings
from btob.testing import open_local_cluster

# Small batches and slots, so that small retention bounds are valid (one slot must fit).
SMALL = dict(payload_bytes_max=400, batch_bytes_max=1000, slot_refs_max=2,
             batch_payloads_max=4)


async def _deliver_all(node, count: int) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(20):
        while node.delivered < count:
            await trio.sleep(0.01)


async def test_retention_is_bounded_in_bytes() -> None:
    settings = Settings(**SMALL, deliveries_retained_bytes_max=2000)  # type: ignore[arg-type]
    async with open_local_cluster(n=4, settings=settings) as cluster:
        for k in range(20):
            await cluster.nodes[1].broadcast(bytes([k]) * 400)
        node = cluster.nodes[2]
        await _deliver_all(node, 20)
        stats = node.statistics()
        assert stats.delivery_bytes_retained <= 2000 and stats.deliveries_retained == 5
        with pytest.raises(DeliveryNotRetained) as caught:
            async for _ in node.deliveries(0):
                pass
        assert caught.value.oldest == 15 and "oldest kept is 15" in str(caught.value)
        tail = []
        async for delivery in node.deliveries(15):
            tail.append(delivery.payload[0])
            if len(tail) == 5:
                break
        assert tail == [15, 16, 17, 18, 19]


async def test_retention_is_bounded_in_count() -> None:
    settings = Settings(**SMALL, deliveries_retained_max=8)  # type: ignore[arg-type]
    async with open_local_cluster(n=4, settings=settings) as cluster:
        for k in range(30):
            await cluster.nodes[1].broadcast(b"%d" % k)
        await _deliver_all(cluster.nodes[3], 30)
        assert cluster.nodes[3].statistics().deliveries_retained == 8


def test_a_bound_below_one_slot_is_refused() -> None:
    with pytest.raises(ConfigError, match="deliveries_retained_max"):
        Settings(**SMALL, deliveries_retained_max=7)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="deliveries_retained_bytes_max"):
        Settings(**SMALL, deliveries_retained_bytes_max=1999)  # type: ignore[arg-type]
