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
    router.members[0].submit_request(good, 0.0)
    router.advance(1.0)
    with pytest.raises(RequestRefused, match="delivered already"):
        router.members[1].submit_request(good, router.now)


def test_every_tampering_with_a_receipt_is_caught() -> None:
    keys, router = cluster()
    for seq in range(5):  # several requests in one batch: audit paths of some length
        router.members[0].submit_request(request_frame(keys, seq), router.now)
    router.advance(1.0)
    receipt = receipts(router.members[0])[-1]
    assert problem(keys, receipt) is None and receipt.path
    other = request_frame(keys, 9)
    flipped = bytes([receipt.path[0][0] ^ 1]) + receipt.path[0][1:]
    votes = receipt.certificate
    bad_vote = Vote(votes[0].member, bytes(64))
    tampered = {
        "another request": attrs.evolve(receipt, request=other),
        "a path step": attrs.evolve(receipt, path=(flipped, *receipt.path[1:])),
        "a short path": attrs.evolve(receipt, path=receipt.path[1:]),
        "another place": attrs.evolve(receipt, entry=receipt.payloads),
        "a payload's place": attrs.evolve(receipt, entry=0, payloads=0),
        "another batch": attrs.evolve(receipt, batch=len(receipt.refs)),
        "another slot": attrs.evolve(receipt, slot=receipt.slot + 1),
        "another view": attrs.evolve(receipt, view=receipt.view + 1),
        "too few votes": attrs.evolve(receipt, certificate=votes[:2]),
        "a repeated vote": attrs.evolve(receipt, certificate=(votes[0], votes[0], votes[1])),
        "a bad vote": attrs.evolve(receipt, certificate=(bad_vote, *votes[1:])),
    }
    for what, bad in tampered.items():
        assert problem(keys, bad) is not None, what
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
