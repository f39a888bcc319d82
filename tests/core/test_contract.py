"""The driver contract: every core the drivers run offers the same interface."""

from __future__ import annotations

from btob import Member, Settings
from btob.bench.baseline import CrashOnlySequencer
from btob.core.contract import Core, MemberStatistics, Outgoing
from btob.faults import parse_fault
from btob.faults._driver import faulty_core

from ..helpers import Keys

KEYS = Keys(4)


def _member() -> Member:
    return Member(member=1, registry=KEYS.registry, signing_key=KEYS.keys[1],
                  cluster_id=KEYS.cluster_id)


def _drive(core: Core, *, junk: bool = True) -> tuple[list[Outgoing], MemberStatistics]:
    """What any driver does with a core: an input of each kind, then the outputs (junk from
    the network only for cores that defend themselves: the crash-only baseline trusts its
    peers by design)."""
    core.submit(b"payload", 0.0)
    if junk:
        core.receive(b"not a frame", 0.1, source=2)
    core.tick(0.2)
    frames, deliveries = core.take_outputs()
    assert deliveries == []  # nothing can be committed by one member alone
    return frames, core.statistics()


def test_the_member_the_fault_driver_and_the_baseline_are_all_cores() -> None:
    cores: list[Core] = [
        _member(),
        faulty_core(parse_fault("1=slow:delay=0.01", 4), _member, n=4,
                    signing_key=KEYS.keys[1], cluster_id=KEYS.cluster_id,
                    settings=Settings()),
        CrashOnlySequencer(member=1, n=4, settings=Settings()),
    ]
    for core in cores:
        frames, stats = _drive(core, junk=not isinstance(core, CrashOnlySequencer))
        assert core.member == 1 and core.view == 0
        assert frames and all(isinstance(out, Outgoing) for out in frames)
        assert {out.destination for out in frames} <= {0, 2, 3}
        assert stats.member == 1 and stats.payloads_submitted == 1


def test_an_outgoing_frame_leaves_at_once_unless_a_fault_delays_it() -> None:
    frames, _ = _drive(_member())
    assert all(out.delay_s == 0.0 for out in frames)
    slow = faulty_core(parse_fault("1=slow:delay=0.01", 4), _member, n=4,
                       signing_key=KEYS.keys[1], cluster_id=KEYS.cluster_id,
                       settings=Settings())
    delayed, _ = _drive(slow)
    assert delayed and all(out.delay_s >= 0.01 for out in delayed)
