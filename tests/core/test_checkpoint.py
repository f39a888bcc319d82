"""Checkpoints: the hash chain, CHECKPOINT votes stable at q, and what a tracker refuses."""

from __future__ import annotations

import hashlib

import pytest

from btob import StateDiverged
from btob.core.checkpoint import (
    GENESIS,
    CheckpointTracker,
    chain_step,
    valid_checkpoint_cert,
)
from btob.core.effects import Outbox
from btob.core.quorum import Quorums
from btob.core.wire import Batch, BatchRef, Checkpoint, CheckpointCert, Signed, Vote, slot_digest

from ..helpers import Keys

N = 4
INTERVAL = 4
WINDOW = 8
RETAINED = 8
QUORUMS = Quorums.for_cluster(N)
KEYS = Keys(N)


def _refs(slot: int) -> tuple[BatchRef, ...]:
    return (BatchRef(slot % N, slot, Batch(slot, (b"s%d" % slot,)).digest()),)


def _chain(upto: int) -> bytes:
    """The chain value before slot ``upto``, folded by hand."""
    chain = bytes(32)
    for slot in range(upto):
        chain = hashlib.sha256(chain + slot_digest(slot, _refs(slot))).digest()
    return chain


def _tracker(member: int = 1) -> tuple[CheckpointTracker, Outbox]:
    outbox = Outbox()
    tracker = CheckpointTracker(member=member, quorums=QUORUMS, interval=INTERVAL,
                                window=WINDOW, retained=RETAINED, outbox=outbox,
                                verify=KEYS.verifier().verify)
    return tracker, outbox


def _deliver(tracker: CheckpointTracker, upto: int,
             state: bytes = bytes(32)) -> list[Checkpoint | None]:
    """Deliver up to ``upto``; at each boundary sign it (with the state root ``state``)."""
    produced: list[Checkpoint | None] = []
    for slot in range(tracker.next_slot, upto):
        boundary = tracker.slot_delivered(slot, _refs(slot))
        produced.append(None if boundary is None
                        else tracker.boundary_checkpoint(boundary, state))
    return produced


def _signed(member: int, upto: int, digest: bytes | None = None,
            state: bytes = bytes(32)) -> Signed:
    return KEYS.sign(member, Checkpoint(upto, _chain(upto) if digest is None else digest, state))


def _cert(upto: int, voters: tuple[int, ...] = (0, 2, 3),
          digest: bytes | None = None, state: bytes = bytes(32)) -> CheckpointCert:
    digest = _chain(upto) if digest is None else digest
    return CheckpointCert(upto, digest, tuple(
        Vote(m, _signed(m, upto, digest, state).signature) for m in voters), state)


# -- the chain ----------------------------------------------------------------------------


def test_the_chain_starts_at_zero_and_hashes_each_slot_digest_onto_it() -> None:
    assert bytes(32) == GENESIS
    refs = _refs(0)
    assert chain_step(GENESIS, 0, refs) == hashlib.sha256(
        bytes(32) + slot_digest(0, refs)).digest()


def test_the_chain_binds_the_previous_value_the_slot_and_its_refs() -> None:
    refs = _refs(0)
    step = chain_step(GENESIS, 0, refs)
    assert chain_step(b"\x01" * 32, 0, refs) != step
    assert chain_step(GENESIS, 1, refs) != step
    assert chain_step(GENESIS, 0, _refs(1)) != step
    assert chain_step(GENESIS, 0, ()) != step  # a null slot is a value too


def test_delivering_slots_extends_the_chain_and_signs_at_every_boundary() -> None:
    tracker, _ = _tracker()
    produced = _deliver(tracker, 2 * INTERVAL)
    assert produced[:INTERVAL - 1] == [None] * (INTERVAL - 1)
    assert produced[INTERVAL - 1] == Checkpoint(INTERVAL, _chain(INTERVAL))
    assert produced[2 * INTERVAL - 1] == Checkpoint(2 * INTERVAL, _chain(2 * INTERVAL))
    assert tracker.chain == _chain(2 * INTERVAL) and tracker.next_slot == 2 * INTERVAL
    assert tracker.chain_at(INTERVAL) == _chain(INTERVAL)
    assert tracker.chain_at(INTERVAL + 1) is None  # only boundaries are kept
    assert tracker.own_checkpoint() == Checkpoint(2 * INTERVAL, _chain(2 * INTERVAL))


def test_slots_are_absorbed_in_order_only() -> None:
    tracker, _ = _tracker()
    with pytest.raises(AssertionError, match=r"^the chain absorbs slots in order"):
        tracker.slot_delivered(1, _refs(1))


# -- votes --------------------------------------------------------------------------------


def test_a_checkpoint_becomes_stable_at_q_matching_votes() -> None:
    tracker, _ = _tracker()
    _deliver(tracker, INTERVAL)
    assert tracker.on_checkpoint(_signed(0, INTERVAL)) is None
    assert tracker.on_checkpoint(_signed(2, INTERVAL)) is None
    assert tracker.stable_upto == 0
    cert = tracker.on_checkpoint(_signed(3, INTERVAL))
    assert cert is not None and cert.upto == INTERVAL and cert.digest == _chain(INTERVAL)
    assert [v.member for v in cert.votes] == [0, 2, 3]
    assert tracker.verify_cert(cert)
    assert tracker.stable is cert and tracker.stable_upto == INTERVAL
    assert tracker.cert_at(INTERVAL) is cert
    assert tracker.own_checkpoint() is None  # covered by the stable certificate


def test_votes_for_different_digests_do_not_add_up() -> None:
    tracker, _ = _tracker()
    other = bytes([9]) * 32
    tracker.on_checkpoint(_signed(0, INTERVAL))
    tracker.on_checkpoint(_signed(1, INTERVAL))
    assert tracker.on_checkpoint(_signed(2, INTERVAL, other)) is None  # 2 + 1: no quorum
    cert = tracker.on_checkpoint(_signed(3, INTERVAL))
    assert cert is not None and [v.member for v in cert.votes] == [0, 1, 3]


def test_a_repeated_vote_counts_once() -> None:
    tracker, _ = _tracker()
    for _ in range(3):
        assert tracker.on_checkpoint(_signed(0, INTERVAL)) is None
    assert tracker.on_checkpoint(_signed(2, INTERVAL)) is None  # still two members
    assert tracker.stable_upto == 0


def test_conflicting_checkpoints_of_one_member_are_evidence_and_count_once() -> None:
    tracker, outbox = _tracker()
    first = _signed(2, INTERVAL)
    second = _signed(2, INTERVAL, bytes([7]) * 32)
    tracker.on_checkpoint(first)
    assert tracker.on_checkpoint(second) is None
    assert [(e.member, e.first, e.second) for e in outbox.evidence] == [(2, first, second)]
    tracker.on_checkpoint(_signed(0, INTERVAL))
    assert tracker.stable_upto == 0  # member 2's second vote was not counted
    assert tracker.on_checkpoint(_signed(3, INTERVAL)) is not None


@pytest.mark.parametrize("upto", [0, 3, INTERVAL + 1])
def test_misaligned_checkpoints_are_dropped(upto: int) -> None:
    tracker, outbox = _tracker()
    assert tracker.on_checkpoint(_signed(0, upto, bytes(32))) is None
    assert outbox.dropped["checkpoint-stale-or-misaligned"] == 1
    assert tracker.held() == 1  # nothing but the genesis chain value


def test_checkpoints_at_or_below_the_stable_one_are_stale() -> None:
    tracker, outbox = _tracker()
    _deliver(tracker, 2 * INTERVAL)
    assert tracker.adopt(_cert(2 * INTERVAL))
    for upto in (INTERVAL, 2 * INTERVAL):
        assert tracker.on_checkpoint(_signed(0, upto)) is None
    assert outbox.dropped["checkpoint-stale-or-misaligned"] == 2


def test_checkpoints_beyond_the_window_are_dropped() -> None:
    tracker, outbox = _tracker()
    assert tracker.on_checkpoint(_signed(0, WINDOW + INTERVAL, bytes(32))) is None
    assert outbox.dropped["checkpoint-beyond-window"] == 1
    assert tracker.on_checkpoint(_signed(0, WINDOW, bytes(32))) is None  # at the edge: held
    assert outbox.dropped["checkpoint-beyond-window"] == 1
    _deliver(tracker, INTERVAL)  # the window moves with delivery
    assert tracker.on_checkpoint(_signed(0, WINDOW + INTERVAL, bytes(32))) is None
    assert outbox.dropped["checkpoint-beyond-window"] == 1


# -- certificates -------------------------------------------------------------------------


def test_valid_checkpoint_cert_wants_q_distinct_valid_votes_at_a_boundary() -> None:
    verify = KEYS.verifier().verify

    def valid(cert: CheckpointCert) -> bool:
        return valid_checkpoint_cert(cert, interval=INTERVAL, quorums=QUORUMS, verify=verify)

    assert valid(_cert(INTERVAL))
    assert not valid(_cert(INTERVAL, voters=(0, 2)))
    assert not valid(_cert(INTERVAL, voters=(0, 0, 2)))
    good = _cert(INTERVAL)
    assert not valid(CheckpointCert(INTERVAL, bytes(32), good.votes))  # votes of another digest
    assert not valid(CheckpointCert(INTERVAL, good.digest, (*good.votes[:2], Vote(3, bytes(64)))))
    assert not valid(_cert(INTERVAL + 1))  # not a boundary
    assert not valid(_cert(0))  # nothing to settle below slot 0


def test_adopting_a_newer_certificate_replaces_the_stable_one_and_forgets_votes() -> None:
    tracker, _ = _tracker()
    _deliver(tracker, 2 * INTERVAL)
    tracker.on_checkpoint(_signed(0, INTERVAL))
    tracker.on_checkpoint(_signed(0, 2 * INTERVAL))
    held = tracker.held()
    assert tracker.adopt(_cert(INTERVAL))
    assert tracker.stable_upto == INTERVAL
    assert tracker.held() == held - 1 + 1  # the vote at 4 is forgotten, its certificate kept
    assert tracker.on_checkpoint(_signed(2, 2 * INTERVAL)) is None
    assert tracker.on_checkpoint(_signed(3, 2 * INTERVAL)) is not None  # the vote at 8 stayed
    assert tracker.stable_upto == 2 * INTERVAL
    assert tracker.adopt(_cert(2 * INTERVAL, voters=(1, 2, 3))) is False  # not newer
    assert tracker.stable_upto == 2 * INTERVAL
    assert not tracker.adopt(_cert(INTERVAL))  # older: kept out
    assert tracker.stable_upto == 2 * INTERVAL


def test_a_certificate_for_a_log_this_member_does_not_have_trips_its_invariant() -> None:
    tracker, _ = _tracker()
    _deliver(tracker, INTERVAL)
    with pytest.raises(AssertionError, match="diverges"):
        tracker.adopt(_cert(INTERVAL, digest=bytes([5]) * 32))


def test_a_certificate_ahead_of_the_log_is_adopted_without_a_chain_to_compare() -> None:
    tracker, _ = _tracker()
    assert tracker.adopt(_cert(2 * INTERVAL))  # a laggard: its chain has not got there
    assert tracker.stable_upto == 2 * INTERVAL and tracker.chain_at(2 * INTERVAL) is None


def test_old_chain_values_and_certificates_are_pruned_below_the_retained_log() -> None:
    tracker, _ = _tracker()
    upto = 6 * INTERVAL
    for boundary in range(INTERVAL, upto + 1, INTERVAL):
        _deliver(tracker, boundary)
        tracker.adopt(_cert(boundary))
    floor = upto - RETAINED
    kept = [b for b in range(0, upto + 1, INTERVAL) if tracker.chain_at(b) is not None]
    assert kept == [b for b in range(0, upto + 1, INTERVAL) if b >= floor]
    assert tracker.cert_at(INTERVAL) is None and tracker.cert_at(upto) is not None
    assert tracker.held() <= 3 * (RETAINED // INTERVAL + 1)  # chain values, certs, roots


# -- the state a certificate certifies -------------------------------------------------------

MINE = bytes([1]) * 32
THEIRS = bytes([2]) * 32


def _diverged(upto: int = INTERVAL) -> str:
    """What StateDiverged says when member 1 holds MINE and a quorum certified THEIRS."""
    return (f"member 1's state at slot {upto} differs from the one a quorum certified "
            f"(root {MINE.hex()[:16]} against {THEIRS.hex()[:16]}): the application is not "
            f"deterministic, or this member's data was altered")


def test_a_boundary_checkpoint_signs_the_snapshot_root_and_keeps_it() -> None:
    tracker, _ = _tracker()
    assert tracker.held() == 1  # the genesis chain value
    assert _deliver(tracker, INTERVAL, MINE)[-1] == Checkpoint(INTERVAL, _chain(INTERVAL), MINE)
    assert tracker.state_at(INTERVAL) == MINE and tracker.state_at(0) is None
    assert tracker.held() == 3  # chain values at 0 and 4, the root at 4


def test_a_stable_certificate_carries_the_state_its_votes_signed() -> None:
    tracker, _ = _tracker()
    for member in (0, 2, 3):
        cert = tracker.on_checkpoint(_signed(member, INTERVAL, state=THEIRS))
    assert cert is not None and cert.state == THEIRS
    assert tracker.verify_cert(cert)  # the votes sign (upto, digest, state)


def test_a_certified_state_other_than_the_one_reached_is_a_divergence() -> None:
    tracker, _ = _tracker()
    _deliver(tracker, INTERVAL, MINE)
    with pytest.raises(StateDiverged) as diverged:
        tracker.adopt(_cert(INTERVAL, state=THEIRS))
    assert str(diverged.value) == _diverged()


def test_reaching_a_state_other_than_the_certified_one_is_a_divergence() -> None:
    tracker, _ = _tracker()
    assert tracker.adopt(_cert(INTERVAL, state=THEIRS))  # a laggard learns the certificate first
    with pytest.raises(StateDiverged) as diverged:
        _deliver(tracker, INTERVAL, MINE)
    assert str(diverged.value) == _diverged()


def test_the_certified_state_reached_is_no_divergence() -> None:
    tracker, _ = _tracker()
    assert tracker.adopt(_cert(INTERVAL, state=MINE))
    assert _deliver(tracker, INTERVAL, MINE)[-1] == Checkpoint(INTERVAL, _chain(INTERVAL), MINE)


def test_restoring_from_a_certificate_continues_the_chain_there() -> None:
    tracker, _ = _tracker()
    upto = 3 * INTERVAL
    cert = _cert(upto, state=THEIRS)
    tracker.restore(cert)
    assert tracker.stable is cert and tracker.stable_upto == upto
    assert (tracker.chain, tracker.next_slot) == (_chain(upto), upto)
    assert tracker.chain_at(upto) == _chain(upto) and tracker.state_at(upto) == THEIRS
    assert tracker.cert_at(upto) is cert
    produced = _deliver(tracker, upto + INTERVAL)  # the chain goes on from the certified value
    assert produced[-1] == Checkpoint(upto + INTERVAL, _chain(upto + INTERVAL))
