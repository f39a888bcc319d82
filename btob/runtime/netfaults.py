"""Network faults between real processes: a ``--net`` spec around a real transport.

Process faults (crash, pause, slow, Byzantine behaviours) are not here: they wrap the member's
core (:class:`btob.faults._driver.FaultyCore`), in the runtime exactly as in the simulator.
What a network does to frames in flight - loss and extra delay before GST, duplication,
latency, partitions, one-way cuts, clogged links - is applied to what this member sends, with
each message's fate drawn by :meth:`btob.faults.NetSpec.route`, the simulator's own rule, on a
clock that starts when the transport is made.
"""

from __future__ import annotations

import random

import trio

from btob.faults._network import NetSpec
from btob.runtime.delayline import DelayLine
from btob.runtime.node import Transport

__all__ = ["NetFaultTransport"]


class NetFaultTransport:
    """Network faults on what this member sends over ``inner`` (each sender applies its own
    links' faults, so the cluster's links all behave as the spec says)."""

    def __init__(self, inner: Transport, net: NetSpec, *, member: int, seed: int = 0) -> None:
        self._inner = inner
        self._net = net
        self._member = member
        self._rng = random.Random(f"net/{seed}/{member}")
        self._start = trio.current_time()
        self._line = DelayLine()
        self.dropped = 0
        """Frames lost on the wire (by the spec) or because the delay queue was full."""
        self.delivered = 0
        """Copies of frames sent on, each after the delay the spec drew for it."""
        self.duplicated = 0
        """Frames sent twice (``dup``)."""
        self.delay_s = 0.0
        """The delays drawn, summed: how much later than at once the frames arrived."""

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Send ``frame`` to ``dest`` through the simulated link conditions."""
        now = trio.current_time()
        delays = self._net.route(self._rng, self._member, dest, now - self._start)
        if not delays:
            self.dropped += 1
            return True  # lost on the wire: the sender cannot tell
        self.duplicated += len(delays) - 1
        for delay in delays:
            if self._line.put(now + delay, dest, frame):
                self.delivered += 1
                self.delay_s += delay
            else:
                self.dropped += 1
        return True

    async def receive(self) -> tuple[int, bytes]:
        """Frames from peers, unchanged (each sender applies its own link faults)."""
        return await self._inner.receive()

    async def run(self) -> None:
        """Deliver the delayed frames in due order (the node runs this in its nursery)."""
        await self._line.run(self._inner.send_nowait)
