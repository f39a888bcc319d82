"""Invariants on what honest members sign and pass on: each rule trips on the frames that
break it, the real protocol keeps them under attack, and they catch a rule break the delivery
checker misses."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from btob import Member, SimConfig, simulate
from btob.core.wire import Batch, Echo, Final, OrderEcho, OrderReady, Ready
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
