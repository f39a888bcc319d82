"""faults/ behaviours around a real transport: the runtime counterpart of the simulator's
fault hooks (the same :class:`btob.faults._behaviours.ProcessFault` objects)."""

from __future__ import annotations

import heapq
import math
import random

import trio

from btob.core.settings import Settings
from btob.core.wire import Message, Signed, decode_frame
from btob.crypto import Signer, SigningKey
from btob.faults._behaviours import FaultContext, ProcessFault, make_fault
from btob.faults._network import NetSpec
from btob.faults._spec import FaultSpec
from btob.runtime.node import Transport

__all__ = ["FaultyTransport", "NetFaultTransport"]


class FaultyTransport:
    """Applies one member's fault behaviour to what it sends and receives over ``inner``.

    Delayed frames and injected frames are sent by :meth:`run`, which the node starts in its
    nursery. After a crash the member neither sends nor receives.
    """

    def __init__(self, inner: Transport, spec: FaultSpec, *, n: int, signing_key: SigningKey,
                 cluster_id: bytes, settings: Settings, seed: int = 0) -> None:
        self._inner = inner
        member = spec.member
        signer = Signer(signing_key, cluster_id=cluster_id)

        def resign(message: Message) -> bytes:
            return Signed.create(member, message, signer.sign).to_frame()

        def resign_for(message: Message, cluster_id: bytes) -> bytes:
            foreign = Signer(signing_key, cluster_id=cluster_id)
            return Signed.create(member, message, foreign.sign).to_frame()

        ctx = FaultContext(member=member, n=n, rng=random.Random(f"fault/{seed}/{member}"),
                           settings=settings, resign=resign, resign_for_cluster=resign_for)
        self.fault: ProcessFault = make_fault(spec, ctx)
        self.crashed = False
        self._delayed_send, self._delayed = trio.open_memory_channel[tuple[float, int, bytes]](
            4096
        )

    def _time(self) -> float:
        self.fault.ctx.now = trio.current_time()
        return self.fault.ctx.now

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Send ``frame`` as the fault behaviour decides (maybe rewritten, delayed, dropped)."""
        now = self._time()
        at = self.fault.param("at") if "at" in self.fault.spec.params else 0.0
        if self.crashed or (self.fault.spec.behaviour == "crash" and now >= at
                            and not self.fault.param("after") and not self.fault.text("step")):
            self.crashed = True
            return False
        signed = decode_frame(frame).parse()
        if self.fault.crash_on_send(signed.kind):
            self.crashed = True
            return False
        for target, out, delay in self.fault.outgoing(dest, frame, signed):
            if delay > 0:
                try:
                    self._delayed_send.send_nowait((now + delay, target, out))
                except trio.WouldBlock:
                    return False
            else:
                self._inner.send_nowait(target, out)
        return True

    async def receive(self) -> tuple[int, bytes]:
        """The next frame the behaviour lets through."""
        while True:
            source, frame = await self._inner.receive()
            self._time()
            if self.crashed:
                continue
            if self.fault.incoming(source, frame):
                return source, frame

    async def run(self) -> None:
        """Send delayed frames when due and inject the behaviour's own frames every 50 ms."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_delayed)
            inner_run = getattr(self._inner, "run", None)
            if inner_run is not None:
                nursery.start_soon(inner_run)
            while True:
                await trio.sleep(0.05)
                self._time()
                if not self.crashed:
                    for dest, frame in self.fault.tick():
                        self._inner.send_nowait(dest, frame)

    async def _send_delayed(self) -> None:
        async for at, dest, frame in self._delayed:
            await trio.sleep_until(at)
            if not self.crashed:
                self._inner.send_nowait(dest, frame)


class NetFaultTransport:
    """Network faults between real processes: a ``--net`` spec applied to what this member
    sends (loss and extra delay before GST, duplication, latency, partitions, cuts, clogs),
    with times counted from when the transport was made."""

    def __init__(self, inner: Transport, net: NetSpec, *, member: int, seed: int = 0) -> None:
        self._inner = inner
        self._net = net
        self._member = member
        self._rng = random.Random(f"net/{seed}/{member}")
        self._start = trio.current_time()
        self._queued_send, self._queued = trio.open_memory_channel[tuple[float, int, bytes]](
            4096
        )
        self.dropped = 0

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Send ``frame`` to ``dest`` through the simulated link conditions."""
        now = trio.current_time()
        t = now - self._start
        net, rng = self._net, self._rng
        if net.cut(self._member, dest, t) or (t < net.gst and net.loss and
                                              rng.random() < net.loss):
            self.dropped += 1
            return True  # lost on the wire: the sender cannot tell
        copies = 2 if net.dup and rng.random() < net.dup else 1
        for _ in range(copies):
            due = now + net.sample_delay(rng, t, self._member, dest)
            try:
                self._queued_send.send_nowait((due, dest, frame))
            except trio.WouldBlock:
                self.dropped += 1
        return True

    async def receive(self) -> tuple[int, bytes]:
        """Frames from peers, unchanged (each sender applies its own link faults)."""
        return await self._inner.receive()

    async def run(self) -> None:
        """Deliver delayed frames in due order (a heap, so short delays overtake long ones)."""
        pending: list[tuple[float, int, int, bytes]] = []
        seq = 0
        while True:
            timeout = pending[0][0] - trio.current_time() if pending else math.inf
            with trio.move_on_after(max(timeout, 0)):
                due, dest, frame = await self._queued.receive()
                seq += 1
                heapq.heappush(pending, (due, seq, dest, frame))
            now = trio.current_time()
            while pending and pending[0][0] <= now:
                _, _, dest, frame = heapq.heappop(pending)
                self._inner.send_nowait(dest, frame)
