"""The Trio runtime: one :class:`~btob.Member` driven for real, as an embeddable node.

One driver task owns the member. Inputs - frames from the transport, ticks from a timer task,
payloads from :meth:`Node.broadcast` - reach it through one bounded channel; it applies a batch
of them, appends them to the input log when there is a data directory (group commit), and only
then sends the frames they produced and publishes the deliveries: persist, send, deliver.
Everything runs in the caller's nursery; cancelling it leaves nothing half-sent, because a
frame leaves only after the inputs that caused it are durable.

A member with an injected fault is driven through the same
:class:`~btob.faults._driver.FaultyCore` as in the simulator, on a clock that starts when the
node does: the driver waits while the fault holds the member (a pause, a slow CPU's previous
input), sends each frame as late as the fault says, and a crashed member takes nothing more.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import attrs
import trio

from btob._errors import BtobError, ConfigError, DeliveryNotRetained
from btob.core.contract import Core, MemberStatistics
from btob.core.delivery import Delivery, MsgId
from btob.core.member import BacklogFull, Member, PayloadTooLarge
from btob.core.settings import Settings
from btob.crypto import SigningKey
from btob.faults._driver import FaultEffects, FaultyCore, faulty_core
from btob.faults._spec import FaultSpec, parse_fault
from btob.runtime.config import ClusterConfig
from btob.runtime.delayline import DelayLine
from btob.runtime.nursery import open_background_nursery
from btob.runtime.store import INPUT_RECEIVE, INPUT_SUBMIT, INPUT_TICK, InputLog, identity_of

__all__ = [
    "Core", "Node", "NodeStatistics", "Transport", "member_identity", "open_core_node",
    "open_node",
]


class Transport(Protocol):
    """What a node needs from a network: best-effort sends, authenticated receives."""

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Queue ``frame`` for ``dest``; False if it was dropped (bounded queues)."""

    async def receive(self) -> tuple[int, bytes]:
        """The next ``(source, frame)``."""


@attrs.frozen
class NodeStatistics:
    """A snapshot of a running node: the member's counters plus the driver's."""

    member: MemberStatistics
    frames_dropped_by_transport: int
    inputs_logged: int
    inputs_replayed: int
    deliveries_retained: int
    delivery_bytes_retained: int
    """Payload bytes of the retained deliveries."""
    fault: FaultEffects | None = None
    """What the member's injected fault did so far (None without a fault)."""


@attrs.define
class _Submit:
    payloads: list[bytes]
    done: trio.Event = attrs.field(factory=trio.Event)
    msg_ids: list[MsgId] = attrs.field(factory=list)
    """Ids of the leading payloads the member accepted (all of them unless ``error``)."""
    error: BtobError | None = None


_TICK = object()


class Node:
    """A running member. Obtain one from :func:`open_node`; do not construct it directly."""

    def __init__(self, member: Core, transport: Transport, store: InputLog | None, *,
                 inbox_max: int) -> None:
        self.id = member.member
        self._member = member
        self._faulty = member if isinstance(member, FaultyCore) else None
        self._transport = transport
        self._store = store
        self._offset = 0.0
        self._inbox_send, self._inbox = trio.open_memory_channel[object](inbox_max)
        settings = member.settings
        self._retain_count = settings.deliveries_retained_max
        self._retain_bytes = settings.deliveries_retained_bytes_max
        self._delivered: deque[Delivery] = deque()
        self._delivered_bytes = 0
        self._delivered_count = 0
        self._changed = trio.Event()
        self._delayed = DelayLine()
        self._dropped = 0
        self._logged = 0
        self._replayed = 0
        self.submitted_before_start = 0
        """Payloads this member had broadcast before this run (from its input log)."""

    # -- public API ---------------------------------------------------------------------

    async def broadcast(self, payload: bytes) -> MsgId:
        """TO-broadcast ``payload`` and return its message id once it is durably accepted.

        Waits (backpressure) while the member's backlog of unbatched payloads is full.
        Raises :class:`PayloadTooLarge` for an oversized payload, and
        :class:`~btob.MemberCrashed` once an injected crash stopped the member.
        """
        return (await self.broadcast_many((payload,)))[0]

    async def broadcast_many(self, payloads: Sequence[bytes]) -> list[MsgId]:
        """TO-broadcast ``payloads`` in this order; their ids once all are durably accepted.

        One trip through the driver for all of them, so a client with many payloads at hand
        is not limited to one payload per driver step. Waits (backpressure) while the backlog
        is full. Raises :class:`PayloadTooLarge`, before accepting any, if one is oversized.
        """
        limit = self._member.settings.payload_bytes_max
        remaining = [bytes(p) for p in payloads]
        for payload in remaining:
            if len(payload) > limit:
                raise PayloadTooLarge(f"payload of {len(payload)} bytes exceeds {limit}")
        ids: list[MsgId] = []
        while remaining:
            request = _Submit(remaining)
            await self._inbox_send.send(request)
            await request.done.wait()
            ids += request.msg_ids
            remaining = remaining[len(request.msg_ids):]
            if isinstance(request.error, BacklogFull):
                await self._wait_change()
            elif request.error is not None:
                raise request.error
        return ids

    async def deliveries(self, start: int = 0) -> AsyncIterator[Delivery]:
        """Deliveries from index ``start`` on, waiting for new ones forever.

        Raises :class:`~btob.DeliveryNotRetained` (naming the oldest index kept) if ``start``
        is older than what the node retains, or once this reader falls that far behind.
        """
        index = start
        while True:
            first = self._delivered_count - len(self._delivered)
            if index < first:
                raise DeliveryNotRetained(index, first)
            while index < self._delivered_count:
                yield self._delivered[index - first]
                index += 1
                first = self._delivered_count - len(self._delivered)
                if index < first:
                    raise DeliveryNotRetained(index, first)
            await self._wait_change()

    @property
    def delivered(self) -> int:
        """Deliveries made so far (the next delivery's index)."""
        return self._delivered_count

    @property
    def view(self) -> int:
        """The member's current view."""
        return self._member.view

    @property
    def crashed(self) -> bool:
        """True once an injected crash stopped the member."""
        return self._faulty is not None and self._faulty.crashed

    def statistics(self) -> NodeStatistics:
        """A frozen snapshot of counters."""
        fault = None if self._faulty is None else self._faulty.effects()
        return NodeStatistics(self._member.statistics(), self._dropped, self._logged,
                              self._replayed, len(self._delivered), self._delivered_bytes,
                              fault)

    # -- driver ---------------------------------------------------------------------------

    def _now(self) -> float:
        return trio.current_time() + self._offset

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _retain(self, deliveries: list[Delivery]) -> None:
        """Keep new deliveries for readers, within the count and byte bounds."""
        self._delivered.extend(deliveries)
        self._delivered_count += len(deliveries)
        self._delivered_bytes += sum(len(d.payload) for d in deliveries)
        retained = self._delivered
        while len(retained) > self._retain_count or self._delivered_bytes > self._retain_bytes:
            self._delivered_bytes -= len(retained.popleft().payload)

    def _publish(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self._retain(deliveries)
        self._changed.set()
        self._changed = trio.Event()

    def replay(self) -> None:
        """Rebuild the member from the input log (before any task starts)."""
        if self._store is None:
            return
        member = self._member
        last = None
        for kind, now, data in self._store.replay():
            if kind == INPUT_SUBMIT:
                member.submit(data, now)
                self.submitted_before_start += 1
            elif kind == INPUT_RECEIVE:
                member.receive(data, now)
            else:
                member.tick(now)
            _, deliveries = member.take_outputs()
            if deliveries:
                self._retain(deliveries)
            self._replayed += 1
            last = now
        if last is not None:
            # Node time continues where the log stopped, whatever the new process's clock says.
            self._offset = last + 1e-3 - trio.current_time()

    def started(self) -> None:
        """The node's tasks start now: a fault's clock counts from here."""
        if self._faulty is not None:
            self._faulty.started_at = self._now()

    async def _drive(self) -> None:
        member, faulty = self._member, self._faulty
        while True:
            batch = [await self._inbox.receive()]
            while len(batch) < 256:
                try:
                    batch.append(self._inbox.receive_nowait())
                except trio.WouldBlock:
                    break
            rows: list[tuple[int, float, bytes]] = []
            answered: list[_Submit] = []
            for item in batch:
                if faulty is not None:
                    ready = faulty.ready_at(self._now())
                    if ready > self._now():  # paused, or a slow CPU still busy
                        self._flush(rows, answered)
                        rows, answered = [], []
                        await trio.sleep_until(ready - self._offset)
                now = self._now()
                if item is _TICK:
                    member.tick(now)
                    rows.append((INPUT_TICK, now, b""))
                elif isinstance(item, _Submit):
                    for payload in item.payloads:
                        try:
                            item.msg_ids.append(member.submit(payload, now))
                        except BtobError as exc:
                            item.error = exc
                            break
                        rows.append((INPUT_SUBMIT, now, payload))
                    answered.append(item)
                else:
                    assert isinstance(item, tuple)
                    source, frame = item
                    member.receive(frame, now, source=source)
                    rows.append((INPUT_RECEIVE, now, frame))
            self._flush(rows, answered)

    def _flush(self, rows: list[tuple[int, float, bytes]], answered: list[_Submit]) -> None:
        """Persist the inputs applied, then send what they caused, then deliver."""
        frames, deliveries = self._member.take_outputs()
        if self._store is not None:
            self._store.append(rows)  # durable before anything it caused leaves
            self._logged += len(rows)
        due = trio.current_time()
        for out in frames:
            if out.delay_s > 0:
                sent = self._delayed.put(due + out.delay_s, out.destination, out.frame)
            else:
                sent = self._transport.send_nowait(out.destination, out.frame)
            if not sent:
                self._dropped += 1
        for request in answered:
            request.done.set()
        self._publish(deliveries)

    def _send_later(self, dest: int, frame: bytes) -> None:
        if not self._transport.send_nowait(dest, frame):
            self._dropped += 1

    async def _send_delayed(self) -> None:
        await self._delayed.run(self._send_later)

    async def _receive_loop(self) -> None:
        while True:
            item = await self._transport.receive()
            try:
                self._inbox_send.send_nowait(item)  # no extra trip through the scheduler
            except trio.WouldBlock:
                await self._inbox_send.send(item)

    async def _tick_loop(self, interval: float) -> None:
        while True:
            await trio.sleep(interval)
            await self._inbox_send.send(_TICK)


def member_identity(config: ClusterConfig, node_id: int,
                    settings: Settings | None = None) -> dict[str, object]:
    """What member ``node_id``'s data directory belongs to when it runs ``config`` with
    ``settings`` (default: the cluster's): see :func:`btob.runtime.store.identity_of`."""
    return identity_of(cluster_id=config.cluster_id, member=node_id,
                       public_key=config.registry.public_key(node_id), n=config.n,
                       f=config.quorums.f, brb=config.brb, variant=config.variant,
                       settings=config.member_settings(settings))


@asynccontextmanager
async def open_node(
    config: ClusterConfig,
    node_id: int,
    signing_key: SigningKey,
    *,
    transport: Transport | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    brb: str | None = None,
    variant: str | None = None,
    fault: FaultSpec | str | None = None,
    seed: int = 0,
    tick_interval_s: float = 0.05,
    transport_wrapper: Callable[[Transport], Transport] | None = None,
) -> AsyncIterator[Node]:
    """Run member ``node_id`` of ``config`` for the duration of the ``async with`` block.

    The reliable broadcast, the variant and the cluster-wide settings are the cluster's
    (``config``); ``brb`` and ``variant`` may be given only if they agree, and ``settings``
    - the member's own tuning - must agree on every cluster-wide field. ``fault`` (a
    :class:`~btob.faults.FaultSpec` or ``"ID=BEHAVIOUR[:k=v,...]"`` text naming this member)
    injects a fault behaviour, driven as in the simulator with time counted from the node's
    start; its choices are drawn from ``seed``. Without ``transport`` a TCP transport on
    ``config.addresses[node_id]`` is started. With ``data_dir`` every input is logged durably
    before its effects leave the node, and a node reopened on the same directory resumes where
    it stopped (see :mod:`btob.runtime.store`); the directory records the configuration it was
    created with, and another one is refused.

    Raises :class:`ConfigError` for a bad key, id, fault, configuration or data directory. An
    exception raised in the ``async with`` block propagates as itself; failures of the node's
    own tasks (its transport, its driver) propagate as an ``ExceptionGroup``.
    """
    brb = config.agreed("brb", brb)
    variant = config.agreed("variant", variant)
    effective = config.member_settings(settings)

    def make_member() -> Member:
        return Member(member=node_id, registry=config.registry, signing_key=signing_key,
                      cluster_id=config.cluster_id, f=config.f, brb=brb, variant=variant,
                      settings=effective)

    core: Core = make_member()
    if fault is not None:
        spec = parse_fault(fault, config.n) if isinstance(fault, str) else fault
        if spec.member != node_id:
            raise ConfigError(f"fault {spec} names member {spec.member}, not this node "
                              f"({node_id})")
        core = faulty_core(spec, make_member, n=config.n, signing_key=signing_key,
                           cluster_id=config.cluster_id, settings=effective, seed=seed)
    identity = member_identity(config, node_id, effective)
    async with open_core_node(core, config, signing_key, transport=transport,
                              data_dir=data_dir, identity=identity,
                              tick_interval_s=tick_interval_s,
                              transport_wrapper=transport_wrapper) as node:
        yield node


@asynccontextmanager
async def open_core_node(
    core: Core,
    config: ClusterConfig,
    signing_key: SigningKey,
    *,
    transport: Transport | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    identity: dict[str, object] | None = None,
    tick_interval_s: float = 0.05,
    transport_wrapper: Callable[[Transport], Transport] | None = None,
) -> AsyncIterator[Node]:
    """Like :func:`open_node`, but drive a ready-made ``core`` (member ``core.member``).

    ``signing_key`` authenticates the TCP handshake of the default transport. ``identity``
    is what a data directory must belong to (default: the cluster, the member and its key).
    The driver ticks at least as often as ``core.settings.batch_delay_s`` so delayed batches
    leave on time.
    """
    node_id = core.member
    delay = core.settings.batch_delay_s
    if delay > 0:
        tick_interval_s = min(tick_interval_s, delay)
    if identity is None:
        identity = {"cluster_id": config.cluster_id.hex(), "member": node_id,
                    "public_key": config.registry.public_key(node_id).hex()}
    store = InputLog(data_dir, identity=identity) if data_dir else None
    try:
        # What the caller's block (or our own setup) raises arrives as itself, not wrapped in a
        # group per node; failures of the tasks below still arrive as trio's group.
        async with open_background_nursery() as nursery:
            if transport is None:
                from btob.crypto import Signer, Verifier
                from btob.runtime.tcp import TcpTransport

                tcp = TcpTransport(
                    config=config, member=node_id,
                    signer=Signer(signing_key, cluster_id=config.cluster_id),
                    verifier=Verifier(config.registry, cluster_id=config.cluster_id),
                )
                await nursery.start(tcp.serve)
                transport = tcp
            if transport_wrapper is not None:
                transport = transport_wrapper(transport)
            run = getattr(transport, "run", None)
            if run is not None:  # a wrapper with work of its own (delayed frames)
                nursery.start_soon(run)
            node = Node(core, transport, store, inbox_max=1024)
            node.replay()
            node.started()
            nursery.start_soon(node._drive)
            nursery.start_soon(node._send_delayed)
            nursery.start_soon(node._receive_loop)
            nursery.start_soon(node._tick_loop, tick_interval_s)
            yield node
            nursery.cancel_scope.cancel()
    finally:
        if store is not None:
            store.close()
