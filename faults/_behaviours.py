"""Fault behaviours as wrappers around one member's inputs and outputs.

A behaviour never edits a core: it decides which frames its member receives and when, and it
rewrites, delays, drops or adds outgoing frames. Byzantine behaviours hold the member's real
signing key (through :class:`FaultContext`), so their lies are validly signed - as ByzzFuzz
re-signs its mutations - unless forgery is the point. The same wrappers serve the simulator
and, later, the TCP runtime: they only see frames, time and a seeded random source.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

import attrs

from btob._errors import WireError
from btob.core.clientwire import Notice, Receipt, SignedReply, decode_client_frame
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    Chunk,
    ChunkRequest,
    Echo,
    Final,
    LogSegment,
    Message,
    NewView,
    Order,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    OrderReady,
    PreparedCert,
    Ready,
    Send,
    Signed,
    SlotProof,
    ViewChange,
    Vote,
    decode_frame,
)
from btob.faults._spec import BEHAVIOURS, FaultSpec

__all__ = ["FaultContext", "ProcessFault", "make_fault", "own_frame"]

Outgoing = list[tuple[int, bytes, float]]
"""(destination, frame, extra delay in seconds) triples."""


@attrs.define
class FaultContext:
    """What a behaviour may use: its member's identity and key, a seeded random source, time."""

    member: int
    n: int
    rng: random.Random
    settings: Settings
    resign: Callable[[Message], bytes]
    """The frame of ``message`` validly signed by this member."""
    resign_for_cluster: Callable[[Message, bytes], bytes]
    """The frame of ``message`` signed by this member for another cluster id."""
    now: float = 0.0

    def others(self) -> list[int]:
        """Every member but this one."""
        return [m for m in range(self.n) if m != self.member]


def own_frame(source: int, frame: bytes, kinds: tuple[type[Message], ...]) -> Signed | None:
    """``frame`` decoded, if it is one of ``kinds`` (exactly) that ``source`` signed itself;
    None otherwise, or if it does not decode (the receiver's own gate counts that)."""
    try:
        raw = decode_frame(frame)
        if raw.sender != source or all(raw.code != kind.CODE for kind in kinds):
            return None
        return raw.parse()
    except WireError:
        return None


class ProcessFault:
    """Base behaviour: passes everything through. Subclasses override the hooks they need."""

    byzantine = False

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self._deck: list[int] = []

    def _value(self, name: str) -> float | int | str:
        value = self.spec.params.get(name)
        if value is None:  # a spec built in code may leave defaults out
            default = {p.name: p.default for p in BEHAVIOURS[self.spec.behaviour].params}[name]
            assert default is not None, f"{self.spec.behaviour} needs {name}"
            value = default
        return value

    def param(self, name: str) -> float:
        """A numeric parameter (its default when the spec leaves it out)."""
        value = self._value(name)
        assert not isinstance(value, str)
        return float(value)

    def text(self, name: str) -> str:
        """A text parameter (its default when the spec leaves it out)."""
        return str(self._value(name))

    def draw(self, choices: int) -> int:
        """One of ``range(choices)`` from a shuffled deck, dealt out before it is shuffled
        again: a behaviour that tells several kinds of lie tells each of them within every
        ``choices`` draws, even in a run of a few ticks."""
        if not self._deck:
            self._deck = self.ctx.rng.sample(range(choices), choices)
        return self._deck.pop()

    def crash_on_send(self, kind: str) -> bool:
        """True if the member crashes instead of sending a frame of ``kind`` now."""
        return False

    def hold_until(self) -> float | None:
        """While paused, the time processing resumes; None when running."""
        return None

    def processing_delay(self) -> float:
        """Seconds each event takes to process."""
        return 0.0

    def incoming(self, source: int, frame: bytes) -> bool:
        """False to drop a frame from ``source`` before the member sees it."""
        return True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        """What actually leaves for ``dest`` in place of ``frame``."""
        return [(dest, frame, 0.0)]

    def tick(self) -> list[tuple[int, bytes]]:
        """Frames to inject on their own initiative at each tick."""
        return []

    def react(self) -> list[tuple[int, bytes]]:
        """Frames to inject at once, in answer to the input just taken (see :meth:`incoming`)."""
        return []

    def client_request(self, frame: bytes) -> bool:
        """False to keep a client's REQUEST frame from the member."""
        return True

    def client_output(self, client: bytes, frame: bytes) -> list[tuple[bytes, bytes]]:
        """What actually leaves for clients in place of the RECEIPT or NOTICE ``frame`` for
        ``client``: ``(client key, frame)`` pairs."""
        return [(client, frame)]


class Crash(ProcessFault):
    """Crash at a time, after k frames sent, or on reaching a protocol step."""

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self.sent = 0

    @property
    def timed(self) -> bool:
        """True when only the time matters (the simulator schedules the crash itself)."""
        return not self.param("after") and not self.text("step")

    def crash_on_send(self, kind: str) -> bool:
        if self.timed or self.ctx.now < self.param("at"):
            return False
        self.sent += 1
        after, step = self.param("after"), self.text("step")
        return bool((after and self.sent > after) or (step and kind == step))


class Pause(ProcessFault):
    """Stops processing between ``at`` and ``at + for``; queued events are handled after."""

    def hold_until(self) -> float | None:
        start = self.param("at")
        end = start + self.param("for")
        return end if start <= self.ctx.now < end else None


class Slow(ProcessFault):
    """A slow CPU: every event costs ``delay`` seconds."""

    def processing_delay(self) -> float:
        return self.param("delay")


class Omission(ProcessFault):
    """Drops sent and/or received messages with probability p, by peer and kind."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        peers = self.text("to")
        self.peers = None if peers == "all" else {int(p) for p in peers.split("+") if p}

    def _hits(self, peer: int, kind: str) -> bool:
        if self.peers is not None and peer not in self.peers:
            return False
        if self.text("kinds") and not kind.startswith(self.text("kinds")):
            return False
        return self.ctx.rng.random() < self.param("p")

    def incoming(self, source: int, frame: bytes) -> bool:
        if self.text("dir") not in ("recv", "both"):
            return True
        return not self._hits(source, "")

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        if self.text("dir") in ("send", "both") and self._hits(dest, signed.kind):
            return []
        return [(dest, frame, 0.0)]


class Silent(ProcessFault):
    """Receives and computes, never speaks."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        return []


class _Split(ProcessFault):
    """Shared by equivocators: per instance, a random half of the members gets the lie."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._splits: dict[object, frozenset[int]] = {}
        self._lies: dict[bytes, bytes] = {}

    def lied_to(self, instance: object) -> frozenset[int]:
        split = self._splits.get(instance)
        if split is None:
            others = self.ctx.others()
            chosen = self.ctx.rng.sample(others, len(others) // 2)
            act = self.ctx.rng.random() < self.param("p")
            split = self._splits[instance] = frozenset(chosen if act else ())
            if len(self._splits) > 4096:
                self._splits.pop(next(iter(self._splits)))
        return split

    def lie(self, frame: bytes, make: Callable[[], Message]) -> bytes:
        lie = self._lies.get(frame)
        if lie is None:
            lie = self._lies[frame] = self.ctx.resign(make())
            if len(self._lies) > 4096:
                self._lies.pop(next(iter(self._lies)))
        return lie


class Equivocate(_Split):
    """Different batches (as origin) or different ORDERs (as sequencer) to two halves, and
    its own ECHO/READY votes for the lie to the half that was lied to.

    Under the signed-echo BRB it also certifies each story with too few signatures: when
    every member of a half has echoed its batch back and the half with its own ECHO is
    still short of q, it sends that half a FINAL whose certificate is those ECHOs; its
    real FINAL, if any, goes only to the half told the truth. A member that takes a
    certificate of fewer than q signers delivers another batch under the same counter
    than the rest."""

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._lie_digests: dict[object, bytes] = {}
        self._told: dict[int, tuple[tuple[Batch, frozenset[int]], ...]] = {}
        self._echoes: dict[tuple[int, bytes], dict[int, bytes]] = {}
        self._bracha = False  # seen once an ECHO goes to, or comes for, another member
        self._thin: list[tuple[int, bytes]] = []

    def incoming(self, source: int, frame: bytes) -> bool:
        if self._bracha or not self._told:
            return True
        raw = own_frame(source, frame, (Echo,))
        if raw is None:
            return True
        echo = raw.message
        assert isinstance(echo, Echo)
        if echo.origin != self.ctx.member:  # only Bracha's ECHOs go to every member
            self._bracha = True
            return True
        for batch, members in self._told.get(echo.counter, ()):
            if source not in members or echo.digest != batch.digest():
                continue
            votes = self._echoes.setdefault((echo.counter, echo.digest), {})
            votes[source] = raw.signature
            if len(self._echoes) > 4096:
                self._echoes.pop(next(iter(self._echoes)))
            if len(votes) == len(members) and \
                    len(votes) + 1 < Quorums.for_cluster(self.ctx.n).quorum:
                own = decode_frame(self.ctx.resign(echo)).signature
                final = Final(self.ctx.member, echo.counter, batch,
                              tuple(Vote(m, sig) for m, sig in
                                    sorted({**votes, self.ctx.member: own}.items())))
                thin = self.ctx.resign(final)
                self._thin.extend((dest, thin) for dest in sorted(members))
        return True

    def react(self) -> list[tuple[int, bytes]]:
        thin, self._thin = self._thin, []
        return thin

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if type(message) is Echo and message.origin == self.ctx.member \
                and dest != self.ctx.member:
            self._bracha = True  # only Bracha's ECHOs go to every member
        if isinstance(message, Final) and message.origin == self.ctx.member \
                and dest in self.lied_to(("send", message.counter)):
            return []  # the half lied to hears of the truth only from the others
        if isinstance(message, Send) and dest in self.lied_to(("send", message.counter)):
            batch = message.batch
            other = Batch(batch.first_counter, tuple(p + b"~" for p in batch.payloads))
            self._lie_digests[("send", message.counter)] = other.digest()
            if message.counter not in self._told:
                liars = self.lied_to(("send", message.counter))
                self._told[message.counter] = (
                    (batch, frozenset(self.ctx.others()) - liars), (other, liars))
                if len(self._told) > 4096:
                    self._told.pop(next(iter(self._told)))
            return [(dest, self.lie(frame, lambda: Send(message.counter, other)), 0.0)]
        if isinstance(message, Order) and dest in self.lied_to(("order", message.view,
                                                                 message.slot)):
            def other_order() -> Order:
                refs = message.refs
                if len(refs) > 1:
                    return Order(message.view, message.slot, refs[:-1])
                ref = refs[0]
                fake = BatchRef(ref.origin, ref.counter, self.ctx.rng.randbytes(32))
                return Order(message.view, message.slot, (fake,))
            lie = self.lie(frame, other_order)
            order = decode_frame(lie).parse().message
            assert isinstance(order, Order)
            self._lie_digests[("order", message.view, message.slot)] = order.digest
            return [(dest, lie, 0.0)]
        vote: Echo | OrderEcho | None = None
        instance: object = None
        if isinstance(message, Echo) and message.origin == self.ctx.member:
            vote, instance = message, ("send", message.counter)
        elif isinstance(message, OrderEcho):
            vote, instance = message, ("order", message.view, message.slot)
        digest = self._lie_digests.get(instance)
        if vote is not None and digest is not None and dest in self.lied_to(instance):
            return [(dest, self.ctx.resign(attrs.evolve(vote, digest=digest)), 0.0)]
        return [(dest, frame, 0.0)]


class VoteEquivocate(_Split):
    """ECHO and READY votes for a made-up digest to half the members."""

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if isinstance(message, (Echo, OrderEcho)):
            key = (type(message).__name__, *attrs.astuple(message)[:-1])
            if dest in self.lied_to(key):
                fake = self.ctx.rng.randbytes(32)
                return [(dest, self.lie(frame, lambda: attrs.evolve(message, digest=fake)),
                         0.0)]
        return [(dest, frame, 0.0)]


class _Recorder(ProcessFault):
    """Keeps the latest frames it sent and received, boundedly, for later misuse."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self.seen: deque[tuple[bytes, Signed | None]] = deque(maxlen=256)

    def incoming(self, source: int, frame: bytes) -> bool:
        self.seen.append((frame, None))
        return True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        if not self.seen or self.seen[-1][0] is not frame:
            self.seen.append((frame, signed))
        return [(dest, frame, 0.0)]

    def _count(self) -> int:
        return int(self.param("k"))


class Forge(_Recorder):
    """Frames with broken signatures and frames claiming another member's identity: replays
    of its own messages under other names, and a whole forged commit - an ORDER in the
    sequencer's name and READYs in everyone's - for another value, sent to one member the
    moment it echoes the real ORDER (while the slot is open there). The forged ORDER carries
    the sequencer's real signature of its real ORDER for that slot, which every member
    verified: only the body differs, as only a verifier that trusts a signature it saw
    before without comparing the body would miss."""

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._forged: set[tuple[int, int]] = set()
        self._orders: deque[Order] = deque(maxlen=16)
        self._latest: tuple[int, bytes] | None = None
        self._planned: dict[tuple[int, int], tuple[int, list[bytes]]] = {}
        """(view, slot) -> the target and the forged frames, sent once it echoes the slot."""

    def incoming(self, source: int, frame: bytes) -> bool:
        self._latest = (source, frame)
        return super().incoming(source, frame)

    def react(self) -> list[tuple[int, bytes]]:
        latest, self._latest = self._latest, None
        signed = None if latest is None else own_frame(*latest, (Order, OrderEcho))
        if signed is None:
            return []
        message = signed.message
        if isinstance(message, Order):
            self._on_order(signed, message)
            return []
        # The target's ECHO of the real ORDER: it has verified that signature by now.
        assert isinstance(message, OrderEcho)
        planned = self._planned.get((message.view, message.slot))
        if planned is None or planned[0] != signed.sender:
            return []
        del self._planned[(message.view, message.slot)]
        return [(planned[0], frame) for frame in planned[1]]

    def _on_order(self, real: Signed, order: Order) -> None:
        """Plan the forged commit of another value for ``order``'s slot."""
        earlier = [o for o in self._orders if o.refs != order.refs]
        self._orders.append(order)
        if not earlier or (order.view, order.slot) in self._forged:
            return
        self._forged.add((order.view, order.slot))
        rng = self.ctx.rng
        # Another slot's batches under this slot's number: a value the target can deliver.
        fake = Order(order.view, order.slot, rng.choice(earlier).refs)
        sequencer = real.sender
        target = rng.choice([m for m in self.ctx.others() if m != sequencer])
        forged = [Signed(sequencer, fake, fake.to_body(), real.signature)]
        ready = OrderReady(order.view, order.slot, fake.digest)
        mine = decode_frame(self.ctx.resign(ready)).parse()
        forged += [Signed(m, ready, mine.body, mine.signature) for m in range(self.ctx.n)]
        self._planned[(order.view, order.slot)] = (target, [f.to_frame() for f in forged])
        while len(self._planned) > 16:  # bounded: the oldest plans lapse
            del self._planned[next(iter(self._planned))]

    def tick(self) -> list[tuple[int, bytes]]:
        own = [s for _, s in self.seen if s is not None]
        out: list[tuple[int, bytes]] = []
        rng = self.ctx.rng
        for _ in range(self._count() if own else 0):
            signed = rng.choice(own)
            dest = rng.choice(self.ctx.others())
            if rng.random() < 0.5:
                broken = bytearray(signed.signature)
                broken[rng.randrange(64)] ^= 0xFF
                forged = Signed(signed.sender, signed.message, signed.body, bytes(broken))
            else:
                victim = rng.choice(self.ctx.others())  # claim to be someone else
                forged = Signed(victim, signed.message, signed.body, signed.signature)
            out.append((dest, forged.to_frame()))
        return out


class Replay(_Recorder):
    """Old frames again, and its own messages signed for another cluster."""

    def tick(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        rng = self.ctx.rng
        for _ in range(self._count() if self.seen else 0):
            frame, signed = rng.choice(self.seen)
            dest = rng.choice(self.ctx.others())
            if signed is not None and rng.random() < 0.3:
                frame = self.ctx.resign_for_cluster(signed.message, b"another-cluster")
            out.append((dest, frame))
        return out


class Garbage(_Recorder):
    """Random bytes, truncated frames and, now and then, an oversized frame."""

    def tick(self) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        rng = self.ctx.rng
        for _ in range(self._count()):
            dest = rng.choice(self.ctx.others())
            roll = rng.random()
            if roll < 0.01:
                frame = bytes(self.ctx.settings.frame_bytes_max + 1)  # really oversized
            elif roll < 0.03:
                frame = b"\xc6" + (2**31).to_bytes(4, "big") + rng.randbytes(64)  # claims 2 GiB
            elif roll < 0.5 and self.seen:
                real = rng.choice(self.seen)[0]
                frame = real[: rng.randrange(len(real))]
            else:
                frame = rng.randbytes(rng.randrange(1, 200))
            out.append((dest, frame))
        return out


_NUMERIC = ("view", "slot", "counter", "upto", "next_slot", "first_counter")


class Mutate(_Recorder):
    """Small-scope mutations of real messages, validly re-signed (ByzzFuzz), in the round
    from ``at`` lasting ``for`` seconds (to the end when 0)."""

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        super().outgoing(dest, frame, signed)
        rng = self.ctx.rng
        start, lasts = self.param("at"), self.param("for")
        if self.ctx.now < start or (lasts and self.ctx.now >= start + lasts):
            return [(dest, frame, 0.0)]  # outside its round
        if rng.random() >= self.param("p"):
            return [(dest, frame, 0.0)]
        message = signed.message
        fields = [f for f in _NUMERIC if hasattr(message, f)]
        if isinstance(message, Send) and rng.random() < 0.3:
            earlier = [s.message for _, s in self.seen
                       if s is not None and isinstance(s.message, Send) and s.message != message]
            if earlier:
                old = rng.choice(earlier)
                assert isinstance(old, Send)
                mutated: Message = attrs.evolve(message, batch=attrs.evolve(
                    message.batch, payloads=old.batch.payloads))
                return [(dest, self.ctx.resign(mutated), 0.0)]
        if not fields:
            return [(dest, frame, 0.0)]
        name = rng.choice(fields)
        value = max(0, getattr(message, name) + rng.choice((-1, 1)))
        mutated = attrs.evolve(message, **{name: value})
        return [(dest, self.ctx.resign(mutated), 0.0)]


class BadCheckpoint(ProcessFault):
    """Signs, at each real checkpoint boundary, a CHECKPOINT with a wrong chain digest, a
    wrong state root or both (``lie``; ``any``: one of them per boundary, each within every
    three boundaries), in place of its real one, to the members ``to`` names (the others get
    the real one). The lie of a boundary is the same every time it is sent, so a receiver
    holds one wrong vote from it, not two conflicting ones: it never matches the honest
    votes, and only a member that counts votes whatever they sign forms a certificate with
    it."""

    byzantine = True
    LIES = ("digest", "state", "both")
    """What a lie replaces, by name."""

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        peers = self.text("to")
        self.peers = None if peers == "all" else {int(p) for p in peers.split("+") if p}
        self._lies: dict[Checkpoint, bytes] = {}
        """The real CHECKPOINT -> the frame of its lie."""

    def _lie(self, real: Checkpoint) -> bytes:
        lie = self._lies.get(real)
        if lie is None:
            what = self.text("lie")
            if what == "any":
                what = self.LIES[self.draw(len(self.LIES))]
            rng = self.ctx.rng
            digest = rng.randbytes(len(real.digest)) if what != "state" else real.digest
            state = rng.randbytes(len(real.state)) if what != "digest" else real.state
            lie = self._lies[real] = self.ctx.resign(Checkpoint(real.upto, digest, state))
            while len(self._lies) > 64:
                self._lies.pop(next(iter(self._lies)))
        return lie

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if not isinstance(message, Checkpoint) or (
                self.peers is not None and dest not in self.peers):
            return [(dest, frame, 0.0)]
        return [(dest, self._lie(message), 0.0)]


class Censor(ProcessFault):
    """As sequencer, removes one origin's batches from every ORDER."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if not isinstance(message, Order):
            return [(dest, frame, 0.0)]
        victim = int(self.param("origin"))
        refs = tuple(r for r in message.refs if r.origin != victim)
        if len(refs) == len(message.refs):
            return [(dest, frame, 0.0)]
        if not refs:
            return []
        return [(dest, self.ctx.resign(attrs.evolve(message, refs=refs)), 0.0)]


class DoubleBook(ProcessFault):
    """As sequencer, names each batch of an ORDER again in its next ORDER: the same batch in
    two slots in flight, both of which may commit. Delivery must skip the second one - a
    member that waits for it instead never gets past that slot."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._previous: tuple[BatchRef, ...] = ()
        self._booked: tuple[bytes, bytes] | None = None  # (the core's frame, what leaves)

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if not isinstance(message, Order):
            return [(dest, frame, 0.0)]
        if self._booked is None or self._booked[0] is not frame:  # once per ORDER
            named = {(r.origin, r.counter) for r in message.refs}
            again = tuple(r for r in self._previous if (r.origin, r.counter) not in named)
            refs = (message.refs + again)[:self.ctx.settings.slot_refs_max]
            self._previous = message.refs
            booked = frame if refs == message.refs or self.ctx.rng.random() >= self.param("p") \
                else self.ctx.resign(attrs.evolve(message, refs=refs))
            self._booked = (frame, booked)
        return [(dest, self._booked[1], 0.0)]


class Stall(ProcessFault):
    """As sequencer, holds each ORDER just under the view-change timeout."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        if isinstance(signed.message, Order):
            wait = self.param("fraction") * self.ctx.settings.view_change_timeout_s
            return [(dest, frame, wait)]
        return [(dest, frame, 0.0)]


class Flood(ProcessFault):
    """Validly signed messages for far-future slots, views and checkpoints, oversized batches."""

    byzantine = True

    def tick(self) -> list[tuple[int, bytes]]:
        rng = self.ctx.rng
        settings = self.ctx.settings
        out: list[tuple[int, bytes]] = []
        for _ in range(int(self.param("k"))):
            far = rng.randrange(10**6, 10**9)
            fake = BatchRef(rng.randrange(self.ctx.n), far, rng.randbytes(32))
            choice = rng.randrange(5)
            message: Message
            if choice == 0:
                message = Order(rng.randrange(3), far, (fake,))
            elif choice == 1:
                message = OrderEcho(0, far, rng.randbytes(32))
            elif choice == 2:
                message = ViewChange(far, None, ())
            elif choice == 3:
                message = Checkpoint(far * settings.checkpoint_interval, rng.randbytes(32))
            else:
                payloads = tuple(b"x" for _ in range(settings.batch_payloads_max + 1))
                message = Send(rng.randrange(64), Batch(0, payloads))
            frame = self.ctx.resign(message)
            out += [(dest, frame) for dest in self.ctx.others()]
        return out


class OutOfBounds(ProcessFault):
    """Validly signed messages that each break one structural rule of dissemination and
    ordering: an instance of an origin that is not a member, a SEND beyond the window, kinds
    the reliable broadcast in use does not take (a FINAL to Bracha, a READY to direct
    dissemination, an uncertified FINAL to the signed echo), an ORDER that names one batch
    twice (refused as malformed when this member proposes the slot), and a frame whose body
    does not decode as its kind (an ECHO whose digest is cut short)."""

    byzantine = True

    def tick(self) -> list[tuple[int, bytes]]:
        rng, n = self.ctx.rng, self.ctx.n
        out: list[tuple[int, bytes]] = []
        for _ in range(int(self.param("k"))):
            batch = Batch(0, (rng.randbytes(8),))
            other = rng.choice(self.ctx.others()) if n > 1 else self.ctx.member
            choice = self.draw(6)
            message: Message
            if choice == 0:
                message = Echo(n + rng.randrange(8), rng.randrange(4), rng.randbytes(32))
            elif choice == 5:
                # Encoding checks nothing: a digest cut short is signed, and does not decode.
                message = Echo(other, rng.randrange(4), rng.randbytes(rng.randrange(1, 32)))
            elif choice == 1:
                message = Send(rng.randrange(10**6, 10**9), batch)
            elif choice == 2:
                message = Final(self.ctx.member, rng.randrange(4), batch, ())
            elif choice == 3:
                # Far ahead, so that no member skips it unread as a vote for a finished
                # instance: a core that does not take READYs must refuse it by its kind.
                message = Ready(other, rng.randrange(10**6, 10**9), batch.digest())
            else:
                ref = BatchRef(other, rng.randrange(4), batch.digest())
                message = Order(0, rng.randrange(8), (ref, ref))
            frame = self.ctx.resign(message)
            out += [(dest, frame) for dest in self.ctx.others()]
        return out


class BadViewChange(ProcessFault):
    """Validly signed view-change messages built from parts that do not hold, for the view
    after the latest it has seen: a VIEW-CHANGE whose prepared certificate carries one vote
    with a junk signature, a NEW-VIEW with no VIEW-CHANGEs at all (from a member that is not
    that view's leader, or too few from one that is), a NEW-VIEW beyond the view window."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._view = 0

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        self._view = max(self._view, getattr(signed.message, "view", 0))
        return [(dest, frame, 0.0)]

    def tick(self) -> list[tuple[int, bytes]]:
        rng, view = self.ctx.rng, self._view + 1
        out: list[tuple[int, bytes]] = []
        for _ in range(int(self.param("k"))):
            choice = rng.randrange(3)
            message: Message
            if choice == 0:
                ref = BatchRef(rng.choice(self.ctx.others() or [self.ctx.member]), 0,
                               rng.randbytes(32))
                junk = Vote(self.ctx.member, rng.randbytes(64))
                message = ViewChange(view, None, (PreparedCert(view - 1, rng.randrange(4),
                                                               (ref,), (junk,)),))
            elif choice == 1:
                message = NewView(view, (), ())
            else:
                message = NewView(view + self.ctx.settings.view_window + 1, (), ())
            frame = self.ctx.resign(message)
            out += [(dest, frame) for dest in self.ctx.others()]
        return out


class _Pending:
    """Frames a behaviour wants every peer to get once: each goes out along with the next
    frame to a peer that lacks it, and at the next tick to those that still do."""

    def __init__(self) -> None:
        self._frames: list[tuple[bytes, set[int]]] = []

    def add(self, frame: bytes) -> None:
        """Send ``frame`` to every peer once."""
        self._frames.append((frame, set()))

    def along_with(self, dest: int, frame: bytes) -> Outgoing:
        """``frame`` to ``dest``, followed by every pending frame ``dest`` lacks."""
        out: Outgoing = [(dest, frame, 0.0)]
        for extra, reached in self._frames:
            if dest not in reached:
                reached.add(dest)
                out.append((dest, extra, 0.0))
        return out

    def flush(self, peers: list[int]) -> list[tuple[int, bytes]]:
        """Every pending frame to each of ``peers`` that lacks it; nothing is pending after."""
        out = [(dest, extra) for extra, reached in self._frames
               for dest in peers if dest not in reached]
        self._frames = []
        return out


class Usurp(ProcessFault):
    """Proposes slots that are not its own: validly signed ORDERs, in its own name, for
    slots whose proposer is another member, sent to everyone ahead of that proposer - in the
    current view above the highest slot it has seen, and for those slots and a few below in
    the next two views before any view change (members hold the ordering messages of a view
    not installed yet and consider them as soon as its NEW-VIEW installs it, before the new
    sequencer's own ORDERs); and when a VIEW-CHANGE shows where a coming view will start, from
    there. Each names one batch of its own that will never exist (a counter far ahead, a
    random digest), so a member that took it would wait for that slot for ever; it goes both
    bare and carrying the batch's signed SEND, as UB's ORDERs do. In its own turns it
    proposes nothing."""

    byzantine = True
    FAR = 1 << 30
    """Counter of the batches its ORDERs name: beyond any dissemination window."""

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._view = 0
        self._top = -1
        """Highest slot seen in an ordering message."""
        self._excluded: tuple[int, ...] = ()
        self._moving = False
        """Seen two members propose in one view: the proposer rotates per slot."""
        self._proposers: dict[int, set[int]] = {}
        self._bases: dict[int, dict[int, int]] = {}
        """Per coming view: per VIEW-CHANGE signer, the first slot it leaves unprepared."""
        self._done: set[tuple[int, int]] = set()
        self._pending = _Pending()
        """Usurping ORDERs not yet sent to everyone, with the members they went to."""

    def _ahead(self) -> int:
        return 2 * self.ctx.settings.slots_in_flight_max

    def _proposer(self, view: int, slot: int) -> int:
        if not self._moving:
            return view % self.ctx.n
        excluded = self._excluded if view == self._view else ()
        rotation = [m for m in range(self.ctx.n) if m not in excluded]
        return rotation[(view + slot) % len(rotation)]

    def _usurp(self, view: int, slots: range) -> None:
        rng = self.ctx.rng
        for slot in slots:
            if (view, slot) in self._done or self._proposer(view, slot) == self.ctx.member:
                continue
            self._done.add((view, slot))
            batch = Batch(0, (rng.randbytes(16),))
            counter = self.FAR + rng.randrange(self.FAR)
            ref = BatchRef(self.ctx.member, counter, batch.digest())
            send = self.ctx.resign(Send(counter, batch))
            self._pending.add(self.ctx.resign(Order(view, slot, (ref,))))
            self._pending.add(self.ctx.resign(Order(view, slot, (ref,), (send,))))
        if len(self._done) > 8192:
            self._done = {key for key in self._done if key[0] >= self._view}

    def _cover(self) -> None:
        """Usurp the slots above the highest one seen in this view, and the same slots and
        those just below them in the next two views (where the NEW-VIEW's first free slot
        will lie), before their proposers get to them."""
        ahead = self._ahead()
        self._usurp(self._view, range(self._top + 1, self._top + 1 + ahead))
        for view in (self._view + 1, self._view + 2):
            self._usurp(view, range(max(0, self._top + 1 - 2 * ahead), self._top + 1 + ahead))

    def _learn(self, sender: int, message: Message) -> None:
        if isinstance(message, NewView) and message.view > self._view:
            self._view, self._excluded = message.view, message.excluded
            self._bases = {v: b for v, b in self._bases.items() if v > self._view}
            self._proposers = {v: p for v, p in self._proposers.items() if v >= self._view}
            self._cover()
        elif isinstance(message, ViewChange) and message.view > self._view:
            base = 0 if message.checkpoint is None else message.checkpoint.upto
            base = max([base, *(p.slot + 1 for p in message.prepared)])
            bases = self._bases.setdefault(message.view, {})
            bases[sender] = base
            self._usurp(message.view, range(min(bases.values()),
                                            max(bases.values()) + self._ahead()))
        elif isinstance(message, (Order, OrderEcho)) and message.view >= self._view:
            if isinstance(message, Order) and sender != self.ctx.member:
                proposers = self._proposers.setdefault(message.view, set())
                proposers.add(sender)
                self._moving = self._moving or len(proposers) > 1
            if message.view > self._view or message.slot > self._top:
                self._view, self._top = message.view, max(self._top, message.slot)
                self._cover()

    def incoming(self, source: int, frame: bytes) -> bool:
        try:
            signed = decode_frame(frame).parse()
        except WireError:
            return True  # not ours to judge: the member's own gate counts it
        message = signed.message
        if isinstance(message, Order) and any(r.counter >= self.FAR for r in message.refs):
            return True  # a usurping ORDER (ours relayed back, or a fellow usurper's)
        self._learn(signed.sender, message)
        return True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if isinstance(message, Order) and signed.sender == self.ctx.member:
            return []  # its own turns: nothing
        self._learn(self.ctx.member, message)
        if not self._done:
            self._cover()  # before the first sequencer's first ORDER
        return self._pending.along_with(dest, frame)

    def tick(self) -> list[tuple[int, bytes]]:
        if not self._done:
            self._cover()
        return self._pending.flush(self.ctx.others())


class ViewPush(ProcessFault):
    """Pushes members out of working views: VIEW-CHANGEs for views it leads itself, each
    valid as an honest one (validly signed, with the highest stable checkpoint certificate
    it has seen or none, and no prepared certificates), one view after another: whenever a
    VIEW-CHANGE for a view above the installed one goes by, for the next view it leads
    beyond it (keeping the last of the window's views for when members move on by timeout),
    and at the start of each installed view. It never sends the NEW-VIEW of a view it leads,
    so a member that left its view on its word alone waits there for a timeout."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._installed = 0
        self._wanted = 0
        """The highest view a VIEW-CHANGE seen asked for."""
        self._checkpoint: CheckpointCert | None = None
        self._pushed = 0
        """The highest view pushed so far."""
        self._pending = _Pending()

    def _next_led(self, above: int) -> int:
        n = self.ctx.n
        return above + 1 + (self.ctx.member - above - 1) % n

    def _push(self, above: int, *, reserve: bool) -> None:
        """A VIEW-CHANGE for the first view above ``above`` it leads, within the window
        (less one turn of the rotation while ``reserve``)."""
        view = self._next_led(max(above, self._pushed))
        limit = self._installed + self.ctx.settings.view_window - (self.ctx.n if reserve else 0)
        if view > limit:
            return
        self._pushed = view
        frame = self.ctx.resign(ViewChange(view, self._checkpoint, ()))
        self._pending.add(frame)

    def _learn(self, sender: int, message: Message) -> None:
        if isinstance(message, NewView) and message.view > self._installed:
            self._installed = message.view
            self._push(self._installed, reserve=True)
        elif isinstance(message, ViewChange):
            cert = message.checkpoint
            if cert is not None and (self._checkpoint is None
                                     or cert.upto > self._checkpoint.upto):
                self._checkpoint = cert  # valid: a member only sends those it checked
            if message.view > self._installed:
                self._wanted = max(self._wanted, message.view)
                own = message.view % self.ctx.n == self.ctx.member
                self._push(self._wanted, reserve=own)
        elif isinstance(message, (Order, OrderEcho)) and message.view > self._installed:
            self._installed = message.view

    def incoming(self, source: int, frame: bytes) -> bool:
        try:
            signed = decode_frame(frame).parse()
        except WireError:
            return True
        self._learn(signed.sender, signed.message)
        return True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if isinstance(message, NewView):
            return []  # the views it leads never start
        self._learn(self.ctx.member, message)
        if not self._pushed:
            self._push(self._installed, reserve=True)
        return self._pending.along_with(dest, frame)

    def tick(self) -> list[tuple[int, bytes]]:
        if not self._pushed:
            self._push(self._installed, reserve=True)
        return self._pending.flush(self.ctx.others())


class BadCatchUp(ProcessFault):
    """Validly signed catch-up answers that are wrong, for slots around those it has seen
    ordered: slot proofs that name one batch twice or carry a batch the references do not
    name, or whose commit certificate is one junk vote; log segments off the checkpoint
    boundaries, aligned but whose chain and certificate do not hold, or of slots so far ahead
    that nobody needs them yet."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._view = 0
        self._slot = 0

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        self._view = max(self._view, getattr(message, "view", 0))
        self._slot = max(self._slot, getattr(message, "slot", 0))
        return [(dest, frame, 0.0)]

    def tick(self) -> list[tuple[int, bytes]]:
        rng, interval = self.ctx.rng, self.ctx.settings.checkpoint_interval
        out: list[tuple[int, bytes]] = []
        for _ in range(int(self.param("k"))):
            batch = Batch(0, (rng.randbytes(8),))
            origin = rng.choice(self.ctx.others() or [self.ctx.member])
            ref = BatchRef(origin, rng.randrange(4), batch.digest())
            slot = self._slot + rng.randrange(1, 4)
            junk = Vote(self.ctx.member, rng.randbytes(64))
            choice = self.draw(6)
            message: Message
            if choice == 0:
                message = SlotProof(self._view, slot, (ref, ref), (), (batch,))
            elif choice == 1:
                wrong = BatchRef(origin, ref.counter, rng.randbytes(32))
                message = SlotProof(self._view, slot, (wrong,), (), (batch,))
            elif choice == 2:
                message = SlotProof(self._view, slot, (ref,), (junk,), (batch,))
            elif choice == 5:
                # Whole and aligned, but two boundaries beyond anything ordered: not needed.
                start = (self._slot // interval + 2) * interval
                cert = CheckpointCert(start + interval, rng.randbytes(32), (junk,))
                message = LogSegment(cert, start,
                                     tuple(((ref,), (batch,)) for _ in range(interval)))
            else:
                start = self._slot // interval * interval + (choice == 3)  # 3: misaligned
                cert = CheckpointCert(start - (choice == 3) + interval, rng.randbytes(32),
                                      (junk,))
                entries = tuple(((ref,), (batch,)) for _ in range(interval))
                message = LogSegment(cert, start, entries)
            frame = self.ctx.resign(message)
            out += [(dest, frame) for dest in self.ctx.others()]
        return out


class WithholdCerts(ProcessFault):
    """As a slot's collector (linear votes), forwards its prepared and commit certificates
    to the members ``to`` names only (none by default): the others must fall back to
    all-to-all votes to commit."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self.peers = {int(p) for p in self.text("to").split("+") if p}

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        if isinstance(signed.message, (OrderPrepared, OrderCommitted)) and \
                dest not in self.peers:
            return []
        return [(dest, frame, 0.0)]


class BadCerts(ProcessFault):
    """Validly signed collector certificates that do not hold, for slots around those it has
    seen: a prepared certificate one vote short, one whose votes sign another value, one
    with a voter repeated, one naming a batch twice; a commit certificate with a junk vote."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._view = 0
        self._slot = 0
        self._votes: dict[int, Vote] = {}
        """Real ECHO signatures of others it was sent, by member (for a plausible lie)."""

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        self._view = max(self._view, getattr(message, "view", 0))
        self._slot = max(self._slot, getattr(message, "slot", 0))
        return [(dest, frame, 0.0)]

    def incoming(self, source: int, frame: bytes) -> bool:
        signed = own_frame(source, frame, (OrderEcho,))
        if signed is not None:
            self._votes[source] = Vote(source, signed.signature)
        return True

    def tick(self) -> list[tuple[int, bytes]]:
        rng, q = self.ctx.rng, Quorums.for_cluster(self.ctx.n).quorum
        out: list[tuple[int, bytes]] = []
        for _ in range(int(self.param("k"))):
            batch = Batch(0, (rng.randbytes(8),))
            ref = BatchRef(rng.choice(self.ctx.others() or [self.ctx.member]),
                           rng.randrange(4), batch.digest())
            slot = self._slot + rng.randrange(0, 3)
            votes = [*self._votes.values(), *(Vote(m, rng.randbytes(64))
                                              for m in range(self.ctx.n)
                                              if m not in self._votes)][:q]
            choice = self.draw(5)
            message: Message
            if choice == 0:
                message = OrderPrepared(self._view, slot, (ref,), tuple(votes[:q - 1]))
            elif choice == 1:
                message = OrderPrepared(self._view, slot, (ref,), tuple(votes))
            elif choice == 2:
                message = OrderPrepared(self._view, slot, (ref,), (votes[0],) * q)
            elif choice == 3:
                message = OrderPrepared(self._view, slot, (ref, ref), tuple(votes))
            else:
                message = OrderCommitted(self._view, slot, rng.randbytes(32), tuple(votes))
            frame = self.ctx.resign(message)
            out += [(dest, frame) for dest in self.ctx.others()]
        return out


class BadTransfer(ProcessFault):
    """Validly signed state-transfer traffic out of place: CHUNKs nobody asked for,
    CHUNK-REQUESTs for snapshots a peer does not hold, snapshot offers at or below every
    member's position or, ahead of it, under a junk certificate; once a checkpoint is stable,
    a burst of requests for its snapshot beyond any peer's serving budget; and every CHUNK it
    serves sent again (a chunk the fetcher holds already) and once more miscounted."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._slot = 0
        self._quorum = Quorums.for_cluster(ctx.n).quorum
        self._signers: dict[int, set[int]] = {}
        """Per checkpoint boundary: the members whose CHECKPOINT for it went by."""
        self._stable = 0
        self._burst_for = 0

    def incoming(self, source: int, frame: bytes) -> bool:
        try:
            raw = decode_frame(frame)
            if raw.kind == Checkpoint.KIND:
                self._checkpoint(raw.sender, raw.parse().message)
        except WireError:
            pass  # not ours to judge: the member's own gate counts it
        return True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        self._slot = max(self._slot, getattr(message, "slot", 0))
        if isinstance(message, Checkpoint):
            self._checkpoint(self.ctx.member, message)
        if not isinstance(message, Chunk):
            return [(dest, frame, 0.0)]
        # The chunk again, and a neighbour's index under a count the root does not commit to.
        miscounted = attrs.evolve(message, index=(message.index + 1) % message.count,
                                  count=message.count + 1)
        return [(dest, frame, 0.0), (dest, frame, 0.0), (dest, self.ctx.resign(miscounted), 0.0)]

    def _checkpoint(self, sender: int, message: Message) -> None:
        assert isinstance(message, Checkpoint)
        signers = self._signers.setdefault(message.upto, set())
        signers.add(sender)
        if len(signers) >= self._quorum and message.upto > self._stable:
            self._stable = message.upto  # its snapshot is what the peers now serve
            for upto in [u for u in self._signers if u <= self._stable]:
                del self._signers[upto]

    def tick(self) -> list[tuple[int, bytes]]:
        rng, settings = self.ctx.rng, self.ctx.settings
        interval = settings.checkpoint_interval
        below = max(0, (self._slot // interval - 1) * interval)
        ahead = (self._slot // interval + 2) * interval
        out: list[tuple[int, bytes]] = []
        for _ in range(int(self.param("k"))):
            choice = self.draw(4)
            message: Message
            if choice == 0:
                message = Chunk(below, rng.randbytes(32), 1, 0, rng.randbytes(8), ())
            elif choice == 1:
                message = ChunkRequest(ahead + rng.randrange(4) * interval, rng.randrange(4))
            elif choice == 2:
                message = LogSegment(CheckpointCert(below, rng.randbytes(32), ()), below, ())
            else:
                junk = Vote(self.ctx.member, rng.randbytes(64))
                cert = CheckpointCert(ahead, rng.randbytes(32), (junk,), rng.randbytes(32))
                message = LogSegment(cert, ahead, ())
            frame = self.ctx.resign(message)
            out += [(dest, frame) for dest in self.ctx.others()]
        if self._stable > self._burst_for:
            # Once per stable checkpoint: more requests at once than a serving budget's burst.
            self._burst_for = self._stable
            frame = self.ctx.resign(ChunkRequest(self._stable, 0))
            burst = 3 * settings.transfer_chunks_in_flight
            out += [(dest, frame) for dest in self.ctx.others() for _ in range(burst)]
        return out


class LieViewChange(ProcessFault):
    """VIEW-CHANGEs without its prepared certificates; NEW-VIEWs that null every slot."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if isinstance(message, ViewChange) and message.prepared:
            return [(dest, self.ctx.resign(attrs.evolve(message, prepared=())), 0.0)]
        if isinstance(message, NewView) and any(r.refs for r in message.reproposals):
            nulled = tuple(attrs.evolve(r, refs=()) for r in message.reproposals)
            return [(dest, self.ctx.resign(attrs.evolve(message, reproposals=nulled)), 0.0)]
        return [(dest, frame, 0.0)]


class DropForwards(ProcessFault):
    """As UB sequencer, ignores the SENDs members hand to it (it still orders its own)."""

    byzantine = True

    def incoming(self, source: int, frame: bytes) -> bool:
        try:
            return decode_frame(frame).kind != Send.KIND
        except WireError:
            return True


class SkipTurn(ProcessFault):
    """As a member of a moving sequencer's rotation, never sends its ORDERs."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        return [] if isinstance(signed.message, Order) else [(dest, frame, 0.0)]


class DoubleGrant(ProcessFault):
    """As UUB sequencer, grants every slot twice: also to the previous grant's origin."""

    byzantine = True

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._previous: Order | None = None
        self._doubled: set[tuple[int, int]] = set()

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        out: Outgoing = [(dest, frame, 0.0)]
        message = signed.message
        if not isinstance(message, Order) or len(message.refs) != 1 or \
                dest != message.refs[0].origin:
            return out
        previous, self._previous = self._previous, message
        key = (message.view, message.slot)
        if previous is not None and key not in self._doubled and \
                previous.refs[0].origin != message.refs[0].origin:
            self._doubled.add(key)
            second = Order(message.view, message.slot, previous.refs)
            out.append((previous.refs[0].origin, self.ctx.resign(second), 0.0))
        return out


class HoardGrants(ProcessFault):
    """As UUB origin, never relays a grant (nor the batch it was for)."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        if isinstance(signed.message, Order) and signed.sender != self.ctx.member:
            return []
        if isinstance(signed.message, Send):
            return []
        return [(dest, frame, 0.0)]


def corrupt_chunk(chunk: Chunk, rng: random.Random) -> Chunk:
    """``chunk`` made to fail verification: usually a data byte flipped (one added to empty
    data), else a byte of its proof or of its root."""
    roll = rng.random()
    if roll < 0.6 or not chunk.proof:
        if not chunk.data:
            return attrs.evolve(chunk, data=b"\x00")
        return attrs.evolve(chunk, data=_flip(chunk.data, rng))
    if roll < 0.8:
        step = rng.randrange(len(chunk.proof))
        proof = (*chunk.proof[:step], _flip(chunk.proof[step], rng), *chunk.proof[step + 1:])
        return attrs.evolve(chunk, proof=proof)
    return attrs.evolve(chunk, root=_flip(chunk.root, rng))


def _flip(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ rng.randrange(1, 256)]) + data[at + 1:]


class BadChunks(ProcessFault):
    """Serves snapshot chunks that fail verification, validly re-signed: the receiver's
    Merkle check, not the signature check, must catch them."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if not isinstance(message, Chunk) or self.ctx.rng.random() >= self.param("p"):
            return [(dest, frame, 0.0)]
        return [(dest, self.ctx.resign(corrupt_chunk(message, self.ctx.rng)), 0.0)]


class StaleSnapshot(ProcessFault):
    """Serves chunks of the first snapshot it served in place of later ones: valid chunks,
    signed by the member itself, of another checkpoint. While that first snapshot is the one
    asked for, there is nothing older: its chunks are relabelled with another checkpoint."""

    byzantine = True
    KEPT_MAX = 64
    """Chunk frames of the old snapshot kept (any kept one stands in for a missing index)."""

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._old_upto: int | None = None
        self._old: dict[int, bytes] = {}

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        message = signed.message
        if not isinstance(message, Chunk):
            return [(dest, frame, 0.0)]
        if self._old_upto is None:
            self._old_upto = message.upto
        if message.upto == self._old_upto and len(self._old) < self.KEPT_MAX:
            self._old.setdefault(message.index, frame)
        if self.ctx.rng.random() >= self.param("p"):
            return [(dest, frame, 0.0)]
        if message.upto == self._old_upto:
            interval = self.ctx.settings.checkpoint_interval
            other = message.upto - interval if message.upto >= interval \
                else message.upto + interval
            return [(dest, self.ctx.resign(attrs.evolve(message, upto=other)), 0.0)]
        kept = self._old.get(message.index)
        if kept is None:
            kept = self._old[min(self._old)]
        return [(dest, kept, 0.0)]


class SilentTransfer(ProcessFault):
    """Takes part in everything but state transfer: no chunk it serves ever leaves."""

    byzantine = True

    def outgoing(self, dest: int, frame: bytes, signed: Signed) -> Outgoing:
        return [] if isinstance(signed.message, Chunk) else [(dest, frame, 0.0)]


def _client_frame(frame: bytes, settings: Settings) -> Receipt | Notice | SignedReply | None:
    """A member's RECEIPT, NOTICE or REPLY frame decoded (None if it does not decode)."""
    try:
        return decode_client_frame(frame, frame_bytes_max=max(1 << 20,
                                                              4 * settings.batch_bytes_max))
    except WireError:
        return None


class DropRequests(ProcessFault):
    """Toward clients, silent: takes no client REQUEST (so relays none) and sends no RECEIPT
    or NOTICE; with the members it takes part as an honest one."""

    byzantine = True

    def client_request(self, frame: bytes) -> bool:
        return False

    def client_output(self, client: bytes, frame: bytes) -> list[tuple[bytes, bytes]]:
        return []


class WithholdReceipts(ProcessFault):
    """Takes client REQUESTs and relays them as an honest member does, but never sends
    their RECEIPTs (NOTICEs still go out)."""

    byzantine = True

    def client_output(self, client: bytes, frame: bytes) -> list[tuple[bytes, bytes]]:
        message = _client_frame(frame, self.ctx.settings)
        if isinstance(message, Receipt) and self.ctx.rng.random() < self.param("p"):
            return []
        return [(client, frame)]


class ForgeReceipts(ProcessFault):
    """Sends clients RECEIPTs that do not prove their request, in place of the real ones: a
    commit vote with a broken signature, a broken audit path (or batch counter), another
    slot than the certificate's, or another request's real receipt."""

    byzantine = True
    LIES = ("certificate", "path", "slot", "other")

    def __init__(self, spec: FaultSpec, ctx: FaultContext) -> None:
        super().__init__(spec, ctx)
        self._last: tuple[bytes, bytes] | None = None  # (request frame, receipt frame)
        self.told: dict[str, int] = dict.fromkeys(self.LIES, 0)
        """Lies told, by kind."""

    def client_output(self, client: bytes, frame: bytes) -> list[tuple[bytes, bytes]]:
        receipt = _client_frame(frame, self.ctx.settings)
        if not isinstance(receipt, Receipt) or self.ctx.rng.random() >= self.param("p"):
            return [(client, frame)]
        last, self._last = self._last, (receipt.request, frame)
        lie = self.LIES[self.draw(len(self.LIES))]
        if lie == "other" and (last is None or last[0] == receipt.request):
            lie = "slot"  # no other request's receipt yet
        self.told[lie] += 1
        if lie == "other":
            assert last is not None
            return [(client, last[1])]
        if lie == "certificate" and receipt.certificate:
            vote = receipt.certificate[0]
            forged = (attrs.evolve(vote, signature=_flip(vote.signature, self.ctx.rng)),
                      *receipt.certificate[1:])
            return [(client, attrs.evolve(receipt, certificate=forged).to_frame())]
        if lie == "path" and receipt.path:
            path = (_flip(receipt.path[0], self.ctx.rng), *receipt.path[1:])
            return [(client, attrs.evolve(receipt, path=path).to_frame())]
        if lie == "path":  # a batch of one entry has no path: its counter is lied about
            return [(client, attrs.evolve(receipt, first_counter=receipt.first_counter + 1)
                     .to_frame())]
        return [(client, attrs.evolve(receipt, slot=receipt.slot + 1).to_frame())]


class Twins(ProcessFault):
    """Marker: the simulator runs two instances with this key (see ``btob.sim.simulator``)."""

    byzantine = True


_CLASSES: dict[str, type[ProcessFault]] = {
    "crash": Crash, "pause": Pause, "slow": Slow, "omission": Omission, "silent": Silent,
    "equivocate": Equivocate, "vote-equivocate": VoteEquivocate, "forge": Forge,
    "replay": Replay, "garbage": Garbage, "mutate": Mutate, "censor": Censor,
    "double-book": DoubleBook, "stall": Stall,
    "flood": Flood, "out-of-bounds": OutOfBounds, "bad-viewchange": BadViewChange,
    "bad-catchup": BadCatchUp, "bad-transfer": BadTransfer, "bad-checkpoint": BadCheckpoint,
    "lie-viewchange": LieViewChange, "usurp": Usurp,
    "view-push": ViewPush,
    "twins": Twins,
    "withhold-certs": WithholdCerts, "bad-certs": BadCerts,
    "drop-forwards": DropForwards, "skip-turn": SkipTurn, "double-grant": DoubleGrant,
    "hoard-grants": HoardGrants, "bad-chunks": BadChunks, "stale-snapshot": StaleSnapshot,
    "silent-transfer": SilentTransfer,
    "drop-requests": DropRequests, "forge-receipts": ForgeReceipts,
    "withhold-receipts": WithholdReceipts,
}


def make_fault(spec: FaultSpec, ctx: FaultContext) -> ProcessFault:
    """The behaviour object for ``spec``."""
    fault = _CLASSES[spec.behaviour](spec, ctx)
    assert fault.byzantine == spec.byzantine, spec.behaviour
    return fault
