"""The Trio runtime: one :class:`~btob.Member` driven for real, as an embeddable node.

One driver task owns the member. Inputs - frames from the transport, ticks from a timer task,
payloads from :meth:`Node.broadcast`, client REQUESTs from the client port - reach it through
one bounded channel; it applies a batch of them and takes what the batch produced: frames,
deliveries, receipts for clients, and the changes to the member's durable state
(:mod:`btob.core.durable`). Without a data directory it sends the frames, answers the batch's
broadcasts and publishes the deliveries at once. With one, the step waits for a committer
task: it merges the changes of every step that queued up while its previous commit ran (a
group commit), commits them to the :class:`~btob.runtime.store.DurableStore` in a worker
thread - fsync never blocks the event loop, and the driver goes on applying inputs - and only
then releases those steps, in order: persist, send, acknowledge, deliver, answer clients.
Steps waiting for a commit are bounded (count and bytes); past the bound the driver waits for
the committer. Everything runs in the caller's nursery; cancelling it leaves nothing half-sent,
because a frame leaves only after the changes that came with it are durable.

A member with an injected fault is driven through the same
:class:`~btob.faults._driver.FaultyCore` as in the simulator, on a clock that starts when the
node does: the driver waits while the fault holds the member (a pause, a slow CPU's previous
input), sends each frame as late as the fault says, and a crashed member takes nothing more.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Protocol

import attrs
import trio

from btob._errors import BtobError, ConfigError, DeliveryNotRetained, MemberCrashed
from btob.core.application import StateMachine
from btob.core.clientwire import Notice, decode_request
from btob.core.contract import Core, MemberStatistics, Outgoing
from btob.core.delivery import Delivery, MsgId
from btob.core.durable import DurableChanges
from btob.core.member import BacklogFull, ClientOutput, Member, PayloadTooLarge, RequestRefused
from btob.core.recovery import EncodedState, StateWork
from btob.core.settings import Settings
from btob.crypto import SigningKey
from btob.faults._driver import FaultEffects, FaultyCore, faulty_core
from btob.faults._spec import FaultSpec, parse_fault
from btob.runtime.clientport import ClientPort, ClientPortSettings
from btob.runtime.config import ClusterConfig
from btob.runtime.delayline import DelayLine
from btob.runtime.nursery import open_background_nursery
from btob.runtime.store import DurableStore, identity_of

__all__ = [
    "Core", "Node", "NodeStatistics", "SkippedDeliveries", "Transport", "member_identity",
    "open_core_node", "open_node",
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
    deliveries_retained: int
    delivery_bytes_retained: int
    """Payload bytes of the retained deliveries."""
    commits: int = 0
    """Transactions committed to the data directory (each a group of steps)."""
    steps_committed: int = 0
    """Driver steps whose durable changes those transactions held."""
    changes_committed: int = 0
    """Puts, deletes, slots and snapshots committed, after merging a group's steps."""
    commit_seconds: float = 0.0
    """Time spent in commits (in a worker thread, while the driver went on)."""
    slots_restored: int = 0
    """Delivered slots above the snapshot that the member resumed from at start."""
    store_bytes: int = 0
    """Bytes of the data directory's database and write-ahead log (0 without one)."""
    fault: FaultEffects | None = None
    """What the member's injected fault did so far (None without a fault)."""


@attrs.frozen
class SkippedDeliveries:
    """Delivery indices ``start`` to ``end - 1`` that this node never made: its member took
    the state at a stable checkpoint instead, where those deliveries are settled."""

    start: int
    end: int
    by: str
    """``"restore"``: below the snapshot the member resumed from (an earlier run made them);
    ``"transfer"``: jumped over by a state transfer (the peers made them)."""


@attrs.define
class _Submit:
    payloads: list[bytes]
    done: trio.Event = attrs.field(factory=trio.Event)
    msg_ids: list[MsgId] = attrs.field(factory=list)
    """Ids of the leading payloads the member accepted (all of them unless ``error``)."""
    error: BtobError | None = None


@attrs.frozen
class _ClientRequest:
    """A REQUEST frame from the client holding key ``client``, through the client port."""

    client: bytes
    frame: bytes


@attrs.frozen
class _Reply:
    """An application's result for a delivered client request (:meth:`Node.reply`)."""

    delivery: Delivery
    result: bytes


@attrs.frozen
class _StateDone:
    """A checkpoint boundary's state, encoded and hashed in a worker thread."""

    done: EncodedState


_STATE_WORK_MAX = 2
"""Boundaries' states being encoded at once, at most; the driver waits before taking more
input (each holds the application's snapshot: a member that cannot keep up must not pile
them up)."""


@attrs.define
class _Step:
    """What one driver step produced, held until its durable changes are committed."""

    changes: DurableChanges
    frames: list[Outgoing]
    deliveries: list[Delivery]
    answered: list[_Submit]
    made_at: float
    """Trio time the step was taken: a fault's frame delay counts from here."""
    client_frames: list[ClientOutput] = attrs.field(factory=list)
    """RECEIPTs and NOTICEs for clients, each with the key of the client it is for."""
    held_bytes: int = attrs.field(init=False)
    """What the step holds in memory until it is released: frames, delivered payloads and
    client frames."""

    @held_bytes.default
    def _held_bytes(self) -> int:
        return (sum(len(out.frame) for out in self.frames)
                + sum(len(d.payload) for d in self.deliveries)
                + sum(len(frame) for _, frame in self.client_frames))


_TICK = object()

_HELD_STEPS_MAX = 256
_HELD_BYTES_MAX = 16 << 20
"""Past either bound of steps waiting for a commit (their frames and deliveries), the driver
stops applying inputs until the committer catches up: a slow disk slows the member down
instead of growing its memory."""


def _merged(changes: Sequence[DurableChanges]) -> DurableChanges:
    """``changes`` merged in order, pairwise as a balanced tree: each ``then`` copies what it
    merges, so merging one by one would cost the square of the group's size."""
    if len(changes) == 1:
        return changes[0]
    middle = len(changes) // 2
    return _merged(changes[:middle]).then(_merged(changes[middle:]))


def _change_count(changes: DurableChanges) -> int:
    return (len(changes.put) + len(changes.delete) + len(changes.slots)
            + (changes.snapshot is not None))


class Node:
    """A running member. Obtain one from :func:`open_node`; do not construct it directly."""

    def __init__(self, member: Core, transport: Transport, store: DurableStore | None, *,
                 inbox_max: int, client_port: ClientPort | None = None) -> None:
        self.id = member.member
        self._member = member
        self.client_port = client_port
        """Where this node serves clients (None: it serves none)."""
        # Notices for refused requests, released with the next step like its receipts.
        self._notices: list[ClientOutput] = []
        self._faulty = member if isinstance(member, FaultyCore) else None
        self._transport = transport
        self._store = store
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
        # Steps waiting for the committer (``_queued``), and every step taken but not yet
        # released, the one being committed included (``_held_*``).
        self._queued: list[_Step] = []
        self._held_steps = 0
        self._held_bytes = 0
        self._work = trio.Event()
        self._progress = trio.Event()
        self._commits = 0
        self._steps_committed = 0
        self._changes_committed = 0
        self._commit_seconds = 0.0
        self._slots_restored = 0
        self._skipped: list[SkippedDeliveries] = []
        self._restoring = False
        self._transfers_seen = 0
        # Checkpoint states are encoded and hashed in a worker thread, not on the event loop.
        if hasattr(member, "defer_state_work"):
            setattr(member, "defer_state_work", True)  # noqa: B010 - not part of Core
        self._state_work: deque[StateWork] = deque()
        self._state_pending = 0
        self._state_wake = trio.Event()
        self._state_progress = trio.Event()

    # -- public API ---------------------------------------------------------------------

    async def broadcast(self, payload: bytes) -> MsgId:
        """TO-broadcast ``payload`` and return its message id once it is durably accepted.

        Waits (backpressure) while the member's backlog of unbatched payloads is full.
        Raises :class:`PayloadTooLarge` for an oversized payload, and
        :class:`~btob.MemberCrashed` once an injected crash stopped the member.
        """
        return (await self.broadcast_many((payload,)))[0]

    async def reply(self, delivery: Delivery, result: bytes) -> None:
        """Send the client whose request ``delivery`` is ``result``, as this member's signed
        REPLY (BFT-SMaRt's ordered invocation: a client takes a result once f+1 members sent
        it). For an application that consumes :meth:`deliveries` instead of running inside
        the member (a :class:`~btob.StateMachine` replies by returning the result from
        ``apply``). Raises ValueError for a delivery that is no client's request."""
        if not delivery.client:
            raise ValueError("only a client's request can be replied to")
        await self._inbox_send.send(_Reply(delivery, bytes(result)))

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
    def skipped(self) -> tuple[SkippedDeliveries, ...]:
        """The runs of delivery indices this node never made, in order: those below the
        snapshot it resumed from, and those a state transfer jumped over. A reader of
        :meth:`deliveries` asking for one of them gets :class:`~btob.DeliveryNotRetained`."""
        return tuple(self._skipped)

    async def next_payload_counter(self) -> int:
        """The counter of the next payload this member accepts (its message id is
        ``member:counter``), once the member knows it: at once, unless it was restored from an
        empty data directory and still learns from its peers where its counters stand."""
        while True:
            statistics = self._member.statistics()
            if statistics.counters_known:
                return statistics.payloads_submitted
            await self._wait_change()

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
        return NodeStatistics(
            self._member.statistics(), self._dropped, len(self._delivered),
            self._delivered_bytes, commits=self._commits,
            steps_committed=self._steps_committed, changes_committed=self._changes_committed,
            commit_seconds=self._commit_seconds, slots_restored=self._slots_restored,
            store_bytes=0 if self._store is None else self._store.file_bytes(), fault=fault)

    # -- driver ---------------------------------------------------------------------------

    def _now(self) -> float:
        return trio.current_time()

    async def _wait_change(self) -> None:
        await self._changed.wait()

    def _retain(self, deliveries: list[Delivery]) -> None:
        """Keep new deliveries for readers, within the count and byte bounds."""
        first = deliveries[0].index
        if first != self._delivered_count:
            # A restored member re-delivers from its snapshot on, with the indices they had,
            # and a state transfer jumps ahead: what is retained must stay one run of
            # consecutive indices.
            assert first > self._delivered_count, (first, self._delivered_count)
            transfers = self._member.statistics().transfer.completed
            by = "restore" if self._restoring else "transfer"
            assert by == "restore" or transfers > self._transfers_seen, \
                f"deliveries skipped from {self._delivered_count} to {first} without a transfer"
            self._transfers_seen = transfers
            self._skipped.append(SkippedDeliveries(self._delivered_count, first, by))
            self._delivered.clear()
            self._delivered_bytes = 0
            self._delivered_count = first
        self._delivered.extend(deliveries)
        self._delivered_count += len(deliveries)
        self._delivered_bytes += sum(len(d.payload) for d in deliveries)
        retained = self._delivered
        while len(retained) > self._retain_count or self._delivered_bytes > self._retain_bytes:
            self._delivered_bytes -= len(retained.popleft().payload)

    def _notify(self) -> None:
        """Wake readers and broadcasts waiting for room in the backlog."""
        self._changed.set()
        self._changed = trio.Event()

    async def restore(self) -> None:
        """Resume the member from its data directory's committed state (before the node's
        tasks start), and publish the deliveries it makes again: the slots above its snapshot,
        with their original indices."""
        store = self._store
        if store is None:
            return
        state = await trio.to_thread.run_sync(store.load)
        # An empty state is a new directory - or a wiped one: the member learns its counters
        # from its peers before it takes a payload.
        self._member.restore(state, self._now())
        self._slots_restored = len(state.slots)
        frames, deliveries = self._member.take_outputs()
        step = _Step(self._member.take_durable(), frames, deliveries, [], trio.current_time(),
                     self._client_outputs())
        self._take_state_work()
        if step.changes:
            await self._commit([step])
        self._restoring = True
        try:
            self._release([step])
        finally:
            self._restoring = False
        # Resumed from a snapshot with nothing above it, the member delivers nothing again:
        # its next delivery continues at the snapshot's index all the same.
        resumed_at = self._member.statistics().deliveries
        if resumed_at > self._delivered_count:
            self._skipped.append(SkippedDeliveries(self._delivered_count, resumed_at,
                                                   "restore"))
            self._delivered_count = resumed_at

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
            answered: list[_Submit] = []
            for item in batch:
                if faulty is not None:
                    ready = faulty.ready_at(self._now())
                    if ready > self._now():  # paused, or a slow CPU still busy
                        await self._step(answered)
                        answered = []
                        await trio.sleep_until(ready)
                now = self._now()
                if item is _TICK:
                    member.tick(now)
                elif isinstance(item, _StateDone):
                    member.state_done(item.done, now)  # type: ignore[attr-defined]
                elif isinstance(item, _ClientRequest):
                    self._take_request(item, now)
                elif isinstance(item, _Reply):
                    reply = getattr(member, "reply", None)
                    if reply is not None:  # a core without clients has none to answer
                        reply(item.delivery, item.result)
                elif isinstance(item, _Submit):
                    for payload in item.payloads:
                        try:
                            item.msg_ids.append(member.submit(payload, now))
                        except BtobError as exc:
                            item.error = exc
                            break
                    answered.append(item)
                else:
                    assert isinstance(item, tuple)
                    source, frame = item
                    member.receive(frame, now, source=source)
            await self._step(answered)

    def _take_request(self, item: _ClientRequest, now: float) -> None:
        """Hand a client's REQUEST to the member; a refusal becomes a NOTICE for the client."""
        submit = getattr(self._member, "submit_request", None)
        try:
            if submit is None:  # a core without clients (an injected fault's wrapper)
                raise RequestRefused("this member takes no client requests")
            submit(item.frame, now)
        except MemberCrashed:
            pass  # an injected crash: a crashed member answers nobody
        except RequestRefused as exc:
            session = number = 0
            try:
                request = decode_request(item.frame, frame_bytes_max=len(item.frame))[0]
                session, number = request.session, request.seq
            except BtobError:
                pass  # the notice still says why; the client matches it as best it can
            self._notices.append((item.client, Notice(session, number, str(exc)).to_frame()))

    def _client_outputs(self) -> list[ClientOutput]:
        """The member's RECEIPTs and NOTICEs since the last step, and the node's notices."""
        take = getattr(self._member, "take_client_outputs", None)
        outputs = self._notices + ([] if take is None else list(take()))
        self._notices = []
        return outputs

    async def _step(self, answered: list[_Submit]) -> None:
        """Take what the inputs applied since the last step produced, and release it - at
        once if nothing must be committed first, else once the committer has committed it."""
        frames, deliveries = self._member.take_outputs()
        step = _Step(self._member.take_durable(), frames, deliveries, answered,
                     trio.current_time(), self._client_outputs())
        self._take_state_work()
        while self._state_pending > _STATE_WORK_MAX:
            await self._state_progress.wait()
        if self._store is None or (not step.changes and self._held_steps == 0):
            self._release([step])
            return
        # Behind a step that waits for its commit, even a step with nothing to commit waits:
        # its frames may repeat what that step signed (a retransmission).
        self._queued.append(step)
        self._held_steps += 1
        self._held_bytes += step.held_bytes
        self._work.set()
        while self._held_steps > _HELD_STEPS_MAX or self._held_bytes > _HELD_BYTES_MAX:
            await self._progress.wait()

    def _take_state_work(self) -> None:
        take = getattr(self._member, "take_state_work", None)
        if take is None:
            return
        work = take()
        if work:
            self._state_work.extend(work)
            self._state_pending += len(work)
            self._state_wake.set()

    async def _state_loop(self) -> None:
        """Encode and hash the checkpoint boundaries' states in a worker thread, in order, and
        hand each back to the member through the inbox; forever."""
        while True:
            if not self._state_work:
                self._state_wake = trio.Event()
                await self._state_wake.wait()
                continue
            work = self._state_work.popleft()
            done = await trio.to_thread.run_sync(work.run)
            # Counted done before the send: the driver may be waiting for room, and only it
            # empties the inbox.
            self._state_pending -= 1
            self._state_progress.set()
            self._state_progress = trio.Event()
            await self._inbox_send.send(_StateDone(done))

    async def _commit_loop(self) -> None:
        """Commit what the steps queued so far changed, as one transaction, then release
        them; forever."""
        while True:
            if not self._queued:
                self._work = trio.Event()
                await self._work.wait()
                continue
            steps, self._queued = self._queued, []
            await self._commit(steps)
            self._release(steps)
            self._held_steps -= len(steps)
            self._held_bytes -= sum(step.held_bytes for step in steps)
            self._progress.set()
            self._progress = trio.Event()

    async def _commit(self, steps: list[_Step]) -> None:
        """Merge and commit the changes of ``steps`` in a worker thread: the event loop goes
        on (merging a few hundred steps costs milliseconds too)."""
        store = self._store
        assert store is not None
        changes = [step.changes for step in steps if step.changes]
        if not changes:
            return

        def merge_and_commit() -> DurableChanges:
            merged = _merged(changes)
            store.commit(merged)
            return merged

        started = time.perf_counter()
        # Not abandoned on cancellation: a node closed mid-commit waits for it, so the store
        # is closed only once no thread uses it.
        merged = await trio.to_thread.run_sync(merge_and_commit)
        self._commit_seconds += time.perf_counter() - started
        self._commits += 1
        self._steps_committed += len(changes)
        self._changes_committed += _change_count(merged)

    def _release(self, steps: list[_Step]) -> None:
        """Send the frames of ``steps``, answer their broadcasts, publish their deliveries."""
        for step in steps:
            for out in step.frames:
                if out.delay_s > 0:
                    sent = self._delayed.put(step.made_at + out.delay_s, out.destination,
                                             out.frame)
                else:
                    sent = self._transport.send_nowait(out.destination, out.frame)
                if not sent:
                    self._dropped += 1
            for request in step.answered:
                request.done.set()
            if step.deliveries:
                self._retain(step.deliveries)
            if self.client_port is not None:
                for client, frame in step.client_frames:
                    self.client_port.send_nowait(client, frame)  # dropped ones are counted
        self._notify()

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

    async def _client_loop(self, port: ClientPort) -> None:
        while True:
            client, frame = await port.receive()
            await self._inbox_send.send(_ClientRequest(client, frame))

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
    app: StateMachine | None = None,
    serve_clients: bool = True,
    client_settings: ClientPortSettings | None = None,
) -> AsyncIterator[Node]:
    """Run member ``node_id`` of ``config`` for the duration of the ``async with`` block.

    ``app`` is a replicated application (:class:`~btob.StateMachine`): the member applies
    every delivery to it, snapshots it at every checkpoint and signs the snapshot's root, so
    a stable checkpoint certifies the application's state; a restart or a state transfer
    restores it from a snapshot, then applies what follows. Its state is the member's, so
    reading it is safe between awaits of the caller's task.

    The reliable broadcast, the variant and the cluster-wide settings are the cluster's
    (``config``); ``brb`` and ``variant`` may be given only if they agree, and ``settings``
    - the member's own tuning - must agree on every cluster-wide field. ``fault`` (a
    :class:`~btob.faults.FaultSpec` or ``"ID=BEHAVIOUR[:k=v,...]"`` text naming this member)
    injects a fault behaviour, driven as in the simulator with time counted from the node's
    start; its choices are drawn from ``seed``. Without ``transport`` a TCP transport on
    ``config.addresses[node_id]`` is started. With ``data_dir`` the member's durable state is
    committed there before anything it caused leaves the node (a payload is acknowledged once
    it is durable), and a node reopened on the same directory resumes from it (see
    :mod:`btob.runtime.store`); the directory records the configuration it was created with,
    and another one is refused.

    The member admits the client keys ``config`` admits. With ``serve_clients`` (the
    default) and a client address for this member in ``config``, it serves clients there
    (:class:`~btob.runtime.clientport.ClientPort`, tuned by ``client_settings``; the node's
    ``client_port``): their REQUESTs go to the member between its other inputs, and its
    RECEIPTs, and NOTICEs for refused requests, go back to the client's connection.

    Raises :class:`ConfigError` for a bad key, id, fault, configuration or data directory (or
    a listening address in use). An
    exception raised in the ``async with`` block propagates as itself; failures of the node's
    own tasks (its transport, its driver) propagate as an ``ExceptionGroup``.
    """
    brb = config.agreed("brb", brb)
    variant = config.agreed("variant", variant)
    effective = config.member_settings(settings)

    def make_member() -> Member:
        return Member(member=node_id, registry=config.registry, signing_key=signing_key,
                      cluster_id=config.cluster_id, f=config.f, brb=brb, variant=variant,
                      settings=effective, app=app, clients=config.client_admission())

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
                              transport_wrapper=transport_wrapper,
                              serve_clients=serve_clients,
                              client_settings=client_settings) as node:
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
    serve_clients: bool = True,
    client_settings: ClientPortSettings | None = None,
) -> AsyncIterator[Node]:
    """Like :func:`open_node`, but drive a ready-made ``core`` (member ``core.member``).

    ``signing_key`` authenticates the TCP handshake of the default transport, and the client
    port's (see ``serve_clients`` in :func:`open_node`). ``identity``
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
    store = DurableStore(data_dir, identity=identity) if data_dir else None
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
            client_port = None
            if serve_clients and config.client_address(node_id) is not None:
                from btob.crypto import Signer

                client_port = ClientPort(
                    config=config, member=node_id,
                    signer=Signer(signing_key, cluster_id=config.cluster_id),
                    settings=client_settings)
                await nursery.start(client_port.serve)
            node = Node(core, transport, store, inbox_max=1024, client_port=client_port)
            await node.restore()
            node.started()
            if store is not None:
                nursery.start_soon(node._commit_loop)
            nursery.start_soon(node._drive)
            nursery.start_soon(node._state_loop)
            nursery.start_soon(node._send_delayed)
            nursery.start_soon(node._receive_loop)
            nursery.start_soon(node._tick_loop, tick_interval_s)
            if client_port is not None:
                nursery.start_soon(node._client_loop, client_port)
            yield node
            nursery.cancel_scope.cancel()
    finally:
        if store is not None:
            store.close()
