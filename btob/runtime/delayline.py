"""Frames that must leave later: a bounded queue sent in due order."""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import trio

__all__ = ["DelayLine"]


class DelayLine:
    """Frames held back (by a fault or a simulated link), each sent once its time comes.

    :meth:`put` never blocks; :meth:`run`, a task of the node's nursery, sends them in order of
    due time (a heap, so a short delay overtakes a long one). At most ``capacity`` frames wait
    in the queue; more are refused.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._send, self._receive = trio.open_memory_channel[tuple[float, int, bytes]](capacity)

    def put(self, due: float, dest: int, frame: bytes) -> bool:
        """Send ``frame`` to ``dest`` at trio time ``due``; False if the queue is full."""
        try:
            self._send.send_nowait((due, dest, frame))
        except trio.WouldBlock:
            return False
        return True

    async def run(self, send: Callable[[int, bytes], object]) -> None:
        """Send every frame at its time with ``send(dest, frame)``, forever."""
        pending: list[tuple[float, int, int, bytes]] = []
        seq = 0
        while True:
            timeout = pending[0][0] - trio.current_time() if pending else math.inf
            with trio.move_on_after(max(timeout, 0)):
                due, dest, frame = await self._receive.receive()
                seq += 1
                heapq.heappush(pending, (due, seq, dest, frame))
            now = trio.current_time()
            while pending and pending[0][0] <= now:
                _, _, dest, frame = heapq.heappop(pending)
                send(dest, frame)
