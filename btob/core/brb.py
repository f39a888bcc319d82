"""Byzantine reliable broadcast (dissemination of batches): Bracha's double echo and
Reiter's signed echo, as pure state machines.

Theory of operation. An instance is named (origin, counter); the origin signs its SEND, so
only the origin can start one. Both variants guarantee, with n >= 3f+1 and q = quorum:

* consistency: no two honest members deliver different batches for one instance, because a
  batch needs q ECHOs and two quorums share an honest member, who echoes once;
* totality: if one honest member delivers, every correct one does. Bracha gets it from the
  READY phase (f+1 READYs amplify, 2f+1 deliver, so an honest delivery implies f+1 honest
  READYs, which make every correct member send READY); the signed echo gets it from
  forwarding the self-certifying FINAL to every member - with linear votes
  (``Settings.votes``) to the view's sequencer first, which is the member that must order
  the batch, and to every member only if the batch is still unordered a retransmit interval
  later (every member holds the batch from its SEND anyway, or fetches it once a slot names
  it: see :mod:`btob.core.ordering`).

Neither variant trusts its input: instances are accepted only inside a window per origin,
batches are bounded, each member's vote counts once per instance, and a member that signs two
different votes for one instance is reported as :class:`~btob.core.effects.Evidence`.
Both implement :class:`~btob.core.dissemination.Dissemination` (for BB and the moving
sequencer).
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from btob.core.certificates import valid_votes
from btob.core.dissemination import Dissemination, batch_fits, counters_above
from btob.core.effects import BrbDelivery, Evidence, Outbox, VerifyFn
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.window import DoneCounters
from btob.core.wire import Batch, BatchRef, Echo, Fetch, Final, Message, Ready, Send, Signed, Vote

__all__ = ["BrachaBroadcast", "SignedEchoBroadcast"]


@attrs.define
class _Instance:
    send: Signed | None = None  # first SEND received (the value we echoed)
    digest: bytes | None = None
    extra_value: Signed | None = None  # a second SEND whose value a quorum or a slot chose
    fetching: bytes | None = None  # the digest last asked for with a FETCH
    echoes: dict[int, Signed] = attrs.field(factory=dict)
    readies: dict[int, Signed] = attrs.field(factory=dict)
    ready_sent: bytes | None = None
    delivered: bool = False
    final: Signed | None = None
    mine: dict[str, tuple[int | None, Message | Signed]] = attrs.field(factory=dict)
    last_sent: float = 0.0


class _BrbBase(Dissemination):
    """Windows, instance bookkeeping, evidence and retransmission shared by both variants."""

    def __init__(
        self, *, member: int, quorums: Quorums, settings: Settings, outbox: Outbox,
        verify: VerifyFn, leader: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(member=member, quorums=quorums, settings=settings, outbox=outbox)
        self.verify = verify
        self.leader = leader
        """The current view's sequencer (where linear votes forward a FINAL first); None:
        forward to everyone."""
        self._instances: dict[tuple[int, int], _Instance] = {}
        self._done = DoneCounters()
        self._helped: set[tuple[int, int]] = set()  # (origin, voter) sent a conflicting SEND

    # -- bookkeeping ---------------------------------------------------------------------

    def _instance(self, origin: int, counter: int) -> _Instance | None:
        """The instance, created on demand if (origin, counter) lies in the window."""
        if not 0 <= origin < self.quorums.n:
            self.outbox.drop("brb-bad-origin")
            return None
        if self._done.is_done(origin, counter):
            self.outbox.drop("brb-finished")
            return None
        if counter >= self._done.low(origin) + self.settings.brb_window:
            self.outbox.drop("brb-beyond-window")
            return None
        key = (origin, counter)
        inst = self._instances.get(key)
        if inst is None:
            inst = self._instances[key] = _Instance()
        return inst

    def broadcast(self, counter: int, batch: Batch, now: float) -> None:
        """Start instance (self, counter): SEND to everyone, self included."""
        inst = self._instance(self.member, counter)
        assert inst is not None and inst.send is None, "own instance reused or outside window"
        self._emit(inst, "send", None, Send(counter, batch), now)

    def forget(self, origin: int, counter: int) -> None:
        """Drop instance (origin, counter) and slide the origin's window past it."""
        self._instances.pop((origin, counter), None)
        self._done.finish(origin, counter)

    def instances(self) -> int:
        """Number of instances held."""
        return len(self._instances)

    def seen_from(self, origin: int) -> tuple[int, int]:
        """Above every SEND of ``origin`` held in an instance."""
        return counters_above((counter, inst.send)
                              for (o, counter), inst in self._instances.items() if o == origin)

    def restore_finished(self, windows: tuple[tuple[int, int, tuple[int, ...]], ...]) -> None:
        """Continue from a snapshot whose finished instances are ``windows``."""
        self._done = DoneCounters.restored(windows)
        for key in [k for k in self._instances if self._done.is_done(*k)]:
            del self._instances[key]

    def needless(self, signed: Signed) -> bool:
        """True if ``signed`` cannot change anything here, so its signature need not be
        checked: it belongs to a finished instance. Signature checks dominate the CPU cost,
        and every late message would be dropped after its check anyway."""
        message = signed.message
        if isinstance(message, (Echo, Final)):  # these name the origin in the body
            return self._done.is_done(message.origin, message.counter)
        if isinstance(message, Send):
            return self._done.is_done(signed.sender, message.counter)
        return False

    def lost_own(self) -> bool:
        """True while this member asks its peers for a SEND of its own it no longer holds
        (its disk was wiped while the instance was under way): then, and only then, its own
        SEND sent back to it is let in."""
        return any(o == self.member and inst.send is None and "fetch" in inst.mine
                   for (o, _), inst in self._instances.items())

    def want(self, ref: BatchRef, now: float) -> None:
        """A proposal or committed slot names ``ref``'s value, which this member lacks: hand
        it over if an instance holds it after all (a first value displaced by a delivery of
        another one), else ask every member for it. A prepared value is held by at least
        f+1 correct members (:mod:`btob.core.ordering`), so one of them answers."""
        inst = self._instance(ref.origin, ref.counter)
        if inst is None:
            return
        value = _value_with(inst, ref.digest)
        if value is not None:
            self._hold(inst, value, ref.digest)
            return
        self._fetch(inst, ref.origin, ref.counter, ref.digest, now)

    def _fetch(self, inst: _Instance, origin: int, counter: int, digest: bytes,
               now: float) -> None:
        """Ask every member for the SEND of ``digest`` (once; retransmitted until it comes)."""
        if inst.fetching != digest or "fetch" not in inst.mine:
            inst.fetching = digest
            self._emit(inst, "fetch", None, Fetch(origin, counter, digest), now)

    def _hold(self, inst: _Instance, signed: Signed, digest: bytes) -> None:
        """Hand a held SEND's batch to ordering; a FETCH for it is answered."""
        message = signed.message
        assert isinstance(message, Send)
        if inst.fetching == digest:
            inst.mine.pop("fetch", None)
        self.outbox.held.append(BrbDelivery(signed.sender, message.counter, message.batch,
                                            digest))

    def _on_fetch(self, signed: Signed, message: Fetch) -> None:
        inst = self._instance(message.origin, message.counter)
        if inst is None:
            return
        value = _value_with(inst, message.digest)
        if value is not None:
            self.outbox.send(signed.sender, value)

    def _emit(self, inst: _Instance, role: str, dest: int | None, item: Message | Signed,
              now: float) -> None:
        inst.mine[role] = (dest, item)
        inst.last_sent = now
        self.outbox.send(dest, item)

    def retransmit(self, now: float) -> None:
        """Resend own messages of every unfinished instance idle for a retransmit interval."""
        for inst in self._instances.values():
            if inst.mine and now - inst.last_sent >= self.settings.retransmit_interval_s:
                inst.last_sent = now
                for role, (dest, item) in inst.mine.items():
                    # A FINAL forwarded to the sequencer alone goes to everyone now.
                    self.outbox.send(None if role == "forward" else dest, item)

    def _vote(self, votes: dict[int, Signed], signed: Signed, key: bytes,
              inst: _Instance | None = None, mine: bytes | None = None) -> bool:
        """Record ``signed`` as its sender's vote; False if it repeats or contradicts one.

        A first vote for a digest other than ``mine`` (the value this member holds) means
        someone equivocates: the vote is forwarded once to everyone, and the origin's SEND
        held here goes to the voter (once per origin and voter), so that whoever was told
        something else holds two conflicting signed messages as evidence.
        """
        previous = votes.get(signed.sender)
        if previous is None:
            votes[signed.sender] = signed
            if mine is not None and key != mine and signed.sender != self.member:
                self.outbox.send(None, signed)
                message = signed.message
                assert isinstance(message, Echo)
                pair = (message.origin, signed.sender)
                if inst is not None and inst.send is not None and pair not in self._helped:
                    # Once per (origin, voter): one pair of conflicting SENDs convicts the
                    # origin, and a whole batch per later instance would let an equivocating
                    # origin double everyone's traffic.
                    self._helped.add(pair)
                    self.outbox.send(signed.sender, inst.send)
            return True
        if _digest_of(previous) != key:
            self.outbox.evidence.append(Evidence(signed.sender, previous, signed))
        return False

    def _accept_send(self, inst: _Instance, signed: Signed,
                     wanted: bytes | None = None) -> bytes | None:
        """Store (and hold) the first valid SEND and return its digest. A second, different
        one is evidence; it is held as well if it is the value asked for with a FETCH or
        ``wanted`` (the one a READY quorum vouches for)."""
        assert isinstance(signed.message, Send)
        batch = signed.message.batch
        if not batch_fits(batch, self.settings):
            self.outbox.drop("brb-batch-out-of-bounds")
            return None
        digest = batch.digest()
        if inst.send is None:
            inst.send = signed
            inst.digest = digest
            self._hold(inst, signed, digest)
            return digest
        if digest != inst.digest:
            assert inst.send is not None
            self.outbox.evidence.append(Evidence(signed.sender, inst.send, signed))
            if digest in (inst.fetching, wanted) and _value_with(inst, digest) is None:
                inst.extra_value = signed
                self._hold(inst, signed, digest)
        return None

    def _deliver(self, inst: _Instance, origin: int, counter: int, batch: Batch,
                 digest: bytes) -> None:
        inst.delivered = True
        self.outbox.brb_deliveries.append(BrbDelivery(origin, counter, batch, digest))


def _digest_of(signed: Signed) -> bytes:
    message = signed.message
    assert isinstance(message, Echo)
    return message.digest


def _value_with(inst: _Instance, digest: bytes) -> Signed | None:
    """The SEND held for ``inst`` whose batch has ``digest``, if any."""
    for value in (inst.send, inst.extra_value):
        message = None if value is None else value.message
        if isinstance(message, Send) and message.batch.digest() == digest:
            return value
    return None


def _count(votes: dict[int, Signed], digest: bytes) -> int:
    return sum(1 for v in votes.values() if _digest_of(v) == digest)


class BrachaBroadcast(_BrbBase):
    """Bracha's double-echo reliable broadcast (SEND, ECHO, READY, with FETCH of values)."""

    def on_message(self, signed: Signed, now: float) -> None:
        """Handle a verified SEND, ECHO, READY or FETCH."""
        message = signed.message
        if isinstance(message, Send):
            self._on_send(signed, message, now)
        elif isinstance(message, Fetch):
            self._on_fetch(signed, message)
        elif isinstance(message, Ready):
            self._on_ready(signed, message, now)
        elif isinstance(message, Echo):
            self._on_echo(signed, message, now)
        else:
            self.outbox.drop("brb-unexpected-kind")

    def _on_send(self, signed: Signed, message: Send, now: float) -> None:
        origin = signed.sender
        inst = self._instance(origin, message.counter)
        if inst is None:
            return
        if inst.send is None:
            digest = self._accept_send(inst, signed)
            if digest is not None:
                self._emit(inst, "echo", None, Echo(origin, message.counter, digest), now)
        else:
            # A second value is kept only if a READY quorum or a slot chose it.
            self._accept_send(inst, signed, self._wanted(inst))
        self._progress(inst, origin, message.counter, now)

    def _on_echo(self, signed: Signed, message: Echo, now: float) -> None:
        inst = self._instance(message.origin, message.counter)
        if inst is None or not self._vote(inst.echoes, signed, message.digest, inst, inst.digest):
            return
        self._progress(inst, message.origin, message.counter, now)

    def _on_ready(self, signed: Signed, message: Ready, now: float) -> None:
        inst = self._instance(message.origin, message.counter)
        mine = inst.ready_sent or inst.digest if inst is not None else None
        if inst is None or not self._vote(inst.readies, signed, message.digest, inst, mine):
            return
        self._progress(inst, message.origin, message.counter, now)

    def needless(self, signed: Signed) -> bool:
        """Also true for a vote that only adds to a threshold already passed: an ECHO for the
        value this member already sent READY for, a READY for the value it delivered. A vote
        that contradicts the sender's earlier one is still checked: it is evidence."""
        if super().needless(signed):
            return True
        message = signed.message
        if not isinstance(message, Echo):
            return False
        inst = self._instances.get((message.origin, message.counter))
        if inst is None or inst.ready_sent != message.digest:
            return False
        if isinstance(message, Ready):
            if not inst.delivered:
                return False
            votes = inst.readies
        elif type(message) is Echo:
            votes = inst.echoes
        else:
            return False
        previous = votes.get(signed.sender)
        return previous is None or _digest_of(previous) == message.digest

    def _wanted(self, inst: _Instance) -> bytes | None:
        """The digest that f+1 READYs vouch for, if any."""
        for vote in inst.readies.values():
            digest = _digest_of(vote)
            if _count(inst.readies, digest) >= self.quorums.one_honest:
                return digest
        return None

    def _progress(self, inst: _Instance, origin: int, counter: int, now: float) -> None:
        q = self.quorums
        if inst.ready_sent is None:
            candidate = None
            if inst.digest is not None and _count(inst.echoes, inst.digest) >= q.quorum:
                candidate = inst.digest
            else:
                candidate = self._wanted(inst)
                if candidate is None:
                    for vote in inst.echoes.values():
                        if _count(inst.echoes, _digest_of(vote)) >= q.quorum:
                            candidate = _digest_of(vote)
                            break
            if candidate is not None:
                inst.ready_sent = candidate
                self._emit(inst, "ready", None, Ready(origin, counter, candidate), now)
        if inst.delivered:
            return
        chosen = self._wanted(inst)
        if chosen is None or _count(inst.readies, chosen) < q.deliver:
            return
        value = _value_with(inst, chosen)
        if value is not None:
            assert isinstance(value.message, Send)
            inst.mine.pop("fetch", None)
            self._deliver(inst, origin, counter, value.message.batch, chosen)
            return
        # Ask every member that vouched for the value; honest ones hold it or fetch it.
        self._fetch(inst, origin, counter, chosen, now)


class SignedEchoBroadcast(_BrbBase):
    """Reiter's signed echo: q signed ECHOs make a FINAL certificate that anyone forwards."""

    def on_message(self, signed: Signed, now: float) -> None:
        """Handle a verified SEND, ECHO, FINAL or FETCH (an origin that lost its own SEND
        asks for it back)."""
        message = signed.message
        if isinstance(message, Send):
            self._on_send(signed, message, now)
        elif isinstance(message, Final):
            self._on_final(signed, message, now)
        elif isinstance(message, Fetch):
            self._on_fetch(signed, message)
        elif type(message) is Echo:
            self._on_echo(signed, message, now)
        else:
            self.outbox.drop("brb-unexpected-kind")

    def _on_send(self, signed: Signed, message: Send, now: float) -> None:
        inst = self._instance(signed.sender, message.counter)
        if inst is None:
            return
        if signed.sender == self.member and not inst.mine.keys() & {"send", "fetch"}:
            self.outbox.drop("own-frame-returned")  # a replay of ours nobody asked for
            return
        repeated = inst.send is not None
        digest = self._accept_send(inst, signed)
        if digest is not None:
            if signed.sender == self.member and inst.mine.pop("fetch", None) is not None:
                # Ours, fetched back: send it again as it was signed, for peers that lack it.
                self._emit(inst, "send", None, signed, now)
            echo = Echo(signed.sender, message.counter, digest)
            self._emit(inst, "echo", signed.sender, echo, now)
        elif repeated and inst.digest is not None and inst.send is not None and \
                inst.send.message == message:
            # The origin repeats the SEND we echoed: it still lacks a FINAL, e.g. it restarted
            # after its FINAL left. The FINAL we hold (and forward) is signed by the origin,
            # which drops its own frames when they come back, so only ECHOs bring it its
            # certificate again: answer with ours (the same signed one; it stays unsent
            # after this, the origin's retransmissions ask again).
            self.outbox.send(signed.sender, Echo(signed.sender, message.counter, inst.digest))

    def _on_echo(self, signed: Signed, message: Echo, now: float) -> None:
        if message.origin != self.member:
            self.outbox.drop("brb-echo-not-for-me")
            return
        inst = self._instance(self.member, message.counter)
        if inst is None or inst.final is not None:
            return
        if inst.send is None:
            # A peer echoes a SEND of ours we no longer hold: the disk that kept it was
            # wiped. Only this member can certify the instance, and signing another value
            # for it would be equivocation: ask for the SEND we signed and finish it.
            if "fetch" not in inst.mine:
                fetch = Fetch(self.member, message.counter, message.digest)
                self._emit(inst, "fetch", None, fetch, now)
            return
        if message.digest != inst.digest or not self._vote(inst.echoes, signed, message.digest):
            return
        if len(inst.echoes) < self.quorums.quorum:
            return
        assert isinstance(inst.send.message, Send)
        votes = tuple(Vote(m, s.signature) for m, s in sorted(inst.echoes.items()))
        final = Final(self.member, message.counter, inst.send.message.batch, votes)
        inst.mine.pop("send", None)
        self._emit(inst, "final", None, final, now)

    def _on_final(self, signed: Signed, message: Final, now: float) -> None:
        inst = self._instance(message.origin, message.counter)
        if inst is None or inst.delivered:
            return
        if not batch_fits(message.batch, self.settings):
            self.outbox.drop("brb-batch-out-of-bounds")
            return
        digest = message.batch.digest()
        if not self._certificate_valid(message, digest):
            self.outbox.drop("brb-bad-certificate")
            return
        inst.final = signed
        inst.mine.pop("echo", None)
        if message.origin != self.member:
            # Forward the self-certifying FINAL so every correct member gets it (totality).
            # With linear votes, to the sequencer first (the sequencer itself keeps it
            # until the retransmit interval passes with the batch still unordered).
            to = self.leader() if self.leader is not None and \
                self.settings.votes == "linear" else None
            inst.mine["forward"] = (to, signed)
            inst.last_sent = now
            if to != self.member:
                self.outbox.send(to, signed)
        self._deliver(inst, message.origin, message.counter, message.batch, digest)

    def _certificate_valid(self, message: Final, digest: bytes) -> bool:
        body = Echo(message.origin, message.counter, digest).to_body()
        return valid_votes(message.certificate, body, Echo.KIND, self.quorums, self.verify)

