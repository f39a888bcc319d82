"""Client REQUESTs through a cluster of members, and the receipts that prove their order:
valid ones verify offline, and every kind of tampering is caught."""

from __future__ import annotations

import hashlib

import attrs
import pytest

from btob import Member, Quorums, WireError
from btob.core.clients import ClientAdmission
from btob.core.clientwire import (
    ClientRequest,
    Notice,
    Receipt,
    decode_client_frame,
    decode_request,
    receipt_problem,
    sign_request,
)
from btob.core.member import RequestRefused
from btob.core.wire import Vote
from btob.crypto import Signer, SigningKey
from tests.helpers import Keys, Router

CLIENT = SigningKey.from_seed(hashlib.sha256(b"a client").digest())


def signer(cluster_id: bytes) -> Signer:
    return Signer(CLIENT, cluster_id=cluster_id)


def request_frame(keys: Keys, seq: int, payload: bytes = b"", session: int = 1) -> bytes:
    s = signer(keys.cluster_id)
    return sign_request(ClientRequest(s.public_key, session, seq, payload or b"r%d" % seq),
                        s.sign)


def cluster(n: int = 4, **admission: object) -> tuple[Keys, Router]:
    keys = Keys(n)
    allowed = ClientAdmission(**admission) if admission else ClientAdmission(open=True)

    def make(**kw: object) -> Member:
        return Member(clients=allowed, **kw)  # type: ignore[arg-type]

    return keys, Router(keys, member_factory=make)


def receipts(member: Member) -> list[Receipt]:
    out = []
    for client, frame in member.take_client_outputs():
        assert client == signer(b"test-cluster").public_key
        decoded = decode_client_frame(frame, frame_bytes_max=1 << 20)
        assert isinstance(decoded, Receipt)
        out.append(decoded)
    return out


def problem(keys: Keys, receipt: Receipt, n: int = 4) -> str | None:
    verifier = keys.verifier()
    return receipt_problem(receipt, quorums=Quorums.for_cluster(n), verify_member=verifier.verify,
                           verify_client=verifier.verify_key, frame_bytes_max=1 << 20)


def test_a_request_is_delivered_everywhere_and_its_receipt_verifies_offline() -> None:
    keys, router = cluster()
    for seq in range(3):
        router.members[0].submit_request(request_frame(keys, seq), router.now)
    router.members[0].submit(b"a member's own", router.now)
    router.advance(1.0)
    client_ids = [m for m, _ in router.delivered[2] if m.startswith("c")]
    assert len(client_ids) == 3 and all(router.delivered[i] == router.delivered[2]
                                        for i in range(4))
    got = receipts(router.members[0])
    assert sorted(decode_request(r.request, frame_bytes_max=1 << 20)[0].seq for r in got) \
        == [0, 1, 2]
    for receipt in got:
        assert problem(keys, receipt) is None
        # the index the member reports is the request's place in everybody's order
        request = decode_request(receipt.request, frame_bytes_max=1 << 20)[0]
        assert router.delivered[3][receipt.index][1] == request.payload
    assert receipts(router.members[1]) == []  # nobody asked member 1


def test_deliveries_say_which_client_and_which_relay_and_slot() -> None:
    keys, router = cluster()
    router.members[1].submit_request(request_frame(keys, 0, b"hello"), router.now)
    router.advance(1.0)
    (delivery,) = [d for d in router.deliveries[3] if d.client]
    assert delivery.client == signer(keys.cluster_id).public_key
    assert (delivery.origin, delivery.relay, delivery.payload) == (-1, 1, b"hello")
    assert (delivery.msg_id.session, delivery.msg_id.counter) == (1, 0)
    assert delivery.slot >= 0
    (receipt,) = receipts(router.members[1])
    assert receipt.slot == delivery.slot and receipt.index == delivery.index


def test_a_request_sent_to_two_members_is_delivered_once_and_both_send_receipts() -> None:
    keys, router = cluster()
    frame = request_frame(keys, 0)
    router.members[0].submit_request(frame, router.now)
    router.members[1].submit_request(frame, router.now)
    router.members[1].submit_request(frame, router.now)  # a retransmission: taken once
    router.advance(1.0)
    assert [m for m, _ in router.delivered[2] if m.startswith("c")] == \
        [f"c{signer(keys.cluster_id).public_key.hex()}.1:0"]
    first, second = receipts(router.members[0]), receipts(router.members[1])
    assert len(first) == len(second) == 1
    assert first[0].slot == second[0].slot and problem(keys, second[0]) is None


def test_a_member_refuses_bad_requests_with_the_reason() -> None:
    keys, router = cluster(keys=frozenset())  # no client admitted
    with pytest.raises(RequestRefused, match="not admitted"):
        router.members[0].submit_request(request_frame(keys, 0), 0.0)
    keys, router = cluster()
    good = request_frame(keys, 0)
    with pytest.raises(RequestRefused, match="signature"):
        router.members[0].submit_request(good[:-1] + bytes([good[-1] ^ 1]), 0.0)
    with pytest.raises(RequestRefused, match="malformed"):
        router.members[0].submit_request(b"\x01\x02", 0.0)
    with pytest.raises(RequestRefused, match="exceeds"):
        router.members[0].submit_request(request_frame(keys, 0, b"x" * (70 * 1024)), 0.0)
    router.members[0].submit_request(request_frame(keys, 0, session=5), 0.0)
    router.advance(1.0)
    with pytest.raises(RequestRefused, match="session is over"):
        router.members[1].submit_request(good, router.now)  # session 1 < 5


def test_a_member_asked_after_the_delivery_rebuilds_the_receipt_from_its_log() -> None:
    keys, router = cluster()
    frames = [request_frame(keys, seq) for seq in range(3)]
    router.members[0].submit_request(frames[0], router.now)
    router.members[0].submit_request(frames[2], router.now)  # held until 1 commits
    router.advance(0.5)
    router.members[0].submit_request(frames[1], router.now)
    router.advance(0.5)
    first = {r.request: r for r in receipts(router.members[0])}
    assert set(first) == set(frames)
    assert first[frames[2]].slot < first[frames[1]].slot  # committed before it, delivered after
    for frame in frames:  # member 2 was never asked; now it is, after the delivery
        router.members[2].submit_request(frame, router.now)
    again = {r.request: r for r in receipts(router.members[2])}
    assert again == first
    assert all(problem(keys, r) is None for r in again.values())


def test_every_tampering_with_a_receipt_is_caught() -> None:
    keys, router = cluster()
    for seq in range(5):  # several requests in one batch: audit paths of some length
        router.members[0].submit_request(request_frame(keys, seq), router.now)
    router.advance(1.0)
    # one whose request has a sibling request in its batch (the same audit path length)
    receipt = next(r for r in receipts(router.members[0])
                   if r.path and r.payloads <= r.entry ^ 1 < r.entries)
    assert problem(keys, receipt) is None
    other = request_frame(keys, 9)
    flipped = bytes([receipt.path[0][0] ^ 1]) + receipt.path[0][1:]
    votes = receipt.certificate
    bad_vote = Vote(votes[0].member, bytes(64))
    tampered = {
        "another request": (attrs.evolve(receipt, request=other), "does not lead"),
        "a forged request": (attrs.evolve(receipt, request=other[:-1] + b"\0"),
                             "signature does not verify under its client key"),
        "a malformed request": (attrs.evolve(receipt, request=b"\x90"), "request is malformed"),
        "a path step": (attrs.evolve(receipt, path=(flipped, *receipt.path[1:])),
                        "does not lead to the batch digest"),
        "a short path": (attrs.evolve(receipt, path=receipt.path[1:]), "wrong length"),
        "another place": (attrs.evolve(receipt, entry=receipt.entry ^ 1), "does not lead"),
        "a payload's place": (attrs.evolve(receipt, entry=0, payloads=1), "not among"),
        "past the last entry": (attrs.evolve(receipt, entry=receipt.entries), "not among"),
        "another batch": (attrs.evolve(receipt, batch=len(receipt.refs)), "not one of"),
        "another slot": (attrs.evolve(receipt, slot=receipt.slot + 1), "does not verify"),
        "another view": (attrs.evolve(receipt, view=receipt.view + 1), "does not verify"),
        "too few votes": (attrs.evolve(receipt, certificate=votes[:2]), "has 2 votes"),
        "a repeated vote": (attrs.evolve(receipt, certificate=(votes[0], votes[0], votes[1])),
                            "repeats"),
        "an unknown member": (attrs.evolve(receipt, certificate=(Vote(4, votes[0].signature),
                                                                 *votes)), "unknown member"),
        "a bad vote": (attrs.evolve(receipt, certificate=(bad_vote, *votes[1:])),
                       f"member {bad_vote.member}'s commit vote does not verify"),
    }
    for what, (bad, reason) in tampered.items():
        found = problem(keys, bad)
        assert found is not None and reason in found, (what, found)
    # a receipt of another cluster (same keys, other cluster id) does not verify here
    assert problem(Keys(4, cluster_id=b"another-cluster"), receipt) is not None


def test_receipt_and_notice_frames_round_trip_and_garbage_is_refused() -> None:
    keys, router = cluster()
    router.members[0].submit_request(request_frame(keys, 0), router.now)
    router.advance(1.0)
    receipt = receipts(router.members[0])[0]
    assert decode_client_frame(receipt.to_frame(), frame_bytes_max=1 << 20) == receipt
    notice = Notice(1, 2, "full")
    assert decode_client_frame(notice.to_frame(), frame_bytes_max=1 << 20) == notice
    for garbage in (b"", b"\x90", b"\x92\x03\x07", receipt.to_frame()[:-3]):
        with pytest.raises(WireError):
            decode_client_frame(garbage, frame_bytes_max=1 << 20)


def test_a_snapshot_holds_the_client_sessions() -> None:
    keys, router = cluster()
    # one request per slot: 20 slots cross the checkpoint boundary at 16
    for seq in range(20):
        router.members[0].submit_request(request_frame(keys, seq), router.now)
        router.advance(0.1)
    snapshot = router.members[2].snapshot
    assert snapshot is not None
    from btob.core.snapshot import MemberState
    state = MemberState.decode(snapshot.state, bytes_max=1 << 24)
    assert [(c.session, c.next_seq) for c in state.clients] == [(1, state.clients[0].next_seq)]
    assert state.clients[0].next_seq > 0


def test_a_request_frame_is_decoded_strictly() -> None:
    from btob.core.codec import pack

    keys = Keys(4)
    frame = request_frame(keys, 3, b"x")
    request, body, signature = decode_request(frame, frame_bytes_max=1024)
    assert (request.seq, request.payload, len(signature)) == (3, b"x", 64)
    version, code = 3, 50
    bad = {
        "an extra field": pack((version, code, body, signature, b"")),
        "a float version": pack((3.0, code, body, signature)),
        "an old version": pack((2, code, body, signature)),
        "another code": pack((version, 51, body, signature)),
        "a short signature": pack((version, code, body, signature[:63])),
        "a body not bytes": pack((version, code, 7, signature)),
        "a short key": pack((version, code, pack((b"k" * 31, 1, 3, b"x")), signature)),
    }
    for what, data in bad.items():
        with pytest.raises(WireError):
            decode_request(data, frame_bytes_max=1024)
        assert what


def test_replies_are_signed_by_their_member_and_their_frames_round_trip() -> None:
    from btob.core.clientwire import REPLY_KIND, Reply, SignedReply

    keys = Keys(4)
    reply = Reply(b"c" * 32, 5, 7, 42, b"result")
    signed = SignedReply.create(2, reply, keys.signers[2].sign)
    verifier = keys.verifier()
    assert verifier.verify(2, REPLY_KIND, signed.body, signed.signature)
    assert not verifier.verify(1, REPLY_KIND, signed.body, signed.signature)
    assert signed.body == reply.to_body()
    decoded = decode_client_frame(signed.to_frame(), frame_bytes_max=1024)
    assert decoded == signed
    for garbage in (signed.to_frame()[:-2], b"\x95\x03\x35\x02\xc4\x01x\xc4\x01y",
                    b"\x94\x03\x35\x02\xc4\x01x"):
        with pytest.raises(WireError):
            decode_client_frame(garbage, frame_bytes_max=1024)


def test_notice_frames_are_bounded_and_checked() -> None:
    from btob.core.codec import pack

    long = Notice(1, 2, "x" * 500)
    decoded = decode_client_frame(long.to_frame(), frame_bytes_max=1024)
    assert isinstance(decoded, Notice) and decoded.reason == "x" * 200  # cut, not refused
    cut = decode_client_frame(Notice(1, 2, "a" + "\u00e9" * 150).to_frame(), frame_bytes_max=1024)
    assert isinstance(cut, Notice) and cut.reason == "a" + "\u00e9" * 99 + "\ufffd"
    for data in (pack((3, 52, 1, 2, b"x" * 201)), pack((3, 52, 1, 2)), pack((3, 52, -1, 2, b"")),
                 pack((3, 52, 1, 2, "text")), pack((2, 52, 1, 2, b"")), pack((3, 99, 1)),
                 pack((3,))):
        with pytest.raises(WireError):
            decode_client_frame(data, frame_bytes_max=1024)
