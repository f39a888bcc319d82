"""The in-memory transport: frames handed over in order with their source; a full queue
drops and counts. Runs on trio's virtual clock: waiting for a frame that is not there costs
no real time."""

from __future__ import annotations

import trio
import trio.testing

from btob.runtime.memory import MemoryNetwork


async def _drain(network: MemoryNetwork, member: int) -> list[tuple[int, bytes]]:
    """Everything queued for ``member`` (a receive that would wait ends it)."""
    received = []
    while True:
        with trio.move_on_after(1):
            received.append(await network.endpoints[member].receive())
            continue
        return received


async def test_frames_arrive_in_order_with_their_source() -> None:
    network = MemoryNetwork(3)
    assert [e.member for e in network.endpoints] == [0, 1, 2]
    assert network.endpoints[0].send_nowait(2, b"a")
    assert network.endpoints[1].send_nowait(2, b"b")
    assert network.endpoints[0].send_nowait(2, b"c")
    with trio.fail_after(5):
        got = [await network.endpoints[2].receive() for _ in range(3)]
    assert got == [(0, b"a"), (1, b"b"), (0, b"c")]


async def test_a_full_queue_drops_and_the_sender_counts_it(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork(3, queue_frames_max=2)
    sender = network.endpoints[0]
    assert [sender.send_nowait(1, b"%d" % k) for k in range(4)] == [True, True, False, False]
    assert sender.dropped == 2
    assert network.endpoints[2].send_nowait(1, b"other") is False  # member 1's queue is full
    assert network.endpoints[2].dropped == 1
    assert sender.send_nowait(2, b"x")  # the other queues are not affected
    assert await _drain(network, 1) == [(0, b"0"), (0, b"1")]
    assert await _drain(network, 2) == [(0, b"x")]


async def test_sends_to_oneself_or_outside_the_network_are_refused_uncounted(
        autojump_clock: trio.testing.MockClock) -> None:
    network = MemoryNetwork(2)
    endpoint = network.endpoints[0]
    assert not endpoint.send_nowait(0, b"self")
    assert not endpoint.send_nowait(2, b"nobody")
    assert not endpoint.send_nowait(-1, b"nobody")
    assert endpoint.dropped == 0
    assert await _drain(network, 0) == [] and await _drain(network, 1) == []
