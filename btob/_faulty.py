"""faults/ behaviours around a real transport: the runtime counterpart of the simulator's
fault hooks (the same :class:`faults._behaviours.ProcessFault` objects)."""

from __future__ import annotations

import random

import trio

from btob._runtime import Transport
from btob._settings import Settings
from btob._wire import Message, Signed, decode_frame
from crypto import Signer, SigningKey
from faults._behaviours import FaultContext, ProcessFault, make_fault
from faults._spec import FaultSpec

__all__ = ["FaultyTransport"]


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
