"""The fault driver (FaultyCore): each process fault does what it says, on a clock that
starts with the node, and its effects are counted."""

from __future__ import annotations

import pytest

from btob import Member, MemberCrashed, Settings
from btob.core.clientwire import ClientRequest, sign_request
from btob.core.contract import Outgoing
from btob.core.member import RequestRefused
from btob.core.wire import Status, decode_frame
from btob.crypto import Signer, SigningKey
from btob.faults import parse_fault
from btob.faults._driver import FaultyCore, faulty_core

from ..helpers import Keys

N = 4
KEYS = Keys(N)


def _member(i: int, settings: Settings | None = None) -> Member:
    return Member(member=i, registry=KEYS.registry, signing_key=KEYS.keys[i],
                  cluster_id=KEYS.cluster_id, settings=settings)


def _faulty(text: str, *, started_at: float = 0.0) -> FaultyCore:
    spec = parse_fault(text, N)
    return faulty_core(spec, lambda: _member(spec.member), n=N,
                       signing_key=KEYS.keys[spec.member], cluster_id=KEYS.cluster_id,
                       settings=Settings(), seed=1, started_at=started_at)


def _kinds(frames: list[Outgoing]) -> list[str]:
    return [decode_frame(out.frame).kind for out in frames]


def test_a_timed_crash_counts_from_the_node_start() -> None:
    core = _faulty("1=crash:at=2", started_at=100.0)
    assert core.crash_time == 102.0
    core.submit(b"before", 101.0)
    assert not core.check_crash(101.99)
    assert core.check_crash(102.0)
    assert core.effects().crashed_at == pytest.approx(2.0)
    with pytest.raises(MemberCrashed):
        core.submit(b"after", 102.5)
    core.tick(103.0)
    core.receive(b"anything", 103.0, source=2)
    frames, deliveries = core.take_outputs()
    assert deliveries == [] and all(out.frame for out in frames)  # only what came before
    assert core.effects().inputs_dropped == 1


def test_a_crash_after_k_frames_sends_exactly_k() -> None:
    core = _faulty("1=crash:after=5")
    sent: list[Outgoing] = []
    with pytest.raises(MemberCrashed):
        for k in range(10):  # each payload: a SEND to 3 peers, then this member's ECHOs
            core.submit(b"p%d" % k, 0.1 * k)
            sent += core.take_outputs()[0]
    sent += core.take_outputs()[0]
    assert core.crashed and len(sent) == 5
    assert core.effects().frames_dropped >= 1


def test_a_crash_at_a_protocol_step_stops_before_that_kind_leaves() -> None:
    core = _faulty("1=crash:step=brb.send")
    core.submit(b"x", 0.0)
    frames, _ = core.take_outputs()
    assert core.crashed and "brb.send" not in _kinds(frames)


def test_a_pause_holds_inputs_and_counts_the_held_stretch_once() -> None:
    core = _faulty("2=pause:at=1,for=2", started_at=10.0)
    assert core.ready_at(10.5) == 10.5
    assert core.ready_at(11.0) == 13.0  # paused from 1 s to 3 s after the start
    assert core.ready_at(11.5) == 13.0  # another queued input: the same stretch
    assert core.ready_at(13.0) == 13.0
    assert core.effects().held_s == pytest.approx(2.0)


def test_a_slow_cpu_makes_every_input_take_its_delay_and_delays_its_outputs() -> None:
    core = _faulty("1=slow:delay=0.25")
    core.submit(b"x", 1.0)
    assert core.ready_at(1.0) == 1.25 and core.ready_at(1.3) == 1.3
    frames, _ = core.take_outputs()
    assert frames and all(out.delay_s == 0.25 for out in frames)
    core.tick(2.0)
    assert core.effects().busy_s == pytest.approx(0.5)


def test_a_byzantine_behaviour_rewrites_and_is_counted() -> None:
    silent = _faulty("1=silent")
    silent.submit(b"x", 0.0)
    frames, _ = silent.take_outputs()
    assert frames == [] and silent.effects().frames_dropped > 0
    assert silent.effects().took_effect
    liar = _faulty("1=equivocate")
    liar.submit(b"x", 0.0)
    frames, _ = liar.take_outputs()
    assert liar.effects().frames_changed > 0
    sends = {out.frame for out in frames if decode_frame(out.frame).kind == "brb.send"}
    assert len(sends) == 2  # two different SENDs for one instance


def test_a_fault_that_never_acted_reports_no_effect() -> None:
    core = _faulty("1=crash:at=50")
    core.submit(b"x", 0.0)
    core.tick(1.0)
    core.take_outputs()
    assert not core.effects().took_effect


def test_twins_route_by_peer_and_talk_to_their_own_halves() -> None:
    core = _faulty("0=twins")
    assert core.twin_peers == frozenset({2, 3})
    core.submit(b"x", 0.0)
    frames, _ = core.take_outputs()
    by_dest: dict[int, set[bytes]] = {}
    for out in frames:
        by_dest.setdefault(out.destination, set()).add(out.frame)
    assert set(by_dest) == {1, 2, 3}
    # Each half hears one instance's SEND (the twin's carries other bytes, same counter).
    assert by_dest[1] != by_dest[2] and by_dest[2] == by_dest[3]


def test_a_byzantine_core_tripping_its_own_invariant_stops_like_a_crash() -> None:
    core = _faulty("1=garbage")

    def broken(*args: object, **kwargs: object) -> None:
        raise AssertionError("an invariant of the honest core")

    core.core.tick = broken  # type: ignore[assignment,method-assign]
    core.tick(0.5)
    assert core.crashed and core.effects().crashed_at == pytest.approx(0.5)


def test_what_a_twin_says_counts_as_the_faults_effect() -> None:
    core = _faulty("0=twins")
    core.submit(b"x", 0.0)
    core.take_outputs()
    effects = core.effects()
    assert effects.twin_frames > 0 and effects.took_effect


def test_frames_a_behaviour_answers_with_leave_right_after_the_input() -> None:
    core = _faulty("1=silent")
    answer = KEYS.sign(1, Status(0, 0)).to_frame()
    core.fault.react = lambda: [(2, answer)]  # type: ignore[method-assign]
    core.receive(KEYS.sign(0, Status(0, 0)).to_frame(), 0.0, source=0)
    frames, _ = core.take_outputs()
    assert [(out.destination, out.frame) for out in frames] == [(2, answer)]
    assert core.effects().frames_injected == 1


def test_a_faulty_member_takes_client_requests_until_it_crashes() -> None:
    import hashlib

    from btob.core.clients import ClientAdmission
    from btob.core.clientwire import ClientRequest, sign_request
    from btob.core.member import RequestRefused
    from btob.crypto import Signer, SigningKey

    spec = parse_fault("1=crash:at=2", N)
    core = faulty_core(spec, lambda: Member(
        member=1, registry=KEYS.registry, signing_key=KEYS.keys[1], cluster_id=KEYS.cluster_id,
        clients=ClientAdmission(open=True)), n=N, signing_key=KEYS.keys[1],
        cluster_id=KEYS.cluster_id, settings=Settings(), seed=1)
    client = Signer(SigningKey.from_seed(hashlib.sha256(b"c").digest()),
                    cluster_id=KEYS.cluster_id)
    frames = [sign_request(ClientRequest(client.public_key, 1, k, b"x"), client.sign)
              for k in range(2)]
    core.submit_request(frames[0], 1.0)
    assert core.take_outputs()[0]  # the request went into a batch that leaves
    with pytest.raises(RequestRefused, match="signature"):
        core.submit_request(frames[1][:-1] + bytes([frames[1][-1] ^ 1]), 1.5)
    with pytest.raises(MemberCrashed):
        core.submit_request(frames[1], 2.5)
    assert core.take_client_outputs() == []


def _request(seq: int = 0) -> bytes:
    signer = Signer(SigningKey.from_seed(b"\x05" * 32), cluster_id=KEYS.cluster_id)
    return sign_request(ClientRequest(signer.public_key, 1, seq, b"x"), signer.sign)


def test_client_requests_reach_the_member_through_the_behaviour() -> None:
    slow = _faulty("1=slow:delay=0.01")
    with pytest.raises(RequestRefused, match="not admitted"):  # the member's own answer
        slow.submit_request(_request(), 0.0)
    dropping = _faulty("1=drop-requests")
    dropping.submit_request(_request(), 0.0)
    assert dropping.effects().requests_dropped == 1 and dropping.effects().took_effect
    crashed = _faulty("1=crash:at=0")
    with pytest.raises(MemberCrashed):
        crashed.submit_request(_request(), 0.5)


def test_client_outputs_leave_through_the_behaviour_and_are_counted() -> None:
    core = _faulty("1=slow:delay=0.01")
    outputs = [(b"k1", b"frame-1"), (b"k2", b"frame-2"), (b"k3", b"frame-3")]
    core.core.take_client_outputs = lambda: list(outputs)  # type: ignore[method-assign]
    answers = {b"frame-1": [(b"k1", b"frame-1")], b"frame-2": [],
               b"frame-3": [(b"k3", b"other"), (b"k9", b"frame-3")]}
    core.fault.client_output = lambda client, frame: answers[frame]  # type: ignore[method-assign]
    assert core.take_client_outputs() == [(b"k1", b"frame-1"), (b"k3", b"other"),
                                          (b"k9", b"frame-3")]
    effects = core.effects()
    assert (effects.client_frames_dropped, effects.client_frames_changed) == (1, 2)
    core._crash()
    assert core.take_client_outputs() == []
    assert core.effects().client_frames_dropped == 4
