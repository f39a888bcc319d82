"""The in-memory transport: links between members of one process, for embedding and tests.

Frames are handed over as they are (no copy, no framing); each member has one bounded queue,
and a full queue drops and counts, as a congested TCP peer would. The protocol above never
relies on a frame arriving: it retransmits what matters.
"""

from __future__ import annotations

import trio

__all__ = ["MemoryNetwork", "MemoryTransport"]


class MemoryTransport:
    """One member's end of a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork, member: int) -> None:
        self._network = network
        self.member = member
        self._send, self._receive = trio.open_memory_channel[tuple[int, bytes]](
            network.queue_frames_max
        )
        self.dropped = 0

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Queue ``frame`` for ``dest``; False (and counted) when its queue is full."""
        if dest == self.member or not 0 <= dest < len(self._network.endpoints):
            return False
        try:
            self._network.endpoints[dest]._send.send_nowait((self.member, frame))
        except trio.WouldBlock:
            self.dropped += 1
            return False
        return True

    async def receive(self) -> tuple[int, bytes]:
        """The next ``(source, frame)`` for this member."""
        return await self._receive.receive()


class MemoryNetwork:
    """In-process links between ``n`` members with bounded per-member queues."""

    def __init__(self, n: int, *, queue_frames_max: int = 8192) -> None:
        self.queue_frames_max = queue_frames_max
        self.endpoints: list[MemoryTransport] = []
        self.endpoints.extend(MemoryTransport(self, i) for i in range(n))
