"""Simulated honest clients: requests, fail-over, give-up, and what receipts they accept."""

from __future__ import annotations

import random

import pytest

import btob.core.clientcore
from btob.core.clientwire import Notice, Receipt, decode_request
from btob.core.quorum import Quorums
from btob.crypto import Signer, SigningKey
from btob.faults._clients import ClientActions
from btob.sim.clients import SimClient, client_msg_id
from btob.sim.simulator import SimConfig, simulate

N = 4


def _client(*, in_flight: int = 1, requests: int = 3, give_up_s: float = 5.0) -> SimClient:
    signer = Signer(SigningKey.from_seed(b"\x01" * 32), cluster_id=b"test")
    return SimClient(0, public_key=signer.public_key, sign=signer.sign, n=N,
                     quorums=Quorums.for_cluster(N), requests=requests, in_flight=in_flight,
                     payload_size=20, retry_s=0.3, give_up_s=give_up_s,
                     rng=random.Random(1), verify_member=lambda *a: True,
                     frame_bytes_max=1 << 20)


def _receipt(frame: bytes, slot: int = 3) -> bytes:
    return Receipt(frame, 0, slot, (), (), 0, 0, 0, 1, 0, (), 9).to_frame()


def _seqs(out: ClientActions) -> list[int]:
    return [decode_request(frame, frame_bytes_max=1 << 20)[0].seq for _, frame in out.sends]


def test_it_keeps_in_flight_requests_waiting_each_at_its_own_member() -> None:
    client = _client(in_flight=2)
    out = client.start(0.0)
    assert _seqs(out) == [0, 1]
    members = [m for m, _ in out.sends]
    assert members[1] == (members[0] + 1) % N  # (first + seq) % n
    assert [at for at, _ in out.timers] == [0.3, 0.3]
    assert [r.msg_id for r in client.broadcasts] == [
        client_msg_id(client.public_key, 1, seq) for seq in (0, 1)]
    assert not client.done


def test_a_timeout_or_a_notice_tries_the_next_member() -> None:
    client = _client()
    first = client.start(0.0).sends[0][0]
    assert client.on_timer(0, 0.1).sends == []  # not due yet
    retry = client.on_timer(0, 0.3)
    assert [m for m, _ in retry.sends] == [(first + 1) % N]
    notice = Notice(1, 0, "busy").to_frame()
    again = client.on_frame((first + 1) % N, notice, 0.35)
    assert [m for m, _ in again.sends] == [(first + 2) % N]
    assert client.statistics.failovers == 2 and client.statistics.notices == 1
    client.on_frame(0, notice, 0.36)  # the fourth member: each was tried once now
    assert client.on_frame(0, notice, 0.37).sends == []  # so the timer paces it
    assert client.on_frame(0, Notice(2, 0, "another session").to_frame(), 0.4).sends == []


def test_it_gives_a_request_up_and_goes_on() -> None:
    client = _client(requests=2, give_up_s=1.0)
    client.start(0.0)
    at = 0.0
    while client.statistics.gave_up == 0:
        at += 0.3
        out = client.on_timer(0, at)
    assert at >= 1.0 and _seqs(out) == [1]
    assert client.receipts == []


def test_it_accepts_only_a_receipt_that_proves_its_own_request(
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(requests=2)
    frame = client.start(0.0).sends[0][1]
    problems: list[str | None] = ["the audit path does not lead to the batch digest"]
    monkeypatch.setattr(btob.core.clientcore, "receipt_problem", lambda *a, **k: problems[0])
    refused = client.on_frame(1, _receipt(frame), 0.1)
    assert client.statistics.receipts_invalid == 1 and len(refused.sends) == 1  # fails over
    problems[0] = None
    assert client.on_frame(1, _receipt(b"another request"), 0.1).sends == []
    assert client.statistics.receipts_invalid == 2
    assert client.on_frame(1, b"\x00garbage", 0.1).sends == []
    assert client.statistics.receipts_invalid == 3
    accepted = client.on_frame(2, _receipt(frame, slot=7), 0.2)
    assert _seqs(accepted) == [1]  # the next request goes out
    assert [(r.msg_id, r.slot, r.index, r.member) for r in client.receipts] == [
        (client_msg_id(client.public_key, 1, 0), 7, 9, 2)]
    assert client.accepted_frames == [frame]
    client.on_frame(3, _receipt(frame), 0.3)
    assert client.statistics.receipts_late == 1 and client.statistics.receipts_valid == 1


def test_honest_clients_in_a_run_get_a_verified_receipt_for_every_request() -> None:
    result = simulate(SimConfig(n=4, seed=3, messages=20, clients=3, client_requests=8))
    assert result.ok and result.complete
    for stats in result.client_statistics.values():
        assert stats.receipts_valid == 8 and stats.receipts_invalid == stats.gave_up == 0
    assert all(len(r) == 8 for r in result.logs.receipts.values())
