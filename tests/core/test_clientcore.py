"""The client's sans-IO rules: fail-over, trying unserved members again, giving up at the
deadline, receipt acceptance without re-checking the client's own signature, replies from
f+1 members, and abandoning a request."""

from __future__ import annotations

import pytest

import btob.core.clientcore
from btob.core.clientcore import ClientCore, ClientOutput
from btob.core.clientwire import Notice, Receipt, Reply, SignedReply
from btob.core.quorum import Quorums
from btob.crypto import Signer, SigningKey

N = 4
SIGNER = Signer(SigningKey.from_seed(b"\x02" * 32), cluster_id=b"test")


def _core(*, verify_member: object = None, retry_s: float = 1.0,
          give_up_s: float = 10.0) -> ClientCore:
    return ClientCore(public_key=SIGNER.public_key, sign=SIGNER.sign, session=7, n=N,
                      quorums=Quorums.for_cluster(N), retry_s=retry_s, give_up_s=give_up_s,
                      verify_member=verify_member or (lambda *a: True),  # type: ignore[arg-type]
                      frame_bytes_max=1 << 20)


def _members(out: ClientOutput) -> list[int]:
    return [member for member, _, _ in out.sends]


def _receipt(frame: bytes, slot: int = 3) -> bytes:
    return Receipt(frame, 0, slot, (), (), 0, 0, 0, 1, 0, (), 9).to_frame()


def _reply(member: int, seq: int, result: bytes, *, session: int = 7) -> bytes:
    return SignedReply.create(member, Reply(SIGNER.public_key, session, seq, 5, result),
                              lambda kind, body: b"s" * 64).to_frame()


def test_after_every_member_was_tried_the_unreachable_ones_are_tried_again() -> None:
    core = _core()
    seq, out = core.request(b"p", 0.0)
    first = _members(out)[0]
    order = [(first + k) % N for k in range(N)]
    # Three members cannot be reached: each moves the request on at once.
    for k in range(3):
        out = core.unreachable(order[k], seq, "unreachable", 0.01 * k)
        assert _members(out) == [order[k + 1]]
    # The fourth took it but stays silent; now each member was tried, so nothing goes at once.
    assert core.on_frame(order[3], Notice(7, seq, "full").to_frame(), 0.05).sends == []
    # The timer sends it to the next member in turn and to every member that could not take it.
    out = core.on_timer(seq, 1.05)
    assert sorted(_members(out)) == sorted(set(order[:4]))
    assert core.on_timer(seq, 1.5).sends == []  # a stale timer: the next one is due at 2.05
    out = core.on_timer(seq, 2.05)
    assert _members(out) == [order[1]]  # nobody refused since: the next member in turn only
    assert core.statistics.failovers == 5 and core.statistics.sends == 9


def test_a_request_is_given_up_at_its_deadline_with_what_each_member_said() -> None:
    core = _core(retry_s=1.0, give_up_s=2.5)
    seq, out = core.request(b"p", 0.0)
    assert out.timers == [(1.0, seq)]
    member = _members(out)[0]
    out = core.unreachable(member, seq, "unreachable", 0.1)
    out = core.on_timer(seq, 2.0)
    assert out.timers == [(2.5, seq)]  # the deadline comes before the next retry
    out = core.on_timer(seq, 2.5)
    [outcome] = out.finished
    assert outcome.failure is not None and outcome.receipt is None
    assert f"member {member}: unreachable" in outcome.failure
    assert "no valid receipt within 2.5 s" in outcome.failure
    assert core.waiting == 0 and core.statistics.gave_up == 1
    assert core.on_timer(seq, 3.0).sends == []


def test_a_receipt_is_accepted_once_and_the_clients_own_signature_is_not_checked_again(
        monkeypatch: pytest.MonkeyPatch) -> None:
    core = _core()
    seq, out = core.request(b"p", 0.0)
    frame = out.sends[0][2]
    calls: list[bool] = []

    def judge(receipt: Receipt, **kwargs: object) -> str | None:
        verify_client = kwargs["verify_client"]
        calls.append(verify_client(SIGNER.public_key, "k", b"", b""))  # type: ignore[operator]
        calls.append(verify_client(b"\x09" * 32, "k", b"", b""))  # type: ignore[operator]
        return None if receipt.slot == 3 else "the certificate is short"

    monkeypatch.setattr(btob.core.clientcore, "receipt_problem", judge)
    out = core.on_frame(1, _receipt(frame, slot=4), 0.1)
    assert out.finished == [] and core.statistics.receipts_invalid == 1
    assert len(out.sends) == 1  # a bad receipt moves the request on at once
    out = core.on_frame(2, _receipt(frame), 0.2)
    [outcome] = out.finished
    assert (outcome.seq, outcome.member, outcome.frame) == (seq, 2, frame)
    assert outcome.receipt is not None and outcome.receipt.slot == 3
    assert calls == [True, False, True, False]  # its own key only
    core.on_frame(3, _receipt(frame), 0.3)
    assert core.statistics.receipts_late == 1 and core.statistics.receipts_valid == 1
    core.on_frame(3, _receipt(b"never sent"), 0.3)
    assert core.statistics.receipts_invalid == 2


def test_a_result_needs_f_plus_1_matching_validly_signed_replies() -> None:
    valid = {0, 1, 2}  # member 3's replies carry bad signatures
    core = _core(verify_member=lambda member, kind, body, sig: member in valid)
    seq, _ = core.request(b"get", 0.0, wants_result=True)
    assert core.on_frame(3, _reply(3, seq, b"lie"), 0.1).finished == []
    assert core.statistics.replies_invalid == 1
    assert core.on_frame(0, _reply(1, seq, b"ok"), 0.1).finished == []  # signer != link
    assert core.on_frame(0, _reply(0, seq, b"ok", session=8), 0.1).finished == []
    assert core.on_frame(0, _reply(0, seq, b"ok"), 0.1).finished == []
    out = core.on_frame(1, _reply(1, seq, b"other"), 0.2)
    assert out.finished == [] and len(out.sends) == 1  # disagreement: ask one more member
    out = core.on_frame(2, _reply(2, seq, b"ok"), 0.3)
    [outcome] = out.finished
    assert outcome.result == b"ok" and outcome.failure is None
    assert core.statistics.replies == 3


def test_an_abandoned_request_stops_and_its_receipts_count_as_late() -> None:
    core = _core()
    seq, out = core.request(b"p", 0.0)
    core.abandon(seq)
    assert core.waiting == 0 and core.on_timer(seq, 5.0).sends == []
    core.on_frame(0, _receipt(out.sends[0][2]), 0.1)
    assert core.statistics.receipts_late == 1
