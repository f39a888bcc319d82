"""The ``btob_cluster`` fixture the pytest plugin registers."""

from __future__ import annotations

import trio

from ..helpers import collect


async def test_the_pytest_fixture(btob_cluster) -> None:  # type: ignore[no-untyped-def]
    await btob_cluster.nodes[0].broadcast(b"fixture")
    with trio.fail_after(10):
        assert await collect(btob_cluster.nodes[3], 1) == ["0:0"]
