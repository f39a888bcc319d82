"""Length-prefixed frames over a Trio stream, shared by the member links (:mod:`tcp`), the
members' client port (:mod:`clientport`) and the client's connection (:mod:`btob.client`).

A frame is a 4-byte big-endian length and that many bytes; a zero length is a keepalive. The
reader buffers at most one frame plus one receive chunk. The writer joins queued frames into
one write while it stays below :data:`WRITE_BATCH_BYTES`. Neither side arms a timer per frame
on an established connection (a cancel scope per receive cost a few percent of a member's CPU
at low load): a watchdog reads when the writer last finished, since when it is stuck and when
the reader last received, queues a keepalive after a quiet spell and ends the connection when
one write stalls or nothing arrived for the idle timeout (a peer that stopped reading or
writing holds nothing forever). Its checks run every half keepalive interval, so an idle
connection ends within that much after its timeout.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs
import trio

from btob._errors import WireError

__all__ = ["PREFIX", "SOCKET_ERRORS", "FrameReader", "WriterState", "framed", "until_broken",
           "watchdog", "write_loop"]

PREFIX = struct.Struct(">I")
"""The length prefix of a frame."""
# Bytes asked of the socket per receive: also what a reader buffers beyond one frame.
_RECEIVE_CHUNK_BYTES = 64 * 1024
# A writer joins queued frames into one write while the write stays below this size.
_WRITE_BATCH_BYTES = 256 * 1024


SOCKET_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a broken or closed socket raises; each ends one connection, never its owner."""


class BreakCounters(Protocol):
    """The two counters :func:`until_broken` keeps."""

    bad_frames: int
    idle_timeouts: int


async def until_broken(loop: Callable[[], Awaitable[None]], scope: trio.CancelScope,
                       counters: BreakCounters) -> None:
    """Run one side of a connection (its reader, writer or watchdog); whatever ends it - a
    bad frame or an idle timeout (both counted), a broken socket - cancels ``scope``, which
    ends the other sides."""
    try:
        await loop()
    except WireError:
        counters.bad_frames += 1
    except trio.TooSlowError:
        counters.idle_timeouts += 1
    except SOCKET_ERRORS:
        pass
    finally:
        scope.cancel()


def framed(payload: bytes) -> bytes:
    """``payload`` with its length prefix."""
    return PREFIX.pack(len(payload)) + payload


class FrameReader:
    """Exact reads and length-prefixed frames from a stream."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self.last_received = trio.current_time()
        """When a receive last returned bytes (or the reader was made): what
        :func:`watchdog` reads to end a connection on which nothing arrives."""

    async def _fill(self, size: int) -> bool:
        """Read until ``size`` bytes are buffered; False at end of stream. No deadline of its
        own: the caller's cancel scope (a handshake) or the connection's watchdog bounds it."""
        while len(self._buffer) < size:
            data = await self._stream.receive_some(_RECEIVE_CHUNK_BYTES)
            if not data:
                return False
            self.last_received = trio.current_time()
            self._buffer += data
        return True

    async def exactly(self, size: int) -> bytes | None:
        """The next ``size`` bytes; None at end of stream before them."""
        if not await self._fill(size):
            return None
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_frame(self, limit: int) -> bytes | None:
        """The next payload (``b""`` for a keepalive), or None at end of stream between frames.

        Raises `WireError` for a length above ``limit`` or end of stream inside a frame, and
        socket errors as is.
        """
        if not await self._fill(PREFIX.size):
            if self._buffer:
                raise WireError("end of stream inside a length prefix")
            return None
        (length,) = PREFIX.unpack_from(self._buffer)
        if length > limit:
            raise WireError(f"frame of {length} bytes exceeds the bound of {limit}")
        end = PREFIX.size + length
        if not await self._fill(end):
            raise WireError("end of stream inside a frame")
        payload = bytes(self._buffer[PREFIX.size:end])
        del self._buffer[:end]
        return payload


@attrs.define
class WriterState:
    """When the writer of a connection last finished a write, and since when it is stuck in
    one (None between writes)."""

    last_write: float
    busy_since: float | None = None


async def write_loop(stream: trio.abc.SendStream, outbox: trio.MemoryReceiveChannel[bytes],
                     writer: WriterState, sent: Callable[[int, int], None]) -> None:
    """Write the frames queued in ``outbox``, batched, for as long as the stream takes them
    (an empty frame is a keepalive); ``sent(frames, payload_bytes)`` after each write counts
    what left, keepalives not included among the frames."""
    while True:
        frames = [await outbox.receive()]
        size = len(frames[0])
        while size < _WRITE_BATCH_BYTES:
            try:
                frame = outbox.receive_nowait()
            except trio.WouldBlock:
                break
            frames.append(frame)
            size += len(frame)
        data = bytearray()
        for frame in frames:
            data += PREFIX.pack(len(frame))
            data += frame
        writer.busy_since = trio.current_time()
        await stream.send_all(data)
        writer.busy_since = None
        writer.last_write = trio.current_time()
        sent(sum(1 for f in frames if f), size)


async def watchdog(writer: WriterState, outbox: trio.MemorySendChannel[bytes], *,
                   keepalive_interval_s: float, idle_timeout_s: float,
                   reader: FrameReader | None = None) -> None:
    """Queue a keepalive when nothing was written for ``keepalive_interval_s``; raise
    `trio.TooSlowError` once a write has stalled for ``idle_timeout_s``, or once ``reader``
    (if given) has received nothing for that long."""
    while True:
        await trio.sleep(keepalive_interval_s / 2)
        now = trio.current_time()
        if reader is not None and now - reader.last_received >= idle_timeout_s:
            raise trio.TooSlowError
        if writer.busy_since is not None:
            if now - writer.busy_since >= idle_timeout_s:
                raise trio.TooSlowError
        elif now - writer.last_write >= keepalive_interval_s:
            writer.last_write = now
            with contextlib.suppress(trio.WouldBlock):
                outbox.send_nowait(b"")  # a full queue means writes are due anyway
