"""open_local_cluster: n real nodes on an in-memory network, deterministic keys per seed, the
given protocol and settings, faults injected, durable state per member when asked."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from btob import ConfigError, MemberCrashed, Settings
from btob.testing import LocalCluster, open_local_cluster

from ..helpers import collect


def _publics(cluster: LocalCluster) -> tuple[bytes, ...]:
    return tuple(k.public_key() for k in cluster.keys)


async def test_the_cluster_is_n_nodes_with_the_keys_and_configuration_asked_for() -> None:
    settings = Settings(checkpoint_interval=32, log_retention_slots=2048)
    async with open_local_cluster(n=5, brb="echo", variant="moving", settings=settings,
                                  seed=3) as cluster:
        assert [node.id for node in cluster.nodes] == [0, 1, 2, 3, 4]
        assert cluster.config.n == 5 and cluster.config.registry.public_keys == _publics(cluster)
        assert (cluster.config.brb, cluster.config.variant) == ("echo", "moving")
        assert cluster.config.settings.checkpoint_interval == 32
        await cluster.nodes[4].broadcast(b"x")
        with trio.fail_after(20):
            assert await collect(cluster.nodes[0], 1) == ["4:0"]


async def test_keys_and_cluster_id_are_a_function_of_the_seed() -> None:
    async with open_local_cluster(n=4, seed=1) as first:
        one = (_publics(first), first.config.cluster_id)
    async with open_local_cluster(n=4, seed=1) as again:
        assert (_publics(again), again.config.cluster_id) == one
    async with open_local_cluster(n=4, seed=2) as other:
        assert set(_publics(other)).isdisjoint(one[0])
        assert other.config.cluster_id != one[1]


async def test_faults_are_injected_into_the_members_they_name() -> None:
    async with open_local_cluster(n=4, faults=["2=crash:at=0"]) as cluster:
        effects = [node.statistics().fault for node in cluster.nodes]
        assert [e is None for e in effects] == [True, True, False, True]
        assert effects[2] is not None and effects[2].behaviour == "crash"
        with trio.fail_after(10), pytest.raises(MemberCrashed):
            await cluster.nodes[2].broadcast(b"never")


async def test_a_bad_fault_is_refused_before_any_node_starts() -> None:
    with pytest.raises(ConfigError, match="member 4 is outside"):
        async with open_local_cluster(n=4, faults=["4=crash"]):
            raise AssertionError("the block must not run")


async def test_with_a_data_directory_each_member_keeps_its_own(tmp_path: Path) -> None:
    async with open_local_cluster(n=4, data_dir=tmp_path) as cluster:
        await cluster.nodes[1].broadcast(b"kept")
        with trio.fail_after(20):
            await collect(cluster.nodes[1], 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"node-{i}" for i in range(4)]
    async with open_local_cluster(n=4, data_dir=tmp_path) as again:
        stats = again.nodes[1].statistics()
        assert stats.member.payloads_submitted == 1  # resumed, not started afresh
        assert again.nodes[1].delivered >= 1
