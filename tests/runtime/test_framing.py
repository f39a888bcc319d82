"""The shared framing: exact reads and bounded frames, the batching writer's counts, and the
watchdog's keepalive and stall."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from btob import WireError
from btob.runtime.framing import PREFIX, FrameReader, WriterState, framed, watchdog, write_loop


async def test_frames_and_exact_reads_come_whole_however_the_bytes_arrive() -> None:
    left, right = trio.testing.memory_stream_pair()
    reader = FrameReader(right)
    await left.send_all(b"hel")
    await left.send_all(b"lo" + framed(b"") + framed(b"abc")[:3])
    assert await reader.exactly(5) == b"hello"
    assert await reader.read_frame(8) == b""  # a keepalive
    await left.send_all(framed(b"abc")[3:] + framed(b"123456789"))
    assert await reader.read_frame(8) == b"abc"
    with pytest.raises(WireError, match="exceeds"):
        await reader.read_frame(8)


async def test_the_end_of_the_stream_is_clean_only_between_frames() -> None:
    for tail, clean in ((b"", True), (PREFIX.pack(5)[:2], False), (PREFIX.pack(5) + b"ab", False)):
        left, right = trio.testing.memory_stream_pair()
        reader = FrameReader(right)
        await left.send_all(tail)
        await left.aclose()
        if clean:
            assert await reader.read_frame(64) is None
        else:
            with pytest.raises(WireError, match="end of stream"):
                await reader.read_frame(64)
    left, right = trio.testing.memory_stream_pair()
    await left.send_all(b"ab")
    await left.aclose()
    assert await FrameReader(right).exactly(3) is None


async def test_the_writer_batches_what_is_queued_and_counts_frames_without_keepalives(
        autojump_clock: trio.testing.MockClock) -> None:
    left, right = trio.testing.memory_stream_pair()
    send, receive = trio.open_memory_channel[bytes](10)
    for frame in (b"one", b"", b"three"):
        send.send_nowait(frame)
    counted: list[tuple[int, int]] = []
    writer = WriterState(last_write=0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(write_loop, left, receive, writer, lambda f, b: counted.append((f, b)))
        data = b""
        while len(data) < 3 * PREFIX.size + 8:
            data += await right.receive_some(100)
        nursery.cancel_scope.cancel()
    assert data == framed(b"one") + framed(b"") + framed(b"three")
    assert counted == [(2, 8)]  # one write for the three, the keepalive not a frame
    assert writer.busy_since is None and writer.last_write == trio.current_time()


async def test_the_watchdog_queues_keepalives_and_ends_a_stalled_write(
        autojump_clock: trio.testing.MockClock) -> None:
    send, receive = trio.open_memory_channel[bytes](10)
    writer = WriterState(last_write=trio.current_time())
    with trio.move_on_after(2.1):
        await watchdog(writer, send, keepalive_interval_s=1.0, idle_timeout_s=3.0)
    assert [receive.receive_nowait(), receive.receive_nowait()] == [b"", b""]
    writer.busy_since = trio.current_time()
    started = trio.current_time()
    with pytest.raises(trio.TooSlowError):
        await watchdog(writer, send, keepalive_interval_s=1.0, idle_timeout_s=3.0)
    assert trio.current_time() - started >= 3.0


async def test_the_watchdog_ends_a_connection_on_which_nothing_arrives(
        autojump_clock: trio.testing.MockClock) -> None:
    left, right = trio.testing.memory_stream_pair()
    reader = FrameReader(right)
    send, _ = trio.open_memory_channel[bytes](10)
    writer = WriterState(last_write=trio.current_time())

    async def feed() -> None:  # a keepalive a second, twice, then silence
        for _ in range(2):
            await trio.sleep(1.0)
            await left.send_all(framed(b""))

    async def read() -> None:
        while True:
            await reader.read_frame(8)

    started = trio.current_time()
    with pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(feed)
            nursery.start_soon(read)
            await watchdog(writer, send, keepalive_interval_s=1.0, idle_timeout_s=2.5,
                           reader=reader)
    assert caught.value.split(trio.TooSlowError)[1] is None  # the timeout, nothing else
    # bytes arrived until 2 s in (the reader took them), then nothing for 2.5 s
    assert 4.5 <= trio.current_time() - started <= 5.0
    assert reader.last_received == started + 2.0


async def test_whatever_ends_one_side_is_counted_and_cancels_the_others() -> None:
    from btob.runtime.framing import until_broken

    class Counters:
        bad_frames = 0
        idle_timeouts = 0

    counters = Counters()
    for error, field in ((WireError("bad"), "bad_frames"), (trio.TooSlowError(), "idle_timeouts"),
                         (OSError("reset"), None)):
        async def fail(error: BaseException = error) -> None:
            raise error

        with trio.CancelScope() as scope:
            await until_broken(fail, scope, counters)
            assert scope.cancel_called
        if field is not None:
            assert getattr(counters, field) == 1
    assert (counters.bad_frames, counters.idle_timeouts) == (1, 1)
    with pytest.raises(ValueError):  # anything else is a bug, not a broken connection
        await until_broken(lambda: fail(ValueError()), trio.CancelScope(), counters)  # type: ignore[arg-type]
