"""Invariants on what honest members sign and pass on: each rule trips on the frames that
break it, the real protocol keeps them under attack, and they catch a rule break the delivery
checker misses."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from btob import Member, SimConfig, simulate
from btob.core.wire import (
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    Echo,
    Final,
    LogSegment,
    NewView,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    OrderReady,
    PreparedCert,
    Ready,
    SlotProof,
    ViewChange,
    Vote,
    slot_digest,
)
from btob.faults import parse_fault
from btob.sim.invariants import VoteMonitor
from tests.helpers import Keys

KEYS = Keys(4)
D1, D2 = b"\x01" * 32, b"\x02" * 32


def _frame(member: int, message: object) -> bytes:
    return KEYS.sign(member, message).to_frame()  # type: ignore[arg-type]


@pytest.mark.parametrize("vote", [Echo, Ready, OrderEcho, OrderReady])
def test_one_member_signing_two_digests_for_one_instance_is_a_violation(vote: Any) -> None:
    monitor = VoteMonitor()
    monitor.observe(1, _frame(1, vote(0, 5, D1)))
    monitor.observe(1, _frame(1, vote(0, 5, D1)))  # a retransmission
    monitor.observe(1, _frame(1, vote(0, 6, D2)))  # another instance
    assert monitor.violations == []
    monitor.observe(1, _frame(1, vote(0, 5, D2)))
    assert len(monitor.violations) == 1 and "honest member 1 signed two" in \
        monitor.violations[0]


@pytest.mark.parametrize("ready", [Ready, OrderReady])
def test_honest_readies_for_one_instance_must_agree(ready: Any) -> None:
    monitor = VoteMonitor()
    monitor.observe(1, _frame(1, ready(0, 5, D1)))
    monitor.observe(2, _frame(2, ready(0, 5, D1)))
    assert monitor.violations == []
    monitor.observe(3, _frame(3, ready(0, 5, D2)))
    assert monitor.violations == [monitor.violations[0]]
    assert "honest members 1 and 3" in monitor.violations[0]


@pytest.mark.parametrize("echo", [Echo, OrderEcho])
def test_honest_echoes_may_differ_across_members(echo: Any) -> None:
    """An equivocating origin or sequencer makes honest members echo different values."""
    monitor = VoteMonitor()
    monitor.observe(1, _frame(1, echo(0, 5, D1)))
    monitor.observe(2, _frame(2, echo(0, 5, D2)))
    assert monitor.violations == []


def test_honest_members_pass_on_one_batch_per_instance() -> None:
    """A FINAL an honest member sends is one it delivers, whoever signed it."""
    one, other = Batch(0, (b"a",)), Batch(0, (b"b",))
    monitor = VoteMonitor()
    monitor.observe(1, _frame(0, Final(0, 3, one, ())))
    monitor.observe(2, _frame(0, Final(0, 3, one, ())))
    monitor.observe(2, _frame(0, Final(0, 4, other, ())))
    assert monitor.violations == []
    monitor.observe(3, _frame(0, Final(0, 3, other, ())))
    assert len(monitor.violations) == 1
    assert "honest members 1 and 3 delivered different batches" in monitor.violations[0]


def test_only_a_members_own_well_formed_frames_count() -> None:
    monitor = VoteMonitor()
    monitor.observe(1, _frame(1, Ready(0, 5, D1)))
    monitor.observe(2, _frame(3, Ready(0, 5, D2)))  # member 2 forwards member 3's READY
    monitor.observe(2, b"\x93not a frame")
    assert monitor.violations == []


def _low_ready_threshold(**kwargs: Any) -> Member:
    """Bracha with READY on f+1 ECHOs instead of an ECHO quorum (delivery unchanged)."""
    member = Member(**kwargs)
    brb = member._dissemination
    brb.quorums = attrs.evolve(brb.quorums, quorum=brb.quorums.one_honest)  # type: ignore[attr-defined]
    return member


def test_honest_readies_for_two_values_are_found_before_any_delivery_disagrees() -> None:
    """An equivocating origin, n=4: the member lied to holds two ECHOs for the lie (its own
    and the origin's) and, with READY on f+1 ECHOs, readies it while the others ready the
    truth. Neither value may then reach its delivery quorum, so deliveries can agree - the
    invariant sees the rule break anyway."""
    seeds = range(1, 4)
    found = []
    for seed in seeds:
        config = SimConfig(n=4, seed=seed, messages=40, max_time=20,
                           faults=(parse_fault("1=equivocate", 4),))
        assert simulate(config).ok  # the real protocol keeps the invariants
        result = simulate(config, member_factory=_low_ready_threshold)
        found.append(any("different digests" in v for v in result.vote_violations)
                     and not result.ok)
    assert all(found)  # and so the runs fail: SimResult.ok counts the invariants


def _certifying_monitor() -> VoteMonitor:
    return VoteMonitor(n=4, quorum=3, verify=KEYS.verifier().verify)


def _votes(message: Any, members: Any) -> tuple[Vote, ...]:
    return tuple(Vote(m, KEYS.sign(m, message).signature) for m in members)


def test_a_final_is_checked_by_its_own_certificate() -> None:
    batch = Batch(0, (b"a",))
    echo = Echo(0, 3, batch.digest())
    monitor = _certifying_monitor()
    monitor.observe(1, _frame(0, Final(0, 3, batch, _votes(echo, (0, 1, 2)))))
    assert monitor.violations == []
    for certificate, why in [
        (_votes(echo, (0, 1)), "2 signers, fewer than q=3"),
        (_votes(echo, (0, 1, 1)), "a repeated or foreign signer 1"),
        ((*_votes(echo, (0, 1)), Vote(9, bytes(64))), "a repeated or foreign signer 9"),
        (_votes(Ready(0, 3, batch.digest()), (0, 1, 2)), "member 0's signature is not for it"),
        (_votes(Echo(0, 4, batch.digest()), (0, 1, 2)), "member 0's signature is not for it"),
    ]:
        monitor = _certifying_monitor()
        monitor.observe(1, _frame(0, Final(0, 3, batch, certificate)))
        assert monitor.violations == [
            "honest member 1 passed on a certificate that does not hold: FINAL (0, 3): " + why]


def test_view_changes_new_views_slot_proofs_and_segments_carry_certificates_that_hold() -> None:
    refs = (BatchRef(0, 1, D1),)
    digest = slot_digest(7, refs)
    good_checkpoint = CheckpointCert(16, D1, _votes(Checkpoint(16, D1), (0, 1, 2)))
    # one CHECKPOINT vote signed another chain digest (a lie counted whatever it signs)
    mixed_checkpoint = attrs.evolve(good_checkpoint, votes=(
        *good_checkpoint.votes[:2], *_votes(Checkpoint(16, D2), (3,))))
    good_prepared = PreparedCert(2, 7, refs, _votes(OrderEcho(2, 7, digest), (0, 1, 2)))
    short_prepared = attrs.evolve(good_prepared, votes=good_prepared.votes[:2])
    good_change = ViewChange(3, good_checkpoint, (good_prepared,))
    proof = SlotProof(2, 7, refs, _votes(OrderReady(2, 7, digest), (1, 2, 3)), ())
    changes = tuple(_frame(m, good_change) for m in (0, 1, 2))
    cases: list[tuple[Any, str | None]] = [
        (good_change, None),
        (NewView(3, changes, ()), None),
        (proof, None),
        (LogSegment(good_checkpoint, 0, ()), None),
        (ViewChange(3, mixed_checkpoint, ()),
         "VIEW-CHANGE: checkpoint at 16: member 3's signature is not for it"),
        (ViewChange(3, None, (short_prepared,)),
         "VIEW-CHANGE: prepared (2, 7): 2 signers, fewer than q=3"),
        (NewView(3, changes[:2], ()), "NEW-VIEW 3: 2 VIEW-CHANGEs, fewer than q=3"),
        (NewView(3, (*changes[:2], _frame(2, ViewChange(3, None, (short_prepared,)))), ()),
         "NEW-VIEW 3: prepared (2, 7): 2 signers, fewer than q=3"),
        (attrs.evolve(proof, refs=(BatchRef(0, 2, D1),)),
         "SLOT proof of 7: member 1's signature is not for it"),
        (LogSegment(mixed_checkpoint, 0, ()),
         "LOG SEGMENT: checkpoint at 16: member 3's signature is not for it"),
        (OrderPrepared(2, 7, refs, good_prepared.votes), None),
        (OrderPrepared(2, 7, refs, short_prepared.votes),
         "ORDER-PREPARED: prepared (2, 7): 2 signers, fewer than q=3"),
        (OrderCommitted(2, 7, digest, proof.certificate), None),
        (OrderCommitted(2, 7, D1, proof.certificate),
         "ORDER-COMMITTED (2, 7): member 1's signature is not for it"),
    ]
    for message, why in cases:
        monitor = _certifying_monitor()
        monitor.observe(1, _frame(1, message))
        expected = [] if why is None else [
            f"honest member 1 passed on a certificate that does not hold: {why}"]
        assert monitor.violations == expected, message


def test_certificates_are_checked_only_with_a_verifier_and_once_per_frame() -> None:
    batch = Batch(0, (b"a",))
    bad = _frame(0, Final(0, 3, batch, ()))
    plain = VoteMonitor()
    plain.observe(1, bad)
    assert plain.violations == []
    monitor = _certifying_monitor()
    monitor.observe(1, bad)
    monitor.observe(2, _frame(0, Final(0, 3, batch, ())))  # the same frame, forwarded
    assert len(monitor.violations) == 1



def test_evidence_against_an_honest_member_is_a_violation() -> None:
    monitor = VoteMonitor()
    monitor.convicted(2, [])
    assert monitor.violations == []
    monitor.convicted(2, [0, 3])
    assert monitor.violations == ["honest member 2 holds evidence against honest member 0",
                                  "honest member 2 holds evidence against honest member 3"]


def test_a_certificate_signature_that_also_passes_for_the_sibling_kind_is_a_violation() -> None:
    """With a domain tag that left out the kind, an ECHO signature would verify as a READY
    one: the monitor's verifier here is made that blind, and every certificate shows it."""
    real = KEYS.verifier().verify
    siblings = {"brb.echo": "brb.ready", "brb.ready": "brb.echo"}

    def kind_blind(member: int, kind: str, body: bytes, signature: bytes) -> bool:
        return real(member, kind, body, signature) or real(member, siblings.get(kind, kind),
                                                           body, signature)

    batch = Batch(0, (b"a",))
    final = _frame(0, Final(0, 3, batch, _votes(Echo(0, 3, batch.digest()), (0, 1, 2))))
    monitor = _certifying_monitor()
    monitor.observe(1, final)
    assert monitor.violations == []
    blind = VoteMonitor(n=4, quorum=3, verify=kind_blind)
    blind.observe(1, final)
    assert blind.violations == [
        "honest member 1 passed on a certificate that does not hold: FINAL (0, 3): member 0's "
        "signature is valid as a brb.ready too: signatures are not bound to their kind"]
