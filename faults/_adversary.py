"""The coordinated adversary: the f faulty members act as one, with the network on their side.

Theory of operation. A behaviour of the catalogue (:mod:`btob.faults._behaviours`) is one
faulty member acting alone. A :class:`Coalition` is all of them at once, under one strategy:
it picks which members are faulty and what role each honest member plays in the attack, sees
every frame sent to any of its members, rewrites what its members send, and - before its own
GST, the ``until`` parameter - schedules the honest members' frames: it may hold any frame
back until ``until``, or lose it (the loss before GST that ``--net loss=`` models at random,
here chosen), so after that instant the network is timely and lossless again and a correct
protocol must still finish.

Strategies (:data:`STRATEGIES`):

``split``
    Twins across a partition. The honest members are split into a half ``A`` of f members
    and a half ``B`` of f+1; a quorum of ``A`` plus the faulty members is one member short.
    Every faulty member runs two honest cores with its key, one talking to ``A``, one to
    ``B`` and the other faulty members, and until ``until`` nothing passes between the
    halves - or, timed to a protocol step (``when``), for ``for`` seconds from the moment
    the coalition sees an honest READY (a slot prepared), an honest VIEW-CHANGE (a view
    change starts) or a checkpoint become stable. Each half hears a consistent, different
    story: other payloads under the same ids (as origins), other proposals (as sequencer),
    other votes, other view changes. A quorum one short lets ``A`` decide alone; that
    breaks agreement.

``edge``
    A quorum at its edge, timed to one slot. The sequencer of view 0 is faulty. At the
    first slot at or after ``slot`` it proposes with two batches or more (the target) it
    proposes them in reverse order - not what the next leader will propose - and sends that
    ORDER to a
    witness ``P`` and the echoers ``E`` (f members, the next view's leader among them),
    its ECHO only to ``P``, and its READY to ``P`` and the amplifiers ``R`` (the other f).
    The network holds every honest ECHO of the target from ``E`` and ``R``, every honest
    READY of it from ``E``, and everything else ``P`` sends to ``E`` and ``R``. So ``P``
    prepares, and it alone; the faulty sequencer proposes nothing more, its VIEW-CHANGEs
    carry no prepared certificate, and ``P``'s VIEW-CHANGE reaches the next leader only
    after ``until``. A correct member of ``R`` sends no READY without a prepared
    certificate, so ``P`` never commits the target and the view change may drop it
    safely. One that sends READY on f+1 READYs (Bracha's amplification, wrong in
    ordering) lets ``P`` commit a slot the new view gives to another proposal. The honest
    ECHOs of the target also reach ``P`` relabelled as READYs, signatures kept: a member
    whose signatures are not bound to their kind commits the target on them, alone.

``forged-split``
    The sequencer of view 0 is faulty. Of each proposal with two batches or more (every
    ``every``-th slot), it sends one order of the batches to half the honest members and
    the reverse order to the rest, each followed by ECHOs and READYs for that value in every
    honest member's name. With ``sig=own`` the votes are signed with its own key: only a
    member that takes a signature for its claimed sender without checking it commits either
    value. With ``sig=reused`` each forged vote carries a real signature of its claimed
    sender: one that sender made on a vote of the same kind for an earlier slot, which the
    coalition saw arrive (every honest member broadcasts its votes) at least ``age``
    seconds before, so the victim most likely checked - and cached - the original by then;
    until it holds such a signature from every honest member, the sequencer proposes
    honestly.
    The signature is real, the body is not: only a member whose verify cache answers for a
    (sender, kind, signature) without comparing the body commits either value.

``isolate``
    A laggard left to its helpers. An honest victim ``V`` is drawn and the faulty members
    are the f members right after it in ring order (``V+1..V+f``), so of the f+1 members
    after ``V`` that catch-up asks to help it, one alone is correct. Until ``until`` the
    network loses every frame to ``V`` (the others, a quorum with the faulty members acting
    honestly, go on without it; what they committed they never send again); after it the
    faulty members behave honestly but never help ``V`` catch up: their NEW-VIEWs, SLOT
    proofs, LOG SEGMENTs and state CHUNKs to ``V`` are kept back. A correct catch-up rule
    has the one correct helper answer; one that asks only f members leaves ``V`` behind.

``relabel``
    Kind confusion, for Bracha's BRB. One faulty member is an origin that tells f honest
    members (the half ``L``) another batch than the rest, and the faulty members send their
    ECHOs and READYs for that batch to ``L``. Whenever a member of ``L`` ECHOs it, the
    coalition passes that ECHO on to the rest of ``L`` relabelled as a READY, with its
    signature kept. The real READYs of the lie come from the f faulty members, one short of
    the f+1 that make an honest member send READY; a member that takes an ECHO signature
    for a READY (a domain tag without the message kind) gets f+1 and READYs the lie while
    the others READY the truth.

``short-newview``
    A NEW-VIEW one honest VIEW-CHANGE short of a commit. The view-0 sequencer ``C`` is
    honest and the leader of view 1 is faulty. At the first slot at or after ``slot`` that
    names two batches or more (the target), the network keeps every frame of the target
    from f honest members ``U`` and every READY of it from the other f (``P``): the target
    prepares at ``C`` and ``P`` and commits at ``C`` alone (catch-up answers are held too).
``C``'s later ORDERs are held,
    so the view changes. The leader of view 1 then sends a NEW-VIEW built from f+1
    VIEW-CHANGEs - its own, without the target's prepared certificate, and those of
    ``U``, which have none - so the plan leaves the target free, and it proposes the same
    batches in reverse order there; the faulty members vote for that. A member that takes
    a NEW-VIEW of fewer than q VIEW-CHANGEs (which then need not meet every commit quorum)
    commits the reversed value where ``C`` committed the first.

``stale-votes``
    Votes of one view counted in the next. The view-0 sequencer ``C`` is honest, the
    leader of view 1 faulty. At the first slot at or after ``slot`` naming two batches or
    more (the target), the target's ECHOs reach only f honest members ``P`` (``C`` among
    them), so only they prepare it, and its READYs reach nobody; ``C``'s later ORDERs are
    held, so the view changes. The leader of view 1 sends a NEW-VIEW of q VIEW-CHANGEs
    without the target (its own and the other faulty members', rewritten, and those of the
    f+1 others ``U``), and proposes the target again: the same value to a victim in ``U``,
    the batches reversed to everyone else. The victim's ECHOs of it and the others' are
    kept apart, so nobody forwards the leader's contradicting ORDER as evidence. Once the
    victim votes in view 1 the coalition passes it the honest members' view-0 ECHOs and
    READYs of the target, signatures intact. A member that counts votes of an older view
    commits the first value while the others commit the reversed one.

``prepared-twice``
    One slot prepared with different values in two views, and a view change that must
    choose. The view-0 sequencer is faulty: it proposes the target (as above) with its
    batches reversed, and only a witness ``W`` gets the target's ECHOs, so ``W`` alone
    prepares it; then it stops. ``W``'s VIEW-CHANGE for view 1 is held: the honest leader
    of view 1 finds the slot free and proposes the batches in their order, a value that
    prepares everywhere but at ``W`` and commits at that leader alone (other READYs of it,
    and catch-up answers, are held from everyone, faulty members included). Its later
    ORDERs are held, so the view changes again, and until ``until`` the leader of view 2
    hears only the VIEW-CHANGEs of a quorum with ``W`` and the leader of view 1 in it
    (:attr:`PreparedTwice.counted`). Its NEW-VIEW then holds a certificate of the target
    from view 0 and one from view 1: re-proposing the highest view's keeps what
    committed; re-proposing the lowest's gives the slot another value elsewhere.

A :class:`Coalition` is built by the simulator (:func:`make_coalition`); each of its members
is a :class:`~btob.faults._driver.FaultyCore` whose behaviour is a :class:`CoalitionMember`,
so what the coalition did is counted in the members' fault effects like any fault's.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping

import attrs

from btob._errors import ConfigError, WireError
from btob.core.proposers import view_leader
from btob.core.settings import Settings
from btob.core.viewchange import plan_new_view
from btob.core.wire import (
    Batch,
    Chunk,
    Echo,
    LogSegment,
    Message,
    NewView,
    Order,
    OrderEcho,
    OrderReady,
    Ready,
    Send,
    Signed,
    SlotProof,
    ViewChange,
    decode_frame,
)
from btob.faults._behaviours import FaultContext, Outgoing, ProcessFault, own_frame
from btob.faults._spec import FaultSpec, Param, parse_params

__all__ = [
    "STRATEGIES", "AdversarySpec", "Coalition", "CoalitionMember", "Strategy",
    "make_coalition", "parse_adversary",
]


@attrs.frozen
class Strategy:
    """A coordinated strategy: its name, what it does, and its parameters."""

    name: str
    summary: str
    params: tuple[Param, ...]


_UNTIL = Param("until", float, 3.0, "virtual second until which the adversary holds honest "
               "frames back or loses them (its GST)")
STRATEGIES: Mapping[str, Strategy] = {s.name: s for s in (
    Strategy("split", "twins across a partition: every faulty member tells each of two "
             "halves of the honest members a different, consistent story",
             (attrs.evolve(_UNTIL, default=1.5),
              Param("sequencer", int, 1, "1: the view-0 sequencer is faulty; 0: it is not"),
              Param("when", str, "start", "when the partition starts: at the start, or at a "
                    "protocol step - prepare (an honest READY), viewchange (an honest "
                    "VIEW-CHANGE) or checkpoint (a checkpoint becomes stable)"),
              Param("for", float, 1.0, "seconds the partition lasts after a protocol step"))),
    Strategy("forged-split", "the sequencer proposes one value to half the honest members "
             "and another to the rest, each with votes in every honest member's name",
             (attrs.evolve(_UNTIL, default=0.0),
              Param("every", int, 1, "split every k-th slot (1: every slot)"),
              Param("sig", str, "own", "what signs the forged votes: own (the faulty "
                    "sequencer's key) or reused (the claimed sender's real signature of an "
                    "earlier vote of the same kind)"),
              Param("age", float, 0.005, "with sig=reused: seconds a signature must have "
                    "been seen before it is reused"))),
    Strategy("relabel", "kind confusion: an origin's lie to f honest members gets READYs "
             "that are their own ECHOs relabelled, signatures kept",
             (attrs.evolve(_UNTIL, default=0.0),)),
    Strategy("short-newview", "a faulty next leader's NEW-VIEW of f+1 VIEW-CHANGEs that "
             "leave out a slot one honest member committed, and another value for it",
             (attrs.evolve(_UNTIL, default=4.0),
              Param("slot", int, 0, "the first slot that may be the target"))),
    Strategy("stale-votes", "honest votes of view 0 for a slot, kept from a victim, "
             "passed on to it once it is in view 1, where a faulty leader proposes the "
             "same slot again, to it alone with the old value",
             (attrs.evolve(_UNTIL, default=4.0),
              Param("slot", int, 0, "the first slot that may be the target"))),
    Strategy("prepared-twice", "one slot prepared with one value in view 0 (by a witness "
             "alone) and another in view 1 (committed at one member), then a view change "
             "whose NEW-VIEW holds both",
             (attrs.evolve(_UNTIL, default=6.0),
              Param("slot", int, 0, "the first slot that may be the target"))),
    Strategy("edge", "a quorum at its edge: one honest witness alone prepares a slot, the "
             "sequencer stops, and the view change starts without the witness",
             (_UNTIL, Param("slot", int, 0, "the first slot that may be the target"))),
    Strategy("isolate", "a laggard left to its helpers: the network loses every frame to "
             "an honest victim, then the f faulty members right after it in ring order "
             "never help it catch up",
             (attrs.evolve(_UNTIL, default=1.5),)),
)}
"""Every coordinated strategy ``--adversary`` accepts, by name."""

WHEN = ("start", "prepare", "viewchange", "checkpoint")
"""The protocol steps a ``split`` may wait for before it partitions the members."""

SIGS = ("own", "reused")
"""What signs a ``forged-split``'s forged votes (see the module docstring)."""

_TRIGGER_KINDS = {"prepare": "ord.ready", "viewchange": "vc.viewchange",
                  "checkpoint": "ckp.checkpoint"}


@attrs.frozen
class AdversarySpec:
    """A coordinated strategy with its parameters resolved."""

    strategy: str
    params: Mapping[str, float | int | str] = attrs.field(factory=dict)

    def value(self, name: str) -> float:
        """A numeric parameter (its default when left out)."""
        if name in self.params:
            value = self.params[name]
        else:
            value = {p.name: p.default for p in STRATEGIES[self.strategy].params}[name]  # type: ignore[assignment]
        assert isinstance(value, (int, float))
        return float(value)

    def __str__(self) -> str:
        defaults = {p.name: p.default for p in STRATEGIES[self.strategy].params}
        args = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in sorted(self.params.items()) if v != defaults.get(k))
        return self.strategy + (f":{args}" if args else "")


def parse_adversary(text: str) -> AdversarySpec:
    """Parse ``STRATEGY[:key=value,...]``; :class:`ConfigError` naming the text otherwise."""
    name, _, args = text.strip().partition(":")
    strategy = STRATEGIES.get(name)
    if strategy is None:
        raise ConfigError(f"adversary {text!r}: unknown strategy {name!r}; known: "
                          f"{', '.join(sorted(STRATEGIES))}")
    where = f"adversary {text!r}"
    params = parse_params(where, name, strategy.params, args)
    if params.get("when", "start") not in WHEN:
        raise ConfigError(f"{where}: when must be one of {', '.join(WHEN)}")
    if params.get("sig", "own") not in SIGS:
        raise ConfigError(f"{where}: sig must be one of {', '.join(SIGS)}")
    return AdversarySpec(name, params)


class CoalitionMember(ProcessFault):
    """One coalition member's behaviour: the coalition decides what it sends and sees."""

    byzantine = True

    def __init__(self, coalition: Coalition, ctx: FaultContext) -> None:
        super().__init__(FaultSpec(ctx.member, "adversary",
                                   {"strategy": str(coalition.spec)}), ctx)
        self.coalition = coalition

    def incoming(self, source: int, frame: bytes) -> bool:
        self.coalition.observe(source, frame, self.ctx.now)
        return True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        return self.coalition.outgoing(self.ctx, dest, frame, signed)

    def react(self) -> list[tuple[int, bytes]]:
        return self.coalition.react(self.ctx)


class Coalition:
    """The faulty members of one run acting as one (see the module docstring).

    ``members`` are the faulty members; ``twin_peers`` says, for a member run as twins,
    which members its second core talks to; :meth:`route` is the network scheduler's say
    over an honest member's frame; :attr:`holds` counts the frames it held back,
    :attr:`losses` the frames it lost.
    """

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        self.spec = spec
        self.n, self.f, self.rng, self.settings = n, f, rng, settings
        self.until = spec.value("until")
        self.members: frozenset[int] = frozenset()
        self.holds = 0
        self.losses = 0
        self.rewrites = 0
        """Frames of its members the coalition changed or kept back."""

    def twin_peers(self, member: int) -> frozenset[int] | None:
        """The members a twinned member's second core talks to; None: not twinned."""
        return None

    def observe(self, source: int, frame: bytes, now: float) -> None:
        """A frame from ``source`` reached one of the coalition's members at ``now``."""

    def fault(self, ctx: FaultContext) -> CoalitionMember:
        """The behaviour of coalition member ``ctx.member``."""
        return CoalitionMember(self, ctx)

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        """What leaves coalition member ``ctx.member`` for ``dest`` in place of ``frame``."""
        return [(dest, frame, 0.0)]

    def react(self, ctx: FaultContext) -> list[tuple[int, bytes]]:
        """Frames coalition member ``ctx.member`` sends at once, after its latest input."""
        return []

    def route(self, source: int, dest: int, signed: Signed, now: float) -> float | None:
        """Extra seconds an honest member's frame waits before the network takes it; None:
        the network loses it (only before ``until``: loss before GST)."""
        if now >= self.until:
            return 0.0
        if self._lose(source, dest, signed.message):
            self.losses += 1
            return None
        if not self._hold(source, dest, signed.message):
            return 0.0
        self.holds += 1
        return self.until - now

    def _hold(self, source: int, dest: int, message: Message) -> bool:
        return False

    def _lose(self, source: int, dest: int, message: Message) -> bool:
        return False

    def describe(self) -> dict[str, object]:
        """The roles the strategy drew, for logs and replays."""
        return {"strategy": str(self.spec), "faulty": sorted(self.members)}


class Split(Coalition):
    """Twins across a partition (see the module docstring)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        everyone = list(range(n))
        if spec.value("sequencer"):
            faulty = [0, *rng.sample(everyone[1:], f - 1)]
        else:
            faulty = rng.sample(everyone[1:], f)
        self.members = frozenset(faulty)
        honest = [m for m in everyone if m not in self.members]
        rng.shuffle(honest)
        self.half_a = frozenset(honest[:f])
        self.half_b = frozenset(honest[f:])
        self.when = str(spec.params.get("when", "start"))
        self.lasts = spec.value("for")
        self.started_at: float | None = 0.0 if self.when == "start" else None
        """When the partition started (None: still waiting for its protocol step)."""
        if self.started_at is None:
            self.until = math.inf  # the scheduler looks at every frame until the step
        self._checkpoints: dict[bytes, set[int]] = {}

    def observe(self, source: int, frame: bytes, now: float) -> None:
        if self.started_at is not None or source in self.members:
            return
        try:
            raw = decode_frame(frame)
        except WireError:
            return
        if raw.kind != _TRIGGER_KINDS[self.when]:
            return
        if self.when == "checkpoint":  # stable once a quorum signed the same point
            signers = self._checkpoints.setdefault(raw.body, set())
            signers.add(source)
            if len(signers) < self.f + 1:  # with the coalition's own f, a quorum signed it
                return
        self.started_at = now
        self.until = now + self.lasts

    def twin_peers(self, member: int) -> frozenset[int] | None:
        return (self.half_b | self.members) - {member}

    def _hold(self, source: int, dest: int, message: Message) -> bool:
        if self.started_at is None:
            return False
        return (source in self.half_a) != (dest in self.half_a) and dest not in self.members

    def describe(self) -> dict[str, object]:
        started = {} if self.when == "start" else {"partitioned_at": self.started_at}
        return {**super().describe(), "a": sorted(self.half_a), "b": sorted(self.half_b),
                **started}


class Edge(Coalition):
    """A quorum at its edge, timed to one slot (see the module docstring)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        sequencer, leader = view_leader(0, n), view_leader(1, n)
        others = [m for m in range(n) if m not in (sequencer, leader)]
        faulty = [sequencer, *rng.sample(others, f - 1)]
        self.members = frozenset(faulty)
        honest = [m for m in range(n) if m not in self.members and m != leader]
        rng.shuffle(honest)
        self.witness = honest[0]
        self.echoers = frozenset([leader, *honest[1:f]])
        self.amplifiers = frozenset(honest[f:])
        self.first_slot = int(spec.value("slot"))
        self.target: tuple[int, int] | None = None
        """(view, slot) of the attacked proposal, once the sequencer made it."""
        self.value: Order | None = None
        """The proposal the coalition tells for the target."""
        self._relabelled: set[int] = set()
        self._readied: set[int] = set()
        self._pending: list[tuple[int, bytes]] = []

    def _is_target(self, message: Message) -> bool:
        return isinstance(message, (Order, OrderEcho)) and self.target == (
            message.view, message.slot)

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if isinstance(message, Order) and message.view == 0:
            if self.target is None and message.slot >= self.first_slot and \
                    len(message.refs) > 1:
                # The value the new view's leader would propose is the batches in their
                # order; the target's is the same batches reversed, so losing it shows.
                self.target = (message.view, message.slot)
                self.value = attrs.evolve(message, refs=message.refs[::-1])
            if self.target is not None and message.slot > self.target[1]:
                return self._keep()  # proposes nothing more: the view must change
        if isinstance(message, ViewChange) and message.prepared:
            self.rewrites += 1
            return [(dest, ctx.resign(attrs.evolve(message, prepared=())), 0.0)]
        if not self._is_target(message) or self.value is None:
            return [(dest, frame, 0.0)]
        if dest not in self.members:
            allowed = (self.amplifiers | {self.witness} if isinstance(message, OrderReady)
                       else {self.witness} if isinstance(message, OrderEcho)
                       else self.echoers | {self.witness})
            if dest not in allowed:
                return self._keep()
        self.rewrites += 1
        told: Message = self.value
        if isinstance(message, OrderEcho):  # every member votes for the reversed value
            told = type(message)(message.view, message.slot, self.value.digest)
        return [(dest, ctx.resign(told), 0.0)]

    def _keep(self) -> Outgoing:
        self.rewrites += 1
        return []

    def observe(self, source: int, frame: bytes, now: float) -> None:
        if source in self.members or source == self.witness or self.target is None:
            return
        echo = own_frame(source, frame, (OrderEcho,))
        if echo is None or not self._is_target(echo.message) or source in self._relabelled:
            return
        message = echo.message
        assert isinstance(message, OrderEcho)
        # The same signature, now claiming to be a READY: only a member whose signatures
        # are not bound to their kind counts it, and then commits what it alone prepared.
        self._relabelled.add(source)
        self._pending.append((self.witness, Signed(
            source, OrderReady(message.view, message.slot, message.digest), echo.body,
            echo.signature).to_frame()))

    def react(self, ctx: FaultContext) -> list[tuple[int, bytes]]:
        """Honest ECHOs of the target, relabelled as READYs, for the witness, with this
        member's own READY for the target (its core, which proposed the other order of the
        batches, never prepares it)."""
        pending, self._pending = self._pending, []
        if pending and ctx.member not in self._readied and self.target is not None and \
                self.value is not None:
            self._readied.add(ctx.member)
            pending.append((self.witness, ctx.resign(OrderReady(*self.target,
                                                                self.value.digest))))
        self.rewrites += len(pending)
        return pending

    def _hold(self, source: int, dest: int, message: Message) -> bool:
        if dest in self.members or self.target is None:
            return False
        if self._is_target(message):
            if isinstance(message, OrderReady):
                return dest in self.echoers
            if isinstance(message, OrderEcho):
                return dest != self.witness
        return source == self.witness and not (
            isinstance(message, OrderReady) and self._is_target(message))

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "witness": self.witness,
                "echoers": sorted(self.echoers), "amplifiers": sorted(self.amplifiers)}


class ForgedSplit(Coalition):
    """Two proposals, with votes in honest names (see the module docstring).

    :attr:`reused` counts the forged votes sent with a real signature of another body.
    """

    KEPT = 8
    """With ``sig=reused``: the most recent signatures kept per (sender, kind)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        sequencer = view_leader(0, n)
        self.members = frozenset([sequencer, *rng.sample(
            [m for m in range(n) if m != sequencer], f - 1)])
        honest = [m for m in range(n) if m not in self.members]
        rng.shuffle(honest)
        self.half_a = frozenset(honest[: len(honest) // 2])
        self.every = int(spec.value("every"))
        self.sig = str(spec.params.get("sig", "own"))
        self.age = spec.value("age")
        self.reused = 0
        self._seen: dict[tuple[int, str], dict[int, tuple[bytes, float]]] = {}
        """(sender, kind) -> slot -> (its real signature, when the coalition first saw it)."""

    def observe(self, source: int, frame: bytes, now: float) -> None:
        if self.sig != "reused" or source in self.members:
            return
        raw = own_frame(source, frame, (OrderEcho, OrderReady))
        if raw is None:
            return
        message = raw.message
        assert isinstance(message, OrderEcho)
        seen = self._seen.setdefault((source, raw.kind), {})
        seen.setdefault(message.slot, (raw.signature, now))
        while len(seen) > self.KEPT:
            del seen[min(seen)]

    def _signatures(self, sender: int, kind: str, slot: int, now: float) -> list[bytes]:
        """``sender``'s real signatures of ``kind`` votes for slots before ``slot``, seen
        long enough ago that any member has most likely checked them."""
        seen = self._seen.get((sender, kind), {})
        return [sig for s, (sig, at) in sorted(seen.items())
                if s < slot and at <= now - self.age]

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if not isinstance(message, Order) or len(message.refs) < 2 or \
                message.slot % self.every or dest in self.members:
            return [(dest, frame, 0.0)]
        honest = [m for m in range(self.n) if m not in self.members]
        if self.sig == "reused" and not all(
                self._signatures(m, kind.KIND, message.slot, ctx.now)
                for m in honest for kind in (OrderEcho, OrderReady)):
            return [(dest, frame, 0.0)]  # no signature to reuse yet: propose honestly
        told = message if dest in self.half_a else attrs.evolve(
            message, refs=message.refs[::-1])
        self.rewrites += 1
        out = [(dest, ctx.resign(told), 0.0)]
        for kind in (OrderEcho, OrderReady):
            vote = kind(told.view, told.slot, told.digest)
            if self.sig == "reused":
                # Each honest member's real signature of an earlier vote, on this vote.
                body = vote.to_body()
                for m in honest:
                    for signature in self._signatures(m, kind.KIND, told.slot, ctx.now):
                        self.reused += 1
                        out.append((dest, Signed(m, vote, body, signature).to_frame(), 0.0))
                continue
            mine = decode_frame(ctx.resign(vote)).parse()
            # Every member's vote for this half's value, signed with this member's key.
            out += [(dest, Signed(m, mine.message, mine.body, mine.signature).to_frame(), 0.0)
                    for m in honest]
        return out

    def describe(self) -> dict[str, object]:
        reused = {"reused": self.reused} if self.sig == "reused" else {}
        return {**super().describe(), "a": sorted(self.half_a), **reused}


class Isolate(Coalition):
    """A laggard left to its helpers (see the module docstring)."""

    _HELP = (NewView, SlotProof, LogSegment, Chunk)
    """What a member sends a laggard to catch it up."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        self.victim = rng.randrange(n)
        self.members = frozenset((self.victim + k) % n for k in range(1, f + 1))
        self.refused = 0
        """Frames of catch-up help the faulty members kept from the victim after ``until``."""

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        if dest != self.victim:
            return [(dest, frame, 0.0)]
        if ctx.now < self.until:
            self.rewrites += 1
            return []  # lost on the way, like every frame to the victim until then
        if isinstance(signed.message, self._HELP):
            self.rewrites += 1
            self.refused += 1
            return []
        return [(dest, frame, 0.0)]

    def _lose(self, source: int, dest: int, message: Message) -> bool:
        return dest == self.victim

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "victim": self.victim, "refused": self.refused}


class Relabel(Coalition):
    """An origin's lie made to look READY with ECHO signatures (see the module docstring)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        self.members = frozenset(rng.sample(range(n), f))
        self.origin = min(self.members)
        honest = [m for m in range(n) if m not in self.members]
        self.lied_to = frozenset(rng.sample(honest, f))
        self._lies: dict[int, tuple[Batch, bytes]] = {}  # counter -> (lie, its SEND frame)
        self._pending: dict[int, list[tuple[int, Message | bytes]]] = {}
        self._relabelled: set[tuple[int, int]] = set()

    def _lie(self, ctx: FaultContext, send: Send) -> tuple[Batch, bytes]:
        held = self._lies.get(send.counter)
        if held is None:
            batch = send.batch
            lie = Batch(batch.first_counter, tuple(p + b"~" for p in batch.payloads))
            held = self._lies[send.counter] = (lie, ctx.resign(Send(send.counter, lie)))
            votes = [Echo(self.origin, send.counter, lie.digest()),
                     Ready(self.origin, send.counter, lie.digest())]
            for member in self.members:  # every faulty member vouches for the lie to L
                self._pending.setdefault(member, []).extend(
                    (dest, vote) for dest in sorted(self.lied_to) for vote in votes)
        return held

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if dest not in self.lied_to:
            return [(dest, frame, 0.0)]
        if isinstance(message, Send) and ctx.member == self.origin:
            self.rewrites += 1
            return [(dest, self._lie(ctx, message)[1], 0.0)]
        if isinstance(message, Echo) and message.origin == self.origin \
                and message.counter in self._lies:
            return []  # to L, the faulty members vote for the lie only
        return [(dest, frame, 0.0)]

    def observe(self, source: int, frame: bytes, now: float) -> None:
        if source not in self.lied_to:
            return
        echo = own_frame(source, frame, (Echo,))
        if echo is None:
            return
        message = echo.message
        assert isinstance(message, Echo)
        lie = self._lies.get(message.counter)
        if message.origin != self.origin or lie is None or message.digest != lie[0].digest() \
                or (source, message.counter) in self._relabelled:
            return
        self._relabelled.add((source, message.counter))
        relabelled = Signed(source, Ready(message.origin, message.counter, message.digest),
                            echo.body, echo.signature).to_frame()
        self._pending.setdefault(self.origin, []).extend(
            (dest, relabelled) for dest in sorted(self.lied_to - {source}))

    def react(self, ctx: FaultContext) -> list[tuple[int, bytes]]:
        """Frames coalition member ``ctx.member`` sends at once: its votes for the lie,
        signed now, and relabelled ECHOs."""
        pending = self._pending.pop(ctx.member, [])
        self.rewrites += len(pending)
        return [(dest, item if isinstance(item, bytes) else ctx.resign(item))
                for dest, item in pending]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "origin": self.origin, "l": sorted(self.lied_to)}


def _faulty_next_leader(n: int, f: int,
                        rng: random.Random) -> tuple[frozenset[int], list[int]]:
    """Roles with an honest view-0 sequencer and a faulty view-1 leader: the faulty members
    (that leader and f-1 others drawn) and the other honest members, shuffled."""
    sequencer, leader = view_leader(0, n), view_leader(1, n)
    others = [m for m in range(n) if m not in (sequencer, leader)]
    members = frozenset([leader, *rng.sample(others, f - 1)])
    honest = [m for m in others if m not in members]
    rng.shuffle(honest)
    return members, honest


class ShortNewView(Coalition):
    """A NEW-VIEW of f+1 VIEW-CHANGEs around a committed slot (see the module docstring)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        self.sequencer, self.leader = view_leader(0, n), view_leader(1, n)
        self.members, honest = _faulty_next_leader(n, f, rng)
        self.unprepared = frozenset(honest[:f])
        self.prepared = frozenset(honest[f:])
        self.first_slot = int(spec.value("slot"))
        self.target: Order | None = None
        """The sequencer's proposal for the target slot, once it made it."""
        self.value: Order | None = None
        """What the leader of view 1 proposes there instead."""
        self._changes: dict[int, bytes] = {}  # U's VIEW-CHANGEs for view 1, as framed
        self._new_view: bytes | None = None

    def _slot_of(self, message: Message) -> tuple[int, int] | None:
        if isinstance(message, (Order, OrderEcho)):
            return message.view, message.slot
        return None

    def _hold(self, source: int, dest: int, message: Message) -> bool:
        if isinstance(message, Order) and source == self.sequencer and message.view == 0:
            if self.target is None and message.slot >= self.first_slot and \
                    len(message.refs) > 1:
                self.target = message
                self.value = attrs.evolve(message, view=1, refs=message.refs[::-1])
            if self.target is not None and message.slot > self.target.slot:
                return True  # the sequencer seems to stop: the view must change
        return self._keeps_target(dest, message)

    def _keeps_target(self, dest: int, message: Message) -> bool:
        if self.target is None:
            return False
        if isinstance(message, (SlotProof, LogSegment)):
            return True  # nobody learns the committed target by catch-up either
        if self._slot_of(message) != (0, self.target.slot):
            return False
        return dest in self.unprepared or (
            isinstance(message, OrderReady) and dest in self.prepared)

    def observe(self, source: int, frame: bytes, now: float) -> None:
        if source in self.unprepared and source not in self._changes \
                and _view_change_of(source, frame, 1):
            self._changes[source] = frame

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        target, value = self.target, self.value
        if target is None or value is None:
            return [(dest, frame, 0.0)]
        if self._keeps_target(dest, message) and ctx.now < self.until:
            self.rewrites += 1
            return [(dest, frame, self.until - ctx.now)]
        if isinstance(message, ViewChange) and message.view == 1:
            self.rewrites += 1
            mine = attrs.evolve(message, prepared=tuple(
                p for p in message.prepared if p.slot != target.slot))
            return [(dest, ctx.resign(mine), 0.0)]
        if isinstance(message, NewView) and message.view == 1:
            self.rewrites += 1
            if self._new_view is None:
                if len(self._changes) < len(self.unprepared):
                    return []  # not yet: its core sends the NEW-VIEW again
                self._new_view = self._short_new_view(ctx)
            # Its core committed the target in view 0 and votes for nothing there: the
            # leader's proposal comes with its own ECHO and READY for it.
            return [(dest, self._new_view, 0.0), (dest, ctx.resign(value), 0.0),
                    *((dest, ctx.resign(kind(1, target.slot, value.digest)), 0.0)
                      for kind in (OrderEcho, OrderReady))]
        if isinstance(message, OrderEcho) and (message.view, message.slot) == (1, target.slot):
            self.rewrites += 1  # the faulty members vote for the other value
            return [(dest, ctx.resign(attrs.evolve(message, digest=value.digest)), 0.0)]
        return [(dest, frame, 0.0)]

    def _short_new_view(self, ctx: FaultContext) -> bytes:
        """Its own VIEW-CHANGE without the target and U's: f+1 in all, and their plan."""
        own = ViewChange(1, None, ())
        return _new_view(ctx, 1, [ctx.resign(own), *self._changes.values()])

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "unprepared": sorted(self.unprepared),
                "prepared": sorted(self.prepared)}


class StaleVotes(Coalition):
    """Votes of an old view replayed into the next one (see the module docstring)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        self.sequencer, self.leader = view_leader(0, n), view_leader(1, n)
        self.members, honest = _faulty_next_leader(n, f, rng)
        self.prepared = frozenset([self.sequencer, *honest[:f - 1]])
        self.unprepared = frozenset(honest[f - 1:])
        self.victim = min(self.unprepared)
        self.quorum = n - f
        self.first_slot = int(spec.value("slot"))
        self.target: Order | None = None
        """The sequencer's view-0 proposal for the target slot, once it made it."""
        self._changes: dict[int, bytes] = {}  # VIEW-CHANGEs for view 1 without the target
        self._old_votes: dict[tuple[int, str], bytes] = {}  # honest view-0 votes for it
        self._new_view: bytes | None = None
        self._pending: list[tuple[int, bytes]] = []
        self.replayed = 0
        """Votes of view 0 the coalition passed on to the victim in view 1."""

    def _at_target(self, message: Message, view: int) -> bool:
        return self.target is not None and isinstance(message, (Order, OrderEcho)) \
            and (message.view, message.slot) == (view, self.target.slot)

    def _told(self, dest: int) -> Order:
        """What the leader of view 1 proposes for the target to ``dest``: the sequencer's
        value to the victim, the same batches reversed to everyone else."""
        assert self.target is not None
        refs = self.target.refs if dest == self.victim else self.target.refs[::-1]
        return Order(1, self.target.slot, refs)

    def _hold(self, source: int, dest: int, message: Message) -> bool:
        if dest in self.members:
            return False
        if isinstance(message, Order) and source == self.sequencer and message.view == 0:
            if self.target is None and message.slot >= self.first_slot and \
                    len(message.refs) > 1:
                self.target = message
            if self.target is not None and message.slot > self.target.slot:
                return True  # the sequencer seems to stop: the view must change
        if self.target is None:
            return False
        if isinstance(message, (SlotProof, LogSegment)):
            return dest == self.victim  # the victim is to learn the slot from old votes
        if self._at_target(message, 1):
            # The victim and the rest never compare their votes, so neither passes the
            # other the leader's contradicting ORDER as evidence.
            return isinstance(message, OrderEcho) and (dest == self.victim) != (
                source == self.victim)
        if isinstance(message, Order) or not self._at_target(message, 0):
            return False
        # ECHOs reach the prepared members only, READYs nobody: nothing commits in view 0
        return isinstance(message, OrderReady) or dest in self.unprepared

    def observe(self, source: int, frame: bytes, now: float) -> None:
        if source in self.members:
            return
        if source in self.unprepared and _view_change_of(source, frame, 1):
            self._changes.setdefault(source, frame)
            return
        vote = own_frame(source, frame, (OrderEcho, OrderReady))
        if vote is None:
            return
        if source != self.victim and self._at_target(vote.message, 0):
            self._old_votes.setdefault((source, vote.message.KIND), frame)
        elif source == self.victim and self._at_target(vote.message, 1) \
                and not self.replayed:
            # The victim is in view 1 and voted there: now its view-0 votes may count.
            self._pending = [(self.victim, old) for old in self._old_votes.values()]
            self.replayed = len(self._pending)

    def react(self, ctx: FaultContext) -> list[tuple[int, bytes]]:
        """The honest members' view-0 votes for the target, passed on as they were signed."""
        pending, self._pending = self._pending, []
        return pending

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if self.target is None:
            return [(dest, frame, 0.0)]
        slot = self.target.slot
        if self._at_target(message, 0) and dest not in self.members and ctx.now < self.until:
            self.rewrites += 1  # its own view-0 votes for the target wait too
            return [(dest, frame, self.until - ctx.now)]
        if isinstance(message, ViewChange) and message.view == 1:
            self.rewrites += 1
            mine = ctx.resign(attrs.evolve(message, prepared=tuple(
                p for p in message.prepared if p.slot != slot)))
            self._changes[ctx.member] = mine
            return [(dest, mine, 0.0)]
        if isinstance(message, NewView) and message.view == 1:
            self.rewrites += 1
            if self._new_view is None:
                if self.leader not in self._changes or len(self._changes) < self.quorum:
                    return []  # not yet: its core sends the NEW-VIEW again
                rest = [self._changes[m] for m in sorted(self._changes) if m != self.leader]
                chosen = [self._changes[self.leader], *rest[:self.quorum - 1]]
                self._new_view = _new_view(ctx, 1, chosen)
            told = self._told(dest)
            return [(dest, self._new_view, 0.0), (dest, ctx.resign(told), 0.0),
                    *((dest, ctx.resign(kind(1, slot, told.digest)), 0.0)
                      for kind in (OrderEcho, OrderReady))]
        if self._at_target(message, 1):
            self.rewrites += 1  # one value to the victim, the other to the rest
            told = self._told(dest)
            if isinstance(message, OrderEcho):
                return [(dest, ctx.resign(attrs.evolve(message, digest=told.digest)), 0.0)]
            return [(dest, ctx.resign(told), 0.0)]
        return [(dest, frame, 0.0)]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "victim": self.victim,
                "prepared": sorted(self.prepared), "unprepared": sorted(self.unprepared),
                "replayed": self.replayed}


class PreparedTwice(Coalition):
    """One slot prepared with two values in two views (see the module docstring)."""

    def __init__(self, spec: AdversarySpec, n: int, f: int, rng: random.Random,
                 settings: Settings) -> None:
        super().__init__(spec, n, f, rng, settings)
        self.sequencer = view_leader(0, n)
        self.committer, self.collector = view_leader(1, n), view_leader(2, n)
        rest = [m for m in range(n) if m not in (self.sequencer, self.committer,
                                                 self.collector)]
        self.members = frozenset([self.sequencer, *rng.sample(rest, f - 1)])
        self.witness = rng.choice([m for m in rest if m not in self.members])
        quorum = n - f
        order = [self.collector, self.witness, self.committer, *sorted(self.members),
                 *sorted(set(rest) - self.members - {self.witness})]
        self.counted = frozenset(order[:quorum])
        """Whose VIEW-CHANGEs for view 2 reach its leader before ``until``."""
        self.first_slot = int(spec.value("slot"))
        self.slot: int | None = None
        """The target slot, once the faulty sequencer proposed there."""
        self.first: Order | None = None
        """What the witness alone prepares there in view 0."""
        self.second: Order | None = None
        """What the leader of view 1 proposes there."""

    def _at(self, message: Message, view: int) -> bool:
        return isinstance(message, (Order, OrderEcho)) and self.slot is not None \
            and (message.view, message.slot) == (view, self.slot)

    def _held(self, source: int, dest: int, message: Message) -> bool:
        """Frames to honest ``dest`` the network keeps back until ``until`` (from whomever)."""
        if self.slot is None:
            return False
        if isinstance(message, (SlotProof, LogSegment)):
            return True  # nobody learns the slot committed in view 1 by catch-up
        if isinstance(message, ViewChange):
            return (message.view == 1 and source == self.witness) or (
                message.view == 2 and dest == self.collector and source not in self.counted)
        if not isinstance(message, OrderEcho):
            return False
        if self._at(message, 0):  # the witness alone prepares, nobody commits
            return isinstance(message, OrderReady) or dest != self.witness
        if not self._at(message, 1):
            return False
        # the view-1 value prepares everywhere but at the witness, commits at one member
        if isinstance(message, OrderReady):
            return dest != self.committer
        return dest == self.witness

    def _hold(self, source: int, dest: int, message: Message) -> bool:
        if dest in self.members:
            # Its own cores must not commit the view-1 value either, or they would not vote
            # in view 2 for what its NEW-VIEW re-proposes.
            return self.slot is not None and (
                isinstance(message, (SlotProof, LogSegment))
                or (isinstance(message, OrderReady) and self._at(message, 1)))
        if isinstance(message, Order) and source == self.committer and message.view == 1 \
                and self.slot is not None:
            if message.slot == self.slot and self.second is None:
                self.second = message
            if message.slot > self.slot:
                return True  # the leader of view 1 seems to stop: the view changes again
        return self._held(source, dest, message)

    def outgoing(self, ctx: FaultContext, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if isinstance(message, Order) and message.view == 0:
            if self.slot is None and message.slot >= self.first_slot and \
                    len(message.refs) > 1:
                # The leader of view 1 will propose the batches in their order, so the
                # witness's value, the same batches reversed, differs from it.
                self.slot = message.slot
                self.first = attrs.evolve(message, refs=message.refs[::-1])
            if self.slot is not None and message.slot > self.slot:
                self.rewrites += 1
                return []  # proposes nothing more: the view must change
        if self.slot is None or self.first is None:
            return [(dest, frame, 0.0)]
        if isinstance(message, ViewChange) and message.view == 1:
            self.rewrites += 1
            return [(dest, ctx.resign(attrs.evolve(message, prepared=tuple(
                p for p in message.prepared if p.slot != self.slot))), 0.0)]
        if self._at(message, 0):
            self.rewrites += 1
            told: Message = self.first
            if isinstance(message, OrderEcho):
                told = attrs.evolve(message, digest=self.first.digest)
            frame = ctx.resign(told)
        if dest not in self.members and ctx.now < self.until and \
                self._held(ctx.member, dest, message):
            self.rewrites += 1
            return [(dest, frame, self.until - ctx.now)]
        return [(dest, frame, 0.0)]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "witness": self.witness, "committer": self.committer,
                "collector": self.collector, "counted": sorted(self.counted),
                "second": self.second is not None}


def _new_view(ctx: FaultContext, view: int, frames: list[bytes]) -> bytes:
    """A NEW-VIEW for ``view`` signed by ``ctx.member``, made of the VIEW-CHANGE ``frames``
    the coalition chose, with the plan they imply."""
    chosen = sorted((decode_frame(f).parse() for f in frames), key=lambda c: c.sender)
    messages = [c.message for c in chosen if isinstance(c.message, ViewChange)]
    plan = plan_new_view(view, messages)
    return ctx.resign(NewView(view, tuple(c.to_frame() for c in chosen), plan.reproposals))


def _view_change_of(source: int, frame: bytes, view: int) -> bool:
    """True if ``frame`` is a VIEW-CHANGE for ``view`` that ``source`` signed itself."""
    signed = own_frame(source, frame, (ViewChange,))
    return signed is not None and isinstance(signed.message, ViewChange) \
        and signed.message.view == view


_CLASSES: dict[str, Callable[[AdversarySpec, int, int, random.Random, Settings], Coalition]] = {
    "split": Split, "edge": Edge, "forged-split": ForgedSplit, "isolate": Isolate,
    "relabel": Relabel, "short-newview": ShortNewView, "stale-votes": StaleVotes,
    "prepared-twice": PreparedTwice,
}


def make_coalition(spec: AdversarySpec, n: int, f: int, *, seed: int,
                   settings: Settings) -> Coalition:
    """The coalition of ``spec`` for a cluster of ``n`` members tolerating ``f``, its roles
    drawn from ``seed``; :class:`ConfigError` if the cluster tolerates no faulty member."""
    if f < 1:
        raise ConfigError(f"adversary {spec}: n={n} tolerates no faulty member")
    rng = random.Random(f"adversary/{seed}/{n}/{spec}")
    return _CLASSES[spec.strategy](spec, n, f, rng, settings)
