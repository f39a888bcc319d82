"""The fault driver: one member's core inside its fault behaviour, the same in every driver.

:class:`FaultyCore` stands where a :class:`~btob.Member` stands - in the simulator and in the
Trio runtime alike - and applies one :class:`~btob.faults._behaviours.ProcessFault` around it:

* time: every call carries the driver's ``now``; the behaviour sees ``now - started_at``,
  seconds since the node started (virtual seconds in ``btob sim``, which starts at 0), so
  ``crash:at=2`` means two seconds after start everywhere;
* process faults: a crash (at a time, after k frames, at a protocol step) stops inputs and
  outputs for good; a pause holds inputs until it ends; a slow CPU makes every input take
  ``delay`` seconds, during which the next one waits and after which its outputs leave
  (:meth:`ready_at` tells the driver when the next input may be processed, and every
  :class:`~btob.Outgoing` carries the delay its frame must wait);
* frames: the behaviour filters what comes in, rewrites, delays, drops or adds what goes out,
  and injects frames of its own at each tick, validly signed with the member's real key;
* twins: a second core with the same key talks to the upper half of the other members.

A Byzantine member's core can trip its own invariants on the lies told in its name; it then
stops like a crash instead of taking the driver down (an honest core's failed invariant is a
bug and still raises). :meth:`effects` counts what the fault did, so a test or a benchmark can
assert that it took effect.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import attrs

from btob._errors import MemberCrashed
from btob.core.contract import Core, MemberStatistics, Outgoing
from btob.core.delivery import Delivery, MsgId
from btob.core.durable import DurableChanges, DurableState
from btob.core.recovery import EncodedState, StateWork
from btob.core.settings import Settings
from btob.core.viewchange import ViewInstalled
from btob.core.wire import Message, Signed, decode_frame
from btob.crypto import Backend, Signer, SigningKey
from btob.faults._adversary import Coalition
from btob.faults._behaviours import Crash, FaultContext, ProcessFault, Twins, make_fault
from btob.faults._spec import FaultSpec

__all__ = ["FaultEffects", "FaultyCore", "coalition_core", "faulty_core"]


@attrs.frozen
class FaultEffects:
    """What a fault did so far: proof that it took effect (or that it did not)."""

    behaviour: str
    crashed_at: float | None
    """Seconds after the node started at which it crashed; None if it did not."""
    held_s: float
    """Seconds inputs were held back by a pause."""
    busy_s: float
    """Seconds of processing a slow CPU added."""
    inputs_dropped: int
    """Frames the behaviour kept from the core (and inputs ignored after a crash)."""
    frames_passed: int
    """Outgoing frames sent as the core made them."""
    frames_changed: int
    """Outgoing frames rewritten, redirected or multiplied by the behaviour."""
    frames_dropped: int
    """Outgoing frames the behaviour (or a crash) suppressed."""
    frames_delayed: int
    """Outgoing frames held back by the behaviour (not counting a slow CPU's delay)."""
    frames_injected: int
    """Frames the behaviour sent on its own initiative."""
    twin_frames: int = 0
    """Frames the second instance of a twinned member sent (to its half of the members)."""
    requests_dropped: int = 0
    """Client REQUESTs the behaviour kept from the core."""
    client_frames_dropped: int = 0
    """RECEIPT and NOTICE frames for clients the behaviour suppressed."""
    client_frames_changed: int = 0
    """RECEIPT and NOTICE frames for clients the behaviour rewrote or replaced."""

    @property
    def took_effect(self) -> bool:
        """True if the fault changed anything the member did or when it did it."""
        return bool(self.crashed_at is not None or self.held_s or self.busy_s
                    or self.inputs_dropped or self.frames_changed or self.frames_dropped
                    or self.frames_delayed or self.frames_injected or self.twin_frames
                    or self.requests_dropped or self.client_frames_dropped
                    or self.client_frames_changed)


@attrs.define
class _Counters:
    held_s: float = 0.0
    busy_s: float = 0.0
    inputs_dropped: int = 0
    frames_passed: int = 0
    frames_changed: int = 0
    frames_dropped: int = 0
    frames_delayed: int = 0
    frames_injected: int = 0
    twin_frames: int = 0
    requests_dropped: int = 0
    client_frames_dropped: int = 0
    client_frames_changed: int = 0


class FaultyCore:
    """A core wrapped in its fault behaviour (see the module docstring).

    ``twin`` is the second core of the ``twins`` behaviour (or of a coordinated adversary),
    talking to ``twin_peers`` (default: the upper half of the other members);
    ``started_at`` is the driver's time at which the node started (the runtime sets it when
    the node's tasks start).
    """

    def __init__(self, core: Core, fault: ProcessFault, *, started_at: float = 0.0,
                 twin: Core | None = None, twin_peers: frozenset[int] | None = None) -> None:
        self.core = core
        self.fault = fault
        self.started_at = started_at
        self.byzantine = fault.byzantine
        self._twin = twin
        others = fault.ctx.others()
        if twin is None:
            twin_peers = frozenset()
        elif twin_peers is None:
            twin_peers = frozenset(others[len(others) // 2:])
        self.twin_peers: frozenset[int] = twin_peers
        if isinstance(fault, Twins) and twin is None:
            raise ValueError("the twins behaviour needs a twin core")
        self._crash_time = fault.param("at") if isinstance(fault, Crash) and fault.timed \
            else None
        self.crashed = False
        self.crashed_at: float | None = None
        """Seconds after start at which the member crashed."""
        self._busy_until = -math.inf
        self._held_until = -math.inf
        self._extra = 0.0
        self._frames: list[Outgoing] = []
        self._deliveries: list[Delivery] = []
        self._counters = _Counters()

    # -- what the drivers ask -----------------------------------------------------------------

    @property
    def member(self) -> int:
        """The member's id."""
        return self.core.member

    @property
    def settings(self) -> Settings:
        """The member's limits."""
        return self.core.settings

    @property
    def view(self) -> int:
        """The member's current view."""
        return self.core.view

    @property
    def crash_time(self) -> float | None:
        """The driver time of a timed crash (``crash:at``), so a driver can be there."""
        return None if self._crash_time is None else self.started_at + self._crash_time

    def ready_at(self, now: float) -> float:
        """The earliest time the next input may be processed: ``now`` unless paused or busy
        with the previous input (a slow CPU)."""
        self._clock(now)
        resume = self.fault.hold_until()
        held = -math.inf if resume is None else self.started_at + resume
        if held > max(now, self._held_until):  # count each held stretch once
            self._counters.held_s += held - max(now, self._held_until)
            self._held_until = held
        return max(held, self._busy_until, now)

    def check_crash(self, now: float) -> bool:
        """Let the clock reach ``now`` (a timed crash may happen); True if crashed."""
        self._clock(now)
        return self.crashed

    # -- inputs -------------------------------------------------------------------------------

    def submit(self, payload: bytes, now: float) -> MsgId:
        """TO-broadcast ``payload``; raises :class:`~btob.MemberCrashed` once crashed."""
        if self._begin(now):
            raise MemberCrashed(f"member {self.member} crashed ({self.fault.spec})")
        msg_id: MsgId | None = self._guard(lambda: self.core.submit(payload, now))
        if self._twin is not None and not self.crashed:  # other bytes under the same ids
            self._guard(lambda: self._twin.submit(payload[::-1] + b"twin", now))  # type: ignore[union-attr]
        self._collect()
        if msg_id is None:
            raise MemberCrashed(f"member {self.member} crashed ({self.fault.spec})")
        return msg_id

    def submit_request(self, frame: bytes, now: float) -> None:
        """A client's REQUEST frame, if the behaviour lets it through (see
        :meth:`btob.Member.submit_request`, whose :class:`~btob.RequestRefused` passes
        through); raises :class:`~btob.MemberCrashed` once crashed."""
        if self._begin(now):
            raise MemberCrashed(f"member {self.member} crashed ({self.fault.spec})")
        if not self.fault.client_request(frame):
            self._counters.requests_dropped += 1
            return
        submit: Callable[[bytes, float], None] = getattr(self.core, "submit_request")  # noqa: B009
        self._guard(lambda: submit(frame, now))
        self._collect()

    def reply(self, delivery: Delivery, result: bytes) -> None:
        """The wrapped member's :meth:`btob.Member.reply` (it leaves through the behaviour
        with the other client outputs); nothing once crashed."""
        reply = getattr(self.core, "reply", None)
        if reply is not None and not self.crashed:
            reply(delivery, result)

    def take_client_outputs(self) -> list[tuple[bytes, bytes]]:
        """``(client key, frame)`` RECEIPTs and NOTICEs for clients, through the behaviour
        (nothing once crashed)."""
        take: Callable[[], list[tuple[bytes, bytes]]] = getattr(
            self.core, "take_client_outputs", list)
        outputs = take()
        counters = self._counters
        if self.crashed:
            counters.client_frames_dropped += len(outputs)
            return []
        sent: list[tuple[bytes, bytes]] = []
        for client, frame in outputs:
            changed = self.fault.client_output(client, frame)
            if not changed:
                counters.client_frames_dropped += 1
            elif changed != [(client, frame)]:
                counters.client_frames_changed += len(changed)
            sent += changed
        return sent

    def receive(self, frame: bytes, now: float, *, source: int | None = None) -> None:
        """A frame from ``source``, if the behaviour lets it through."""
        if self._begin(now):
            self._counters.inputs_dropped += 1
            return
        if source is not None and not self.fault.incoming(source, frame):
            self._counters.inputs_dropped += 1
            return
        target = self._twin if self._twin is not None and source in self.twin_peers \
            else self.core
        self._guard(lambda: target.receive(frame, now, source=source))
        if not self.crashed:
            for dest, reply in self.fault.react():
                self._counters.frames_injected += 1
                self._frames.append(Outgoing(dest, reply))
        self._collect()

    def tick(self, now: float) -> None:
        """Let time pass for the core(s), and inject the behaviour's own frames."""
        if self._begin(now):
            return
        self._guard(lambda: self.core.tick(now))
        if self._twin is not None and not self.crashed:
            self._guard(lambda: self._twin.tick(now))  # type: ignore[union-attr]
        if not self.crashed:
            # Injected frames leave first and without the slow CPU's delay: the behaviour
            # acts on its own, not through the member's processing.
            for dest, frame in self.fault.tick():
                self._counters.frames_injected += 1
                self._frames.append(Outgoing(dest, frame))
        self._collect()

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """What leaves the member: frames through the behaviour, each with the delay it must
        wait, and the member's deliveries (not the twin's)."""
        frames, self._frames = self._frames, []
        deliveries, self._deliveries = self._deliveries, []
        return frames, deliveries

    def take_durable(self) -> DurableChanges:
        """The wrapped member's durable changes (a twin keeps nothing: it is the fault)."""
        return self.core.take_durable()

    @property
    def defer_state_work(self) -> bool:
        """The wrapped member's setting (see :attr:`btob.Member.defer_state_work`)."""
        return bool(getattr(self.core, "defer_state_work", False))

    @defer_state_work.setter
    def defer_state_work(self, value: bool) -> None:
        # Only the wrapped member's: a twin, the fault itself, does its own work as it goes.
        if hasattr(self.core, "defer_state_work"):
            setattr(self.core, "defer_state_work", value)  # noqa: B010 - not in Core

    def take_state_work(self) -> list[StateWork]:
        """The wrapped member's deferred state work (see :meth:`btob.Member.take_state_work`)."""
        take = getattr(self.core, "take_state_work", None)
        return [] if take is None else list(take())

    def state_done(self, done: EncodedState, now: float) -> None:
        """Hand the wrapped member its finished state work (unless it crashed meanwhile)."""
        if self.crashed:
            return
        self._guard(lambda: getattr(self.core, "state_done")(done, now))  # noqa: B009
        self._collect()

    def restore(self, state: DurableState, now: float) -> None:
        """Resume the wrapped member from ``state``."""
        self.core.restore(state, now)
        self._collect()

    # -- queries ------------------------------------------------------------------------------

    def statistics(self) -> MemberStatistics:
        """The wrapped member's counters."""
        return self.core.statistics()

    def take_view_changes(self) -> list[ViewInstalled]:
        """Views the member (not its twin) installed since the last call."""
        if self._twin is not None:
            getattr(self._twin, "take_view_changes", list)()
        take: Callable[[], list[ViewInstalled]] = getattr(self.core, "take_view_changes", list)
        return take()

    def held_state(self) -> dict[str, int]:
        """The wrapped member's held-state sizes."""
        held: Callable[[], dict[str, int]] = getattr(self.core, "held_state", dict)
        return held()

    def effects(self) -> FaultEffects:
        """What the fault did so far."""
        c = self._counters
        return FaultEffects(
            behaviour=self.fault.spec.behaviour, crashed_at=self.crashed_at, held_s=c.held_s,
            busy_s=c.busy_s, inputs_dropped=c.inputs_dropped, frames_passed=c.frames_passed,
            frames_changed=c.frames_changed, frames_dropped=c.frames_dropped,
            frames_delayed=c.frames_delayed, frames_injected=c.frames_injected,
            twin_frames=c.twin_frames, requests_dropped=c.requests_dropped,
            client_frames_dropped=c.client_frames_dropped,
            client_frames_changed=c.client_frames_changed,
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _clock(self, now: float) -> None:
        self.fault.ctx.now = now - self.started_at
        if self._crash_time is not None and not self.crashed and \
                self.fault.ctx.now >= self._crash_time:
            self._crash()

    def _crash(self) -> None:
        self.crashed = True
        self.crashed_at = self.fault.ctx.now

    def _begin(self, now: float) -> bool:
        """Start processing one input at ``now``; True if the member is crashed."""
        self._clock(now)
        if self.crashed:
            return True
        self._extra = self.fault.processing_delay()
        if self._extra:
            self._busy_until = now + self._extra
            self._counters.busy_s += self._extra
        return False

    def _guard(self, step: Callable[[], Any]) -> Any:
        """Run a core step; a Byzantine member whose core trips an invariant stops."""
        if not self.byzantine:
            return step()
        try:
            return step()
        except AssertionError:
            self._crash()
            return None

    def _collect(self) -> None:
        """Take the core's outputs through the behaviour (the twin's to its own half)."""
        frames, deliveries = self.core.take_outputs()
        self._deliveries += deliveries
        self._through(frames, twin=False)
        if self._twin is not None:
            twin_frames, _ = self._twin.take_outputs()  # the twin's deliveries are not ours
            self._through(twin_frames, twin=True)

    def _through(self, frames: list[Outgoing], *, twin: bool) -> None:
        fault, counters = self.fault, self._counters
        decoded: dict[int, Signed] = {}
        for out in frames:
            if self.crashed:
                counters.frames_dropped += 1
                continue
            if self._twin is not None and (out.destination in self.twin_peers) != twin:
                continue  # each twin talks to its own half
            signed = decoded.get(id(out.frame))
            if signed is None:
                signed = decoded[id(out.frame)] = decode_frame(out.frame).parse()
            if fault.crash_on_send(signed.kind):
                self._crash()
                counters.frames_dropped += 1
                continue
            sent = fault.outgoing(out.destination, out.frame, signed)
            if twin:
                counters.twin_frames += len(sent)  # all the twin says is the fault's doing
            elif not sent:
                counters.frames_dropped += 1
            elif len(sent) == 1 and sent[0][0] == out.destination and sent[0][1] is out.frame:
                if sent[0][2] > 0:
                    counters.frames_delayed += 1
                else:
                    counters.frames_passed += 1
            else:
                counters.frames_changed += len(sent)
            for target, frame, delay in sent:
                self._frames.append(Outgoing(target, frame, self._extra + delay))


def _context(member: int, *, n: int, signing_key: SigningKey, cluster_id: bytes,
             settings: Settings, seed: int, backend: Backend | None) -> FaultContext:
    """What member ``member``'s behaviour may use: its real key, a seeded random source."""
    signer = Signer(signing_key, cluster_id=cluster_id, backend=backend)

    def resign(message: Message) -> bytes:
        return Signed.create(member, message, signer.sign).to_frame()

    def resign_for_cluster(message: Message, other: bytes) -> bytes:
        foreign = Signer(signing_key, cluster_id=other, backend=backend)
        return Signed.create(member, message, foreign.sign).to_frame()

    return FaultContext(member=member, n=n, rng=random.Random(f"fault/{seed}/{member}"),
                        settings=settings, resign=resign, resign_for_cluster=resign_for_cluster)


def faulty_core(spec: FaultSpec, make_core: Callable[[], Core], *, n: int,
                signing_key: SigningKey, cluster_id: bytes, settings: Settings, seed: int = 0,
                backend: Backend | None = None, started_at: float = 0.0) -> FaultyCore:
    """The core ``make_core()`` of member ``spec.member`` inside the behaviour ``spec``.

    The behaviour signs its lies with ``signing_key`` (the member's real key) for
    ``cluster_id`` and draws its choices from a random source seeded by ``seed`` and the
    member id, so the same seed gives the same lies. ``make_core`` is called twice for the
    ``twins`` behaviour.
    """
    ctx = _context(spec.member, n=n, signing_key=signing_key, cluster_id=cluster_id,
                   settings=settings, seed=seed, backend=backend)
    fault = make_fault(spec, ctx)
    twin = make_core() if isinstance(fault, Twins) else None
    return FaultyCore(make_core(), fault, started_at=started_at, twin=twin)


def coalition_core(coalition: Coalition, member: int, make_core: Callable[[], Core], *,
                   signing_key: SigningKey, cluster_id: bytes, seed: int = 0,
                   backend: Backend | None = None) -> FaultyCore:
    """The core ``make_core()`` of coalition member ``member``, acting as the coalition
    says (with a second core when the strategy twins it)."""
    ctx = _context(member, n=coalition.n, signing_key=signing_key, cluster_id=cluster_id,
                   settings=coalition.settings, seed=seed, backend=backend)
    peers = coalition.twin_peers(member)
    twin = make_core() if peers is not None else None
    return FaultyCore(make_core(), coalition.fault(ctx), twin=twin, twin_peers=peers)
