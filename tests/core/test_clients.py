"""The client delivery rules: signatures and admission checked again, at most once, FIFO per
session within a window, sessions replacing each other, bounded state."""

from __future__ import annotations

import hashlib

from btob.core.clients import ClientAdmission, ClientLog
from btob.core.clientwire import ClientRequest, sign_request
from btob.crypto import KeyRegistry, Signer, SigningKey, Verifier

CLUSTER = b"test-cluster"
KEYS = [SigningKey.from_seed(hashlib.sha256(b"client-%d" % i).digest()) for i in range(3)]
SIGNERS = [Signer(k, cluster_id=CLUSTER) for k in KEYS]
PUBLIC = [s.public_key for s in SIGNERS]
VERIFIER = Verifier(KeyRegistry((PUBLIC[0],)), cluster_id=CLUSTER)


def frame(client: int, seq: int, session: int = 1, payload: bytes | None = None) -> bytes:
    request = ClientRequest(PUBLIC[client], session, seq, payload or b"p%d" % seq)
    return sign_request(request, SIGNERS[client].sign)


def log(**kw: object) -> ClientLog:
    options: dict[str, object] = dict(admission=ClientAdmission(open=True), window=4,
                                      tracked_max=10, frame_bytes_max=1024,
                                      verify=VERIFIER.verify_key)
    options.update(kw)
    return ClientLog(**options)  # type: ignore[arg-type]


def seqs(requests: list[ClientRequest]) -> list[int]:
    return [r.seq for r in requests]


def test_requests_are_delivered_once_in_seq_order_with_later_ones_held_back() -> None:
    clients = log()
    assert seqs(clients.offer(frame(0, 0))) == [0]
    assert seqs(clients.offer(frame(0, 2))) == []  # held: 1 is missing
    assert clients.early_held() == 1
    assert seqs(clients.offer(frame(0, 0))) == []  # a duplicate
    assert seqs(clients.offer(frame(0, 2))) == []  # a duplicate of a held one
    assert seqs(clients.offer(frame(0, 1))) == [1, 2]
    assert clients.early_held() == 0
    assert clients.next_seq(PUBLIC[0]) == (1, 3)
    assert clients.dropped == {"duplicate": 2}


def test_a_request_beyond_the_window_is_dropped() -> None:
    clients = log(window=4)
    assert seqs(clients.offer(frame(0, 3))) == []  # 0 + 4 - 1: the last place held
    assert seqs(clients.offer(frame(0, 4))) == []
    assert clients.dropped == {"beyond-window": 1}
    assert clients.early_held() == 1


def test_a_forged_or_unadmitted_or_malformed_request_is_never_delivered() -> None:
    clients = log(admission=ClientAdmission(keys=frozenset({PUBLIC[0]})))
    good = frame(0, 0)
    forged = good[:-1] + bytes([good[-1] ^ 1])  # the signature's last byte flipped
    assert clients.offer(forged) == []
    assert clients.offer(frame(1, 0)) == []  # a valid signature by a key not listed
    assert clients.offer(b"\x93garbage") == []
    assert clients.dropped == {"bad-signature": 1, "not-admitted": 1, "malformed": 1}
    assert seqs(clients.offer(good)) == [0]


def test_a_signature_made_for_another_cluster_does_not_verify() -> None:
    other = Signer(KEYS[0], cluster_id=b"other-cluster")
    request = ClientRequest(PUBLIC[0], 1, 0, b"x")
    assert log().offer(sign_request(request, other.sign)) == []


def test_a_higher_session_replaces_the_state_and_a_lower_one_is_stale() -> None:
    clients = log()
    assert seqs(clients.offer(frame(0, 0, session=5))) == [0]
    assert seqs(clients.offer(frame(0, 2, session=5))) == []  # held
    assert seqs(clients.offer(frame(0, 0, session=7))) == [0]  # the client restarted
    assert clients.early_held() == 0  # the old session's held request went with it
    assert clients.offer(frame(0, 1, session=5)) == []
    assert clients.dropped == {"stale-session": 1}
    assert clients.next_seq(PUBLIC[0]) == (7, 1)


def test_state_is_made_for_at_most_tracked_max_clients() -> None:
    clients = log(tracked_max=2)
    assert seqs(clients.offer(frame(0, 0))) == [0]
    assert seqs(clients.offer(frame(1, 0))) == [0]
    assert clients.offer(frame(2, 0)) == []
    assert clients.dropped == {"clients-full": 1}
    assert seqs(clients.offer(frame(1, 1))) == [1]  # known clients go on


def test_export_and_restore_continue_exactly_where_the_log_was() -> None:
    clients = log()
    clients.offer(frame(0, 0))
    clients.offer(frame(0, 2))
    clients.offer(frame(1, 0, session=3))
    rows = clients.export()
    again = log()
    again.restore(rows)
    assert again.export() == rows
    assert seqs(again.offer(frame(0, 1))) == [1, 2]
    assert again.offer(frame(1, 0, session=3)) == []  # still a duplicate after the restore


def test_a_request_held_for_hold_slots_skips_the_gap_below_it() -> None:
    clients = log(hold_slots=3)
    assert seqs(clients.offer(frame(0, 0), slot=1)) == [0]
    assert seqs(clients.offer(frame(0, 2), slot=2)) == []  # 1 never comes (given up)
    assert seqs(clients.offer(frame(0, 3), slot=3)) == []
    assert seqs(clients.slot_done(4)) == []  # held since slot 2: waits to slot 5
    assert seqs(clients.slot_done(5)) == [2, 3]  # the gap skipped, successors with it
    assert clients.dropped == {"gap-skipped": 1}
    assert seqs(clients.offer(frame(0, 1), slot=6)) == []  # too late: a duplicate now
    assert clients.next_seq(PUBLIC[0]) == (1, 4)
    assert clients.early_held() == 0 and clients.slot_done(100) == []


def test_gap_skips_are_the_same_after_a_restore_and_in_key_order() -> None:
    clients = log(hold_slots=2)
    clients.offer(frame(1, 1), slot=1)
    clients.offer(frame(0, 1), slot=1)
    rows = clients.export()
    assert [row[4] for row in rows] == [(1,), (1,)]  # the slots travel with the frames
    again = log(hold_slots=2)
    again.restore(rows)
    released = again.slot_done(3)
    assert [r.client for r in released] == sorted([PUBLIC[0], PUBLIC[1]])
    assert [r.client for r in clients.slot_done(3)] == [r.client for r in released]
