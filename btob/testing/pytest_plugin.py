"""A pytest-trio fixture for applications built on btob (registered as a pytest plugin).

Use it in any test of a project that has btob installed::

    async def test_my_app(btob_cluster):
        await btob_cluster.nodes[0].broadcast(b"hello")
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from btob.testing import LocalCluster, open_local_cluster

__all__ = ["btob_cluster"]


@pytest.fixture
async def btob_cluster() -> AsyncIterator[LocalCluster]:
    """A running 4-member in-memory cluster (see :func:`btob.testing.open_local_cluster`)."""
    async with open_local_cluster(n=4) as cluster:
        yield cluster
