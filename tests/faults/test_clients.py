"""Byzantine clients: their specs, the frames each sends, and runs that survive them."""

from __future__ import annotations

import random

import pytest

from btob._errors import ConfigError, WireError
from btob.core.clientwire import REQUEST_KIND, Notice, decode_request
from btob.crypto import Signer, SigningKey, Verifier
from btob.faults._clients import (
    CLIENT_BEHAVIOURS,
    FAR_FUTURE_SEQ,
    ClientContext,
    ClientFault,
    make_client_fault,
    parse_client_fault,
)
from btob.sim.simulator import SimConfig, simulate

from ..helpers import Keys

HONEST = Signer(SigningKey.from_seed(b"\x02" * 32), cluster_id=b"c")
HONEST_FRAMES = [b"honest-frame-0", b"honest-frame-1"]


def _fault(text: str) -> ClientFault:
    own = Signer(SigningKey.from_seed(b"\x03" * 32), cluster_id=b"c")
    outsider = Signer(SigningKey.from_seed(b"\x04" * 32), cluster_id=b"c")
    ctx = ClientContext(client=0, n=4, window=8, public_key=own.public_key, sign=own.sign,
                        rng=random.Random(1), outsider_key=outsider.public_key,
                        outsider_sign=outsider.sign, honest_keys=[HONEST.public_key],
                        honest_frames=lambda: HONEST_FRAMES)
    return make_client_fault(parse_client_fault(text, 2), ctx)


def _verifies(frame: bytes) -> bool:
    request, body, signature = decode_request(frame, frame_bytes_max=1 << 20)
    verifier = Verifier(Keys(1).registry, cluster_id=b"c", cache_entries_max=0)
    return verifier.verify_key(request.client, REQUEST_KIND, body, signature)


def test_client_fault_specs_parse_and_print() -> None:
    spec = parse_client_fault("1=flood:k=5", 2)
    assert (spec.client, spec.behaviour, spec.params["k"], spec.params["rounds"]) == (
        1, "flood", 5, 30)
    assert str(spec) == "1=flood:k=5" and str(parse_client_fault("0=replay", 1)) == "0=replay"
    for text, message in (("x=flood", "expected J="), ("2=flood", "outside 0..1"),
                          ("0=shout", "unknown behaviour"), ("0=flood:z=1", "bad parameter")):
        with pytest.raises(ConfigError, match=message):
            parse_client_fault(text, 2)
    assert set(CLIENT_BEHAVIOURS) == {"equivocate", "replay", "flood", "garbage"}
    assert all(b.byzantine and b.summary for b in CLIENT_BEHAVIOURS.values())


def test_equivocate_signs_two_payloads_under_one_seq_for_two_members() -> None:
    fault = _fault("0=equivocate:rounds=2")
    first = fault.start(0.0)
    (m1, f1), (m2, f2) = first.sends
    r1, r2 = (decode_request(f, frame_bytes_max=1 << 20)[0] for f in (f1, f2))
    assert m1 != m2 and (r1.session, r1.seq) == (r2.session, r2.seq) == (1, 0)
    assert r1.payload != r2.payload and _verifies(f1) and _verifies(f2)
    assert first.timers == [(0.02, 0)]
    last = fault.on_timer(0, 0.02)
    assert decode_request(last.sends[0][1], frame_bytes_max=1 << 20)[0].seq == 1
    assert fault.done and last.timers == [] and fault.on_timer(0, 1.0).sends == []
    assert fault.stats.sent == 4


def test_replay_resends_the_honest_frames_then_old_ones_again() -> None:
    fault = _fault("0=replay:k=3")
    frames = [frame for _, frame in fault.start(0.0).sends]
    assert frames[:2] == HONEST_FRAMES and frames[2] in HONEST_FRAMES


def test_flood_stays_out_of_the_window() -> None:
    fault = _fault("0=flood:k=4")
    seqs = [decode_request(f, frame_bytes_max=1 << 20)[0].seq for _, f in fault.start(0).sends]
    assert len(seqs) == 8
    assert all(8 <= s < 88 or s >= FAR_FUTURE_SEQ for s in seqs)
    assert sum(s >= FAR_FUTURE_SEQ for s in seqs) == 4


def test_garbage_sends_malformed_forged_and_outsider_requests() -> None:
    fault = _fault("0=garbage:k=1")
    frames = [frame for _, frame in fault.start(0.0).sends]
    assert len(frames) == 4
    for junk in frames[:2]:
        with pytest.raises(WireError):
            decode_request(junk, frame_bytes_max=1 << 20)
    assert not _verifies(frames[2])  # a wrong signature
    assert _verifies(frames[3])  # an outsider's, validly signed
    assert fault.on_frame(0, Notice(1, 0, "no").to_frame(), 0.0).sends == []
    fault.on_frame(0, b"not a notice", 0.0)
    assert (fault.stats.notices, fault.stats.receipts) == (1, 1)


@pytest.mark.parametrize("behaviour", sorted(CLIENT_BEHAVIOURS))
def test_every_byzantine_client_is_survived_and_takes_effect(behaviour: str) -> None:
    for seed in (1, 2):
        config = SimConfig(n=4, seed=seed, messages=20, clients=3, client_requests=6,
                           client_faults=(parse_client_fault(f"0={behaviour}", 3),))
        result = simulate(config)
        assert result.ok, [str(v) for v in result.report.violations]
        assert result.complete
        for stats in result.client_statistics.values():  # the honest clients got through
            assert stats.receipts_valid == 6
        liar = result.client_faults[0]
        assert liar.done and liar.stats.sent > 0
        dropped = result.client_drops[0]
        if behaviour == "equivocate":
            assert dropped.get("duplicate", 0) > 0  # one of each pair delivered
        elif behaviour == "flood":
            assert dropped.get("beyond-window", 0) > 0
        elif behaviour == "replay":
            # a replay of a delivered request is answered, as a client asking again would
            # be, with its receipt again: to its own client, which knows it already
            late = sum(s.receipts_late for s in result.client_statistics.values())
            assert late > 0 and not dropped.get("duplicate", 0) > liar.stats.sent
        else:  # refused up front: garbage does not verify
            assert liar.stats.notices > 0


def test_garbage_outsiders_are_refused_only_when_the_cluster_lists_its_keys() -> None:
    def delivered_outsiders(open_clients: bool) -> int:
        config = SimConfig(n=4, seed=1, messages=10, clients=2, client_requests=4,
                           client_faults=(parse_client_fault("0=garbage:rounds=5", 2),),
                           open_clients=open_clients)
        result = simulate(config)
        assert result.ok and result.complete
        known = {info.key for info in result.logs.run.clients.values()}
        return sum(1 for r in result.logs.deliveries[1]
                   if r.origin == -1 and r.msg_id[1:65] not in known)

    assert delivered_outsiders(False) == 0
    assert delivered_outsiders(True) > 0
