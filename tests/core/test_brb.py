"""BRB cores alone, under a Byzantine origin that equivocates, over many seeds.

The harness wires honest BRB cores through a seeded lossy, reordering network (with the
cores' own retransmission) and lets member 0 play a Byzantine origin holding its real key:
it sends different batches, echoes and readies to different members and, for the signed
echo, hands a completed certificate to one member only, or forges weak certificates.
"""

from __future__ import annotations

import hashlib
import heapq
import random

import pytest

from btob.core.brb import BrachaBroadcast, SignedEchoBroadcast
from btob.core.effects import Outbox
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Echo,
    Fetch,
    Final,
    Message,
    Ready,
    Send,
    Signed,
    Vote,
    decode_frame,
)
from btob.crypto import KeyRegistry, Signer, SigningKey, Verifier

CLUSTER = b"brb-test"
SETTINGS = Settings(retransmit_interval_s=0.2)
LINEAR = Settings(retransmit_interval_s=0.2, votes="linear")
LEADER = 1
"""The sequencer an ``echo-linear`` member forwards a FINAL to first."""


class Harness:
    """n members, member ``byzantine`` (if any) scripted, the rest honest BRB cores
    (``kind``: bracha, echo, or echo-linear: the signed echo under linear votes)."""

    def __init__(self, n: int, kind: str, seed: int, byzantine: int | None) -> None:
        self.n = n
        self.rng = random.Random(seed)
        self.quorums = Quorums.for_cluster(n)
        keys = [SigningKey.from_seed(hashlib.sha256(b"k%d" % i).digest()) for i in range(n)]
        self.registry = KeyRegistry(tuple(k.public_key() for k in keys))
        self.signers = [Signer(k, cluster_id=CLUSTER) for k in keys]
        self.byzantine = byzantine
        self.outboxes: dict[int, Outbox] = {}
        self.cores: dict[int, BrachaBroadcast | SignedEchoBroadcast] = {}
        self.verifiers: dict[int, Verifier] = {}
        for i in range(n):
            if i == byzantine:
                continue
            self.outboxes[i] = Outbox()
            self.verifiers[i] = Verifier(self.registry, cluster_id=CLUSTER)
            cls = BrachaBroadcast if kind == "bracha" else SignedEchoBroadcast
            self.cores[i] = cls(member=i, quorums=self.quorums,
                                settings=LINEAR if kind == "echo-linear" else SETTINGS,
                                outbox=self.outboxes[i], verify=self.verifiers[i].verify,
                                leader=lambda: LEADER)
        self.delivered: dict[int, list[tuple[int, int, bytes]]] = {i: [] for i in self.cores}
        self.queue: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.now = 0.0
        self.to_byzantine: list[Signed] = []

    def sign(self, member: int, message: Message) -> Signed:
        return Signed.create(member, message, self.signers[member].sign)

    def post(self, dest: int, signed: Signed) -> None:
        """Put a frame on the wire: random delay, 20% loss before t=1, 5% duplication."""
        if self.now < 1.0 and self.rng.random() < 0.2:
            return
        copies = 2 if self.rng.random() < 0.05 else 1
        for _ in range(copies):
            self.seq += 1
            at = self.now + self.rng.uniform(0.001, 0.05)
            heapq.heappush(self.queue, (at, self.seq, dest, signed.to_frame()))

    def flush(self, member: int) -> None:
        outbox = self.outboxes[member]
        while outbox.sends or outbox.brb_deliveries:
            for d in outbox.brb_deliveries:
                self.delivered[member].append((d.origin, d.counter, d.digest))
            outbox.brb_deliveries.clear()
            sends, outbox.sends = outbox.sends, []
            for dest, item in sends:
                signed = item if isinstance(item, Signed) else self.sign(member, item)
                targets = range(self.n) if dest is None else [dest]
                for target in targets:
                    if target == member:
                        self.cores[member].on_message(signed, self.now)
                    else:
                        self.post(target, signed)

    def receive(self, dest: int, frame: bytes) -> None:
        raw = decode_frame(frame)
        if dest == self.byzantine:
            self.to_byzantine.append(raw.parse())
            return
        assert self.verifiers[dest].verify(raw.sender, raw.kind, raw.body, raw.signature)
        self.cores[dest].on_message(raw.parse(), self.now)
        self.flush(dest)

    def run(self, until: float = 6.0) -> None:
        next_tick = 0.1
        while self.queue or next_tick < until:
            if self.queue and self.queue[0][0] <= next_tick:
                at, _, dest, frame = heapq.heappop(self.queue)
                self.now = at
                self.receive(dest, frame)
                self.on_time()
            else:
                if next_tick >= until:
                    break
                self.now = next_tick
                next_tick += 0.1
                for member, core in self.cores.items():
                    core.retransmit(self.now)
                    self.flush(member)
                self.on_time()

    def on_time(self) -> None:
        """Hook for scripted Byzantine behaviour reacting to what it received."""

    def honest_values(self) -> dict[int, set[bytes]]:
        return {m: {d for (o, c, d) in got if (o, c) == (0, 0)}
                for m, got in self.delivered.items()}


class EquivocatingOrigin(Harness):
    """Member 0 sends value A to some members and B to the others, with matching votes."""

    def __init__(self, n: int, kind: str, seed: int, *, leak: bool = False) -> None:
        super().__init__(n, kind, seed, byzantine=0)
        self.kind = kind
        self.values = [Batch(0, (b"A" * 10,)), Batch(0, (b"B" * 10,))]
        self.digests = [v.digest() for v in self.values]
        self.finals_sent: set[int] = set()
        self.weak_sent: set[int] = set()
        honest = list(self.cores)
        split = self.rng.randint(0, len(honest))
        self.rng.shuffle(honest)
        self.choice = {m: (0 if i < split else 1) for i, m in enumerate(honest)}
        for member, which in self.choice.items():
            self.post(member, self.sign(0, Send(0, self.values[which])))
            if kind == "bracha":
                # Conflicting votes too: ECHO and READY for whichever value this member got.
                self.post(member, self.sign(0, Echo(0, 0, self.digests[which])))
                if self.rng.random() < 0.5:
                    self.post(member, self.sign(0, Ready(0, 0, self.digests[which])))
        if leak:
            # A careless equivocator: one member also sees the other value.
            member = min(self.choice)
            self.post(member, self.sign(0, Send(0, self.values[1 - self.choice[member]])))

    def on_time(self) -> None:
        if self.kind == "bracha":
            return
        for which, digest in enumerate(self.digests):
            if which in self.finals_sent:
                continue
            votes = {s.sender: s for s in self.to_byzantine
                     if type(s.message) is Echo and s.message.digest == digest}
            votes[0] = self.sign(0, Echo(0, 0, digest))  # it signs whatever it likes
            cert = tuple(Vote(m, s.signature) for m, s in sorted(votes.items()))
            target = self.rng.choice(sorted(self.cores))
            if len(votes) >= self.quorums.quorum:
                # Totality under attack: the certificate reaches a single member.
                self.post(target, self.sign(0, Final(0, 0, self.values[which], cert)))
                self.finals_sent.add(which)
            elif len(votes) > self.quorums.f and which not in self.weak_sent:
                # A certificate one honest vote short of safe, and one padded with repeats.
                self.post(target, self.sign(0, Final(0, 0, self.values[which], cert)))
                padded = cert[:1] * self.quorums.quorum
                self.post(target, self.sign(0, Final(0, 0, self.values[which], padded)))
                self.weak_sent.add(which)


@pytest.mark.parametrize("kind", ["bracha", "echo", "echo-linear"])
@pytest.mark.parametrize("n", [4, 7])
def test_equivocating_origin_cannot_split_honest_members(kind: str, n: int) -> None:
    delivered_runs = 0
    for seed in range(60):
        h = EquivocatingOrigin(n, kind, seed)
        h.run()
        values = h.honest_values()
        union = set().union(*values.values())
        assert len(union) <= 1, f"seed {seed}: honest members delivered different values"
        if union:
            delivered_runs += 1
            missing = [m for m, v in values.items() if not v]
            assert not missing, f"seed {seed}: members {missing} never delivered (totality)"
    # The attack must not be vacuous: some runs deliver (a value reached a quorum).
    assert delivered_runs > 0


@pytest.mark.parametrize("kind", ["bracha", "echo"])
def test_evidence_of_equivocation_is_collected(kind: str) -> None:
    proven = 0
    for seed in range(10):
        h = EquivocatingOrigin(7, kind, seed, leak=True)
        h.run()
        assert len(set().union(*h.honest_values().values())) <= 1
        proven += sum(1 for o in h.outboxes.values() for e in o.evidence if e.member == 0)
    # Every run leaks both signed values to one member (bar loss before t=1).
    assert proven >= 5


@pytest.mark.parametrize("kind", ["bracha", "echo", "echo-linear"])
def test_honest_origin_is_delivered_everywhere_despite_loss(kind: str) -> None:
    for seed in range(20):
        h = Harness(4, kind, seed, byzantine=None)
        batch = Batch(0, (b"hello",))
        h.cores[1].broadcast(0, batch, 0.0)
        h.flush(1)
        h.run()
        for member, got in h.delivered.items():
            assert got == [(1, 0, batch.digest())], f"seed {seed}, member {member}"


def test_window_and_bounds_refuse_far_instances_and_oversized_batches() -> None:
    h = Harness(4, "bracha", 0, byzantine=None)
    core, outbox = h.cores[1], h.outboxes[1]
    far = h.sign(2, Send(SETTINGS.brb_window, Batch(0, (b"x",))))
    core.on_message(far, 0.0)
    payloads = tuple(b"p" for _ in range(SETTINGS.batch_payloads_max + 1))
    too_many = h.sign(3, Send(0, Batch(0, payloads)))
    core.on_message(too_many, 0.0)
    empty = h.sign(2, Send(1, Batch(0, ())))
    core.on_message(empty, 0.0)
    assert outbox.dropped["brb-beyond-window"] == 1
    assert outbox.dropped["brb-batch-out-of-bounds"] == 2
    assert not outbox.sends
    assert core.instances() <= 2


def test_forgotten_instances_stay_forgotten() -> None:
    h = Harness(4, "bracha", 0, byzantine=None)
    core, outbox = h.cores[1], h.outboxes[1]
    core.forget(2, 0)
    core.on_message(h.sign(2, Send(0, Batch(0, (b"late",)))), 0.0)
    assert outbox.dropped["brb-finished"] == 1 and not outbox.sends


def test_a_conflicting_send_goes_to_each_voter_once_per_origin() -> None:
    # Regression (bench: an equivocating origin nearly doubled every member's bytes): the
    # value held goes to a voter who echoed another value only once per (origin, voter);
    # the conflicting vote itself is still forwarded every time.
    n = 4
    keys = [SigningKey.from_seed(hashlib.sha256(b"k%d" % i).digest()) for i in range(n)]
    registry = KeyRegistry(tuple(k.public_key() for k in keys))
    signers = [Signer(k, cluster_id=CLUSTER) for k in keys]
    verifier = Verifier(registry, cluster_id=CLUSTER)
    outbox = Outbox()
    core = BrachaBroadcast(member=1, quorums=Quorums.for_cluster(n), settings=SETTINGS,
                           outbox=outbox, verify=verifier.verify)
    for counter in range(10):
        told = Batch(0, (b"told-1-%d" % counter,))
        other = Batch(0, (b"told-3-%d" % counter,))
        core.on_message(Signed.create(0, Send(counter, told), signers[0].sign), 0.0)
        core.on_message(Signed.create(3, Echo(0, counter, other.digest()), signers[3].sign), 0.0)
    to_voter = [item for dest, item in outbox.sends
                if dest == 3 and isinstance(item, Signed) and isinstance(item.message, Send)]
    forwarded = [item for dest, item in outbox.sends
                 if dest is None and isinstance(item, Signed) and item.sender == 3]
    assert len(to_voter) == 1
    assert len(forwarded) == 10


def test_a_repeated_send_gets_the_echo_again_after_the_final() -> None:
    # Regression (sim replay: n=7, moving, echo BRB, an origin restarted after its FINAL
    # left): a member that delivered the FINAL stops sending its ECHO and forwards the FINAL,
    # which the origin, signed by itself, drops when it comes back. The restarted origin
    # repeats its SEND (the journal holds it) and must get the ECHOs it needs for a FINAL of
    # its own, or it never holds its batch and never echoes a slot naming it.
    h = Harness(4, "echo", 0, byzantine=None)
    core, outbox = h.cores[1], h.outboxes[1]
    batch = Batch(0, (b"mine",))
    send = h.sign(0, Send(0, batch))
    echo = Echo(0, 0, batch.digest())
    core.on_message(send, 0.0)
    assert outbox.sends == [(0, echo)]
    outbox.sends.clear()
    votes = tuple(Vote(m, h.sign(m, echo).signature) for m in (0, 2, 3))
    core.on_message(h.sign(0, Final(0, 0, batch, votes)), 0.1)
    assert [d.origin for d in outbox.brb_deliveries] == [0]
    outbox.sends.clear()
    core.retransmit(1.0)
    assert all(not isinstance(item, Echo) for _, item in outbox.sends)  # it stopped echoing
    outbox.sends.clear()
    core.on_message(send, 1.1)  # the origin, restarted, repeats its SEND
    assert outbox.sends == [(0, echo)]
    outbox.sends.clear()
    other = h.sign(0, Send(0, Batch(0, (b"other",))))
    core.on_message(other, 1.2)  # an equivocation gets no echo, only evidence
    assert not outbox.sends and outbox.evidence


def test_a_restarted_origin_that_drops_its_own_frames_still_gets_its_batch() -> None:
    # The same through the network: origin 1's FINAL reached everyone, then origin 1 lost
    # its instance (a restart) and, like a member, drops every frame signed by itself.
    h = Harness(4, "echo", 0, byzantine=None)
    batch = Batch(0, (b"hello",))
    h.cores[1].broadcast(0, batch, 0.0)
    h.flush(1)
    h.run(until=2.0)
    assert all(got == [(1, 0, batch.digest())] for got in h.delivered.values())
    h.outboxes[1] = Outbox()
    h.cores[1] = SignedEchoBroadcast(member=1, quorums=h.quorums, settings=SETTINGS,
                                     outbox=h.outboxes[1], verify=h.verifiers[1].verify)
    h.delivered[1] = []
    receive = h.receive

    def gate(dest: int, frame: bytes) -> None:
        if decode_frame(frame).sender != dest:
            receive(dest, frame)

    h.receive = gate  # type: ignore[method-assign]
    h.cores[1].broadcast(0, batch, h.now)
    h.flush(1)
    h.run(until=h.now + 3.0)
    assert h.delivered[1] == [(1, 0, batch.digest())]
@pytest.mark.parametrize("seed", range(10))
def test_a_signed_echo_origin_whose_disk_was_wiped_finishes_the_send_its_peers_echoed(
        seed: int) -> None:
    # Regression (sim --brb echo --seed 2 with member 1 restarted from a wiped disk: its
    # last batch was never delivered): only the origin can turn the ECHOs into a FINAL, so
    # an origin back with nothing fetches the SEND it had signed, and certifies that one
    # (signing another value for the counter would be equivocation).
    h = Harness(4, "echo", seed, byzantine=None)
    batch = Batch(0, (b"before the wipe",))
    h.cores[1].broadcast(0, batch, 0.0)
    h.flush(1)
    h.outboxes[1] = Outbox()  # the disk is gone: a fresh core with nothing of instance 0
    h.cores[1] = SignedEchoBroadcast(member=1, quorums=h.quorums, settings=SETTINGS,
                                     outbox=h.outboxes[1], verify=h.verifiers[1].verify)
    h.run()
    for member, got in h.delivered.items():
        assert got == [(1, 0, batch.digest())], f"member {member}"
    assert not any(o.evidence for o in h.outboxes.values()), "the origin equivocated"


def test_a_signed_echo_origin_lets_in_only_its_own_sends_it_asked_for() -> None:
    h = Harness(4, "echo", 0, byzantine=None)
    core, outbox = h.cores[1], h.outboxes[1]
    assert not core.lost_own()
    core.on_message(h.sign(1, Send(0, Batch(0, (b"replayed",)))), 0.0)
    assert outbox.dropped["own-frame-returned"] == 1 and not outbox.sends
    core.on_message(h.sign(2, Echo(1, 1, Batch(0, (b"lost",)).digest())), 0.0)
    assert core.lost_own()
    assert [type(item) for _, item in outbox.sends] == [Fetch]


@pytest.mark.parametrize("kind", ["bracha", "echo"])
def test_a_member_holds_the_value_it_echoes_before_the_broadcast_delivers_it(kind: str) -> None:
    """Ordering may echo a proposal as soon as the batch is held (four message delays)."""
    h = Harness(4, kind, 0, byzantine=None)
    core, outbox = h.cores[1], h.outboxes[1]
    batch = Batch(0, (b"early",))
    core.on_message(h.sign(0, Send(0, batch)), 0.0)
    assert [(d.origin, d.counter, d.digest) for d in outbox.held] == [(0, 0, batch.digest())]
    assert not outbox.brb_deliveries
    assert any(isinstance(item, Echo) for _, item in outbox.sends)


@pytest.mark.parametrize("kind", ["bracha", "echo"])
def test_a_wanted_value_is_fetched_and_held_even_over_another_value(kind: str) -> None:
    """An equivocating origin gave this member one value and a proposal names the other:
    the member asks everyone for the named one and holds it once it comes, signed by the
    origin; a value nobody asked for is not held."""

    h = Harness(4, kind, 0, byzantine=None)
    core, outbox = h.cores[1], h.outboxes[1]
    mine, named, third = (Batch(0, (v,)) for v in (b"told-1", b"told-2", b"told-3"))
    core.on_message(h.sign(0, Send(0, mine)), 0.0)
    outbox.held.clear()
    outbox.sends.clear()
    core.want(BatchRef(0, 0, named.digest()), 0.1)
    assert outbox.sends == [(None, Fetch(0, 0, named.digest()))]
    core.want(BatchRef(0, 0, named.digest()), 0.1)  # asked once; retransmit repeats it
    assert len(outbox.sends) == 1
    core.on_message(h.sign(0, Send(0, third)), 0.2)
    assert not outbox.held
    core.on_message(h.sign(0, Send(0, named)), 0.3)
    assert [d.digest for d in outbox.held] == [named.digest()]
    outbox.sends.clear()
    core.retransmit(10.0)
    assert not any(isinstance(item, Fetch) for _, item in outbox.sends)  # the fetch ended
    outbox.held.clear()
    core.want(BatchRef(0, 0, mine.digest()), 0.4)  # the first value is still here
    assert [d.digest for d in outbox.held] == [mine.digest()]
    peer = h.sign(2, Fetch(0, 0, named.digest()))
    outbox.sends.clear()
    core.on_message(peer, 0.5)  # and the fetched one is served to others
    assert [(dest, item.message) for dest, item in outbox.sends
            if isinstance(item, Signed)] == [(2, Send(0, named))]


def test_under_linear_votes_a_final_goes_to_the_sequencer_first_and_to_all_if_unordered(
) -> None:
    h = Harness(4, "echo-linear", 0, byzantine=None)
    core, outbox = h.cores[2], h.outboxes[2]
    batch = Batch(0, (b"mine",))
    echo = Echo(0, 0, batch.digest())
    core.on_message(h.sign(0, Send(0, batch)), 0.0)
    votes = tuple(Vote(m, h.sign(m, echo).signature) for m in (0, 1, 3))
    final = h.sign(0, Final(0, 0, batch, votes))
    outbox.sends.clear()
    core.on_message(final, 0.1)
    assert [d.origin for d in outbox.brb_deliveries] == [0]
    assert outbox.sends == [(LEADER, final)]
    outbox.sends.clear()
    core.retransmit(0.1 + LINEAR.retransmit_interval_s / 2)
    assert outbox.sends == []
    core.retransmit(0.1 + LINEAR.retransmit_interval_s)  # still not ordered: to everyone
    assert outbox.sends == [(None, final)]
    leader, leader_box = h.cores[LEADER], h.outboxes[LEADER]
    leader_box.sends.clear()
    leader.on_message(final, 0.2)  # the sequencer itself forwards it to no one at first
    assert leader_box.sends == [] and [d.origin for d in leader_box.brb_deliveries] == [0]
    leader.retransmit(0.2 + LINEAR.retransmit_interval_s)  # ... unless it stays unordered
    assert leader_box.sends == [(None, final)]
    leader_box.sends.clear()
    leader.forget(0, 0)  # ordered: nothing more to forward
    leader.retransmit(0.2 + 3 * LINEAR.retransmit_interval_s)
    assert leader_box.sends == []
