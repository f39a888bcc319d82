"""DelayLine: held-back frames leave in order of due time, each at its time; the queue is
bounded. Runs on trio's virtual clock (the autojump clock), so times are exact."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from btob.runtime.delayline import DelayLine


class Wire:
    """Records what the line sends and when; ``done`` is set once ``count`` frames left."""

    def __init__(self, count: int) -> None:
        self.sent: list[tuple[float, int, bytes]] = []
        self.count = count
        self.done = trio.Event()

    def send(self, dest: int, frame: bytes) -> None:
        self.sent.append((trio.current_time(), dest, frame))
        if len(self.sent) == self.count:
            self.done.set()


async def _run(line: DelayLine, wire: Wire) -> None:
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(line.run, wire.send)
            await wire.done.wait()
            nursery.cancel_scope.cancel()


async def test_frames_leave_in_order_of_due_time_each_at_its_time(
        autojump_clock: trio.testing.MockClock) -> None:
    line = DelayLine()
    start = trio.current_time()
    for delay, dest in ((0.3, 1), (0.1, 2), (0.2, 3)):
        assert line.put(start + delay, dest, b"to %d" % dest)
    wire = Wire(3)
    await _run(line, wire)
    assert [(dest, frame) for _, dest, frame in wire.sent] == [(2, b"to 2"), (3, b"to 3"),
                                                               (1, b"to 1")]
    assert [t - start for t, _, _ in wire.sent] == pytest.approx([0.1, 0.2, 0.3])


async def test_a_short_delay_put_later_overtakes_a_long_one(
        autojump_clock: trio.testing.MockClock) -> None:
    line = DelayLine()
    start = trio.current_time()
    wire = Wire(2)

    async def late_put() -> None:
        await trio.sleep(0.1)
        line.put(trio.current_time() + 0.05, 2, b"short")

    line.put(start + 1.0, 1, b"long")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(late_put)
        await _run(line, wire)
    assert [(round(t - start, 6), frame) for t, _, frame in wire.sent] == [
        (0.15, b"short"), (1.0, b"long")]


async def test_frames_due_together_keep_their_order_and_past_dues_leave_at_once(
        autojump_clock: trio.testing.MockClock) -> None:
    line = DelayLine()
    start = trio.current_time()
    for k in range(5):
        line.put(start + 0.2, k, b"%d" % k)
    line.put(start - 1.0, 9, b"overdue")
    wire = Wire(6)
    await _run(line, wire)
    assert [frame for _, _, frame in wire.sent] == [b"overdue", b"0", b"1", b"2", b"3", b"4"]
    assert wire.sent[0][0] == pytest.approx(start)


async def test_at_most_capacity_frames_wait_in_the_queue() -> None:
    line = DelayLine(capacity=2)
    now = trio.current_time()
    assert line.put(now + 5, 1, b"a") and line.put(now + 5, 1, b"b")
    assert not line.put(now + 5, 1, b"c")  # refused, not blocked
