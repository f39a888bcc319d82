"""Faults on the real runtime mean what they mean in the simulator: a crash at T stops the
member T seconds after its node started, a pause holds it, a slow CPU delays it - checked by
their effects on real runs (in memory, and over TCP on loopback), not by their settings."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

import trio

from btob import ClusterConfig, MemberAddress, Node, Settings, open_node
from btob.crypto import KeyRegistry, SigningKey
from btob.testing import free_ports, open_local_cluster

N = 4


async def _paced(node: Node, count: int, interval_s: float) -> None:
    for k in range(count):
        await node.broadcast(b"%d:%d" % (node.id, k))
        await trio.sleep(interval_s)


async def _times(node: Node, count: int, times: list[float]) -> None:
    """Record the trio time of each of ``node``'s first ``count`` deliveries."""
    async for _ in node.deliveries():
        times.append(trio.current_time())
        if len(times) == count:
            return


async def test_a_member_crashed_at_two_seconds_delivers_until_then_and_never_after() -> None:
    settings = Settings(view_change_timeout_s=0.3)
    count = 40  # per broadcasting member, one every 0.1 s: 4 s of work
    async with open_local_cluster(n=N, faults=["0=crash:at=2"], settings=settings) as cluster:
        started = trio.current_time()
        nodes = cluster.nodes
        times: dict[int, list[float]] = {i: [] for i in range(N)}
        with trio.move_on_after(30):
            async with trio.open_nursery() as nursery:
                for i in (1, 2, 3):
                    nursery.start_soon(_paced, nodes[i], count, 0.1)
                for i in range(N):
                    nursery.start_soon(_times, nodes[i], 3 * count, times[i])
                while not all(len(times[i]) == 3 * count for i in (1, 2, 3)):
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
        effects = nodes[0].statistics().fault
    assert effects is not None and effects.crashed_at is not None
    assert nodes[0].crashed
    assert 2.0 <= effects.crashed_at < 2.2  # the first input at or after T = 2 s
    crashed = started + effects.crashed_at
    assert times[0] and times[0][0] - started < 2.0  # it did deliver before its crash
    assert max(times[0]) <= crashed  # and never after it
    assert len(times[0]) < 3 * count
    for i in (1, 2, 3):  # the others go on without it (a view change replaced it)
        assert len(times[i]) == 3 * count and max(times[i]) > crashed + 1.0
        assert nodes[i].view >= 1


@asynccontextmanager
async def _tcp_cluster(faults: Sequence[str]) -> AsyncIterator[list[Node]]:
    """Four nodes in this process over real TCP on loopback, with the given faults."""
    keys = [SigningKey.from_seed(hashlib.sha256(b"tcp-faults/%d" % i).digest())
            for i in range(N)]
    config = ClusterConfig(b"tcp-faults", KeyRegistry(tuple(k.public_key() for k in keys)),
                           tuple(MemberAddress("127.0.0.1", p) for p in free_ports(N)),
                           settings=Settings(view_change_timeout_s=5.0))
    specs = {int(text.split("=", 1)[0]): text for text in faults}
    async with AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(open_node(config, i, keys[i],
                                                           fault=specs.get(i)))
                 for i in range(N)]
        yield nodes


async def _finish_times(faults: Sequence[str], payloads: int) -> tuple[list[float], list[Node]]:
    """Seconds from the first broadcast until each member delivered every payload (members
    1 and 3 broadcast ``payloads`` each, one every 10 ms), and the nodes."""
    async with _tcp_cluster(faults) as nodes:
        times: dict[int, list[float]] = {i: [] for i in range(N)}
        with trio.fail_after(60):
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for i in (1, 3):
                    nursery.start_soon(_paced, nodes[i], payloads, 0.01)
                for i in range(N):
                    nursery.start_soon(_times, nodes[i], 2 * payloads, times[i])
        return [max(times[i]) - start for i in range(N)], nodes


async def test_a_slow_member_over_tcp_is_measurably_slower() -> None:
    payloads = 40  # enough inputs that the count does not hang on the machine's load
    plain, _ = await _finish_times([], payloads)
    slow, nodes = await _finish_times(["2=slow:delay=0.01"], payloads)
    effects = nodes[2].statistics().fault
    assert effects is not None and effects.busy_s >= 2.0  # 10 ms for each of >= 200 inputs
    # Member 2 processes at most 100 inputs per second; the others need not wait for it.
    assert slow[2] >= plain[2] + 1.5, (plain, slow)
    assert slow[2] >= max(slow[0], slow[1], slow[3]) + 1.0, slow


async def test_a_paused_member_over_tcp_delivers_nothing_while_paused_then_catches_up() -> None:
    payloads = 150  # 1.5 s of broadcasting
    async with _tcp_cluster(["2=pause:at=0.5,for=1.5"]) as nodes:
        started = trio.current_time()  # (the nodes started a moment earlier)
        times: dict[int, list[float]] = {i: [] for i in range(N)}
        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for i in (1, 3):
                    nursery.start_soon(_paced, nodes[i], payloads, 0.01)
                for i in range(N):
                    nursery.start_soon(_times, nodes[i], 2 * payloads, times[i])
        effects = nodes[2].statistics().fault
    assert effects is not None and 1.3 <= effects.held_s <= 1.5
    relative = [t - started for t in times[2]]
    during = [t for t in relative if 0.55 < t < 1.9]
    assert during == [], during[:5]  # nothing processed while paused
    assert len(times[2]) == 2 * payloads and relative[-1] >= 1.9  # then everything
    assert any(0.55 < t - started < 1.9 for t in times[0])  # the others went on meanwhile
