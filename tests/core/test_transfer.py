"""State transfer: chunks fetched from peers and verified against a certified root, failover
from silent peers, Byzantine servers marked and skipped, stale answers refused, memory bound."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from btob.core import transfer as transfer_module
from btob.core.durable import Snapshot
from btob.core.effects import Outbox
from btob.core.merkle import MerkleTree, chunks_of, merkle_proof, merkle_root, verify_chunk
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.transfer import ChunkServer, StateTransfer
from btob.core.wire import CheckpointCert, Chunk, ChunkRequest

CB = 16  # chunk bytes
SETTINGS = Settings(snapshot_chunk_bytes=CB, snapshot_bytes_max=64 * CB,
                    transfer_chunks_in_flight=4, retransmit_interval_s=0.25)
N = 4
QUORUMS = Quorums.for_cluster(N)
UPTO, OLD = 32, 16
ME = 0

Peer = Callable[[ChunkRequest], Chunk | None]


def _state(count: int, seed: int = 1) -> bytes:
    """A state of exactly ``count`` chunks (the last one shorter)."""
    size = (count - 1) * CB + 7
    return bytes((seed * 31 + i * 7) % 251 for i in range(size))


STATE = _state(10)
OLD_STATE = _state(6, seed=2)


def _root(state: bytes) -> bytes:
    return merkle_root(chunks_of(state, CB))


def _transfer(settings: Settings = SETTINGS) -> tuple[StateTransfer, Outbox]:
    outbox = Outbox()
    return StateTransfer(member=ME, quorums=QUORUMS, settings=settings, outbox=outbox), outbox


def _honest(state: bytes = STATE, upto: int = UPTO) -> Peer:
    server = ChunkServer(settings=SETTINGS, outbox=Outbox())
    return lambda request: server.serve(request, upto, state)


def _silent(request: ChunkRequest) -> Chunk | None:
    return None


def _flipped(request: ChunkRequest) -> Chunk | None:
    chunk = _honest()(request)
    assert chunk is not None
    data = bytes([chunk.data[0] ^ 0xFF]) + chunk.data[1:]
    return attrs.evolve(chunk, data=data)


def _older(request: ChunkRequest) -> Chunk | None:
    """A valid chunk of this peer's older snapshot, whatever upto was asked for."""
    return _honest(OLD_STATE, OLD)(ChunkRequest(OLD, request.index % 6))


@attrs.define
class Run:
    """What a driven transfer did."""

    state: bytes | None
    now: float
    asked: list[tuple[int, int]]
    """(peer, index) of every request as it was issued; (-1, -1) marks each refused chunk
    (before the requests its refusal issued)."""
    answered_by: list[int]
    """The sender of every chunk kept."""
    held_max: int
    in_flight_max: int


def _drive(transfer: StateTransfer, outbox: Outbox, peers: dict[int, Peer], *,
           until: float = 10.0, step: float = 0.05) -> Run:
    """Deliver requests to the peers and their answers back, ticking as time passes."""
    run = Run(None, 0.0, [], [], 0, transfer.in_flight())
    pending: list[tuple[int, ChunkRequest]] = []

    def issued(refused: bool = False) -> None:
        if refused:
            run.asked.append((-1, -1))
        for dest, item in outbox.sends:
            assert isinstance(item, ChunkRequest) and dest is not None
            run.asked.append((dest, item.index))
            pending.append((dest, item))
        outbox.sends = []
        run.held_max = max(run.held_max, transfer.held())
        run.in_flight_max = max(run.in_flight_max, transfer.in_flight())

    issued()
    now = 0.0
    rounds = 0
    while now < until:
        rounds += 1
        assert rounds < 10_000, "requests and answers without end at one instant"
        batch, pending[:] = list(pending), []
        for dest, request in batch:
            answer = peers[dest](request)
            if answer is None:
                continue
            before = transfer.statistics()
            state = transfer.on_chunk(dest, answer, now)
            after = transfer.statistics()
            refused = after.chunks_bad > before.chunks_bad
            if after.chunks_received > before.chunks_received:
                run.answered_by.append(dest)
            issued(refused)
            if state is not None:
                run.state, run.now = state, now
                return run
        if not pending:
            now += step
            transfer.tick(now)
            issued()
    run.now = now
    return run


def _asked_after_first_refusal(run: Run, peer: int) -> list[int]:
    first = run.asked.index((-1, -1))
    return [index for dest, index in run.asked[first:] if dest == peer]


# -- the happy path ---------------------------------------------------------------------------


@pytest.mark.parametrize("known", [True, False], ids=["count-given", "count-learnt"])
def test_a_state_of_several_chunks_is_fetched_from_every_peer(known: bool) -> None:
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), 10 if known else None, None, 0.0)
    run = _drive(transfer, outbox, {1: _honest(), 2: _honest(), 3: _honest()})
    assert run.state == STATE and run.now == 0.0  # no timeout was needed
    stats = transfer.statistics()
    assert (stats.completed, stats.chunks_received, stats.chunks_bad, stats.failovers) == \
        (1, 10, 0, 0)
    assert stats.requests_sent == 10
    assert {dest for dest, _ in run.asked} == {1, 2, 3}  # the load is spread
    assert run.in_flight_max <= SETTINGS.transfer_chunks_in_flight
    assert not transfer.active and transfer.held() == 0  # nothing kept once handed out


def test_default_peers_are_every_other_member_in_ring_order_after_this_one() -> None:
    outbox = Outbox()
    transfer = StateTransfer(member=2, quorums=QUORUMS, settings=SETTINGS, outbox=outbox)
    assert transfer.start(UPTO, _root(STATE), 10, None, 0.0)
    assert [dest for dest, _ in outbox.sends] == [3, 0, 1, 3]
    assert all(item == ChunkRequest(UPTO, i) for i, (_, item) in enumerate(outbox.sends))


def test_own_id_and_repeats_are_left_out_of_the_peers() -> None:
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), 10, [ME, 2, 2, ME], 0.0)
    assert {dest for dest, _ in outbox.sends} == {2}


@pytest.mark.parametrize("count", [1, 2, 3, 5, 17])
@pytest.mark.parametrize("known", [True, False], ids=["count-given", "count-learnt"])
def test_odd_numbers_of_chunks(count: int, known: bool) -> None:
    state = _state(count, seed=count)
    assert len(chunks_of(state, CB)) == count
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(state), count if known else None, [1, 2], 0.0)
    run = _drive(transfer, outbox, {1: _honest(state), 2: _honest(state)})
    assert run.state == state
    assert transfer.statistics().chunks_received == count


def test_the_empty_state_is_one_empty_chunk() -> None:
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(b""), None, [1], 0.0)
    run = _drive(transfer, outbox, {1: _honest(b"")})
    assert run.state is not None and run.state == b""  # empty, not "not yet"
    assert run.asked == [(1, 0)]


def test_a_state_of_exactly_whole_chunks() -> None:
    state = bytes(range(3 * CB))
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(state), 3, [1], 0.0)
    assert _drive(transfer, outbox, {1: _honest(state)}).state == state


# -- Byzantine servers ------------------------------------------------------------------------


def test_a_peer_serving_flipped_bytes_is_marked_skipped_and_the_rest_completes() -> None:
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), None, [1, 2, 3], 0.0)
    run = _drive(transfer, outbox, {1: _flipped, 2: _honest(), 3: _honest()})
    assert run.state == STATE and run.now == 0.0  # what it owed was asked of others at once
    stats = transfer.statistics()
    assert stats.peers_marked_bad == 1
    assert stats.chunks_bad == outbox.dropped["chunk-bad-proof"] >= 1
    assert _asked_after_first_refusal(run, 1) == []  # never asked again
    assert 1 not in run.answered_by


def _bad_data_length(chunk: Chunk) -> Chunk:
    return attrs.evolve(chunk, data=chunk.data + bytes(CB))


@pytest.mark.parametrize(("corrupt", "reason"), [
    (lambda c: attrs.evolve(c, proof=(bytes(32), *c.proof[1:])), "chunk-bad-proof"),
    (lambda c: attrs.evolve(c, proof=c.proof[:-1]), "chunk-bad-proof"),
    (lambda c: attrs.evolve(c, proof=(*c.proof, bytes(32))), "chunk-bad-proof"),
    (lambda c: attrs.evolve(c, index=(c.index + 1) % 10), "chunk-bad-proof"),
    (_bad_data_length, "chunk-bad-proof"),
    (lambda c: attrs.evolve(c, root=bytes(32)), "chunk-bad-root"),
    (lambda c: attrs.evolve(c, count=c.count + 1), "chunk-bad-root"),
], ids=["proof-flipped", "proof-short", "proof-long", "wrong-index", "data-too-long",
        "wrong-root", "wrong-count"])
def test_every_kind_of_bad_chunk_marks_its_sender(corrupt: Callable[[Chunk], Chunk],
                                                  reason: str) -> None:
    def liar(request: ChunkRequest) -> Chunk | None:
        chunk = _honest()(request)
        assert chunk is not None
        return corrupt(chunk)

    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), 10, [1, 2], 0.0)
    run = _drive(transfer, outbox, {1: liar, 2: _honest()})
    assert run.state == STATE
    assert outbox.dropped[reason] >= 1 and transfer.statistics().peers_marked_bad == 1
    assert _asked_after_first_refusal(run, 1) == []


def test_a_wrong_count_learnt_from_nobody_fails_verification() -> None:
    """A count claimed by a chunk is believed only if the chunk verifies with it."""
    def claims_more(request: ChunkRequest) -> Chunk | None:
        chunk = _honest()(request)
        assert chunk is not None
        return attrs.evolve(chunk, count=chunk.count * 4)

    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), None, [1, 2], 0.0)
    run = _drive(transfer, outbox, {1: claims_more, 2: _honest()})
    assert run.state == STATE and outbox.dropped["chunk-bad-proof"] >= 1
    assert transfer.statistics().peers_marked_bad == 1


def test_a_valid_chunk_of_an_older_snapshot_is_stale_and_refused() -> None:
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), None, [1, 2], 0.0)
    run = _drive(transfer, outbox, {1: _older, 2: _honest()})
    assert run.state == STATE
    assert outbox.dropped["chunk-stale"] >= 1
    stats = transfer.statistics()
    assert stats.peers_marked_bad == 0  # an honest peer may answer an old request late
    assert stats.failovers >= 1  # its request went unanswered, then to peer 2
    assert 1 not in run.answered_by


def test_an_older_snapshot_relabelled_with_the_current_upto_marks_its_sender() -> None:
    def relabelled(request: ChunkRequest) -> Chunk | None:
        chunk = _older(request)
        assert chunk is not None
        return attrs.evolve(chunk, upto=request.upto)

    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), None, [1, 2], 0.0)
    run = _drive(transfer, outbox, {1: relabelled, 2: _honest()})
    assert run.state == STATE and outbox.dropped["chunk-bad-root"] >= 1
    assert transfer.statistics().peers_marked_bad == 1


def test_a_transfer_with_byzantine_peers_only_keeps_asking_them_all() -> None:
    """Every peer marked bad (only a wrong root can do that to honest ones): the marks are
    cleared and everyone is asked again, the transfer never gives up on its own."""
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, bytes(32), None, [1, 2], 0.0)  # a root nobody serves
    run = _drive(transfer, outbox, {1: _honest(), 2: _honest()}, until=1.0)
    assert run.state is None and transfer.active
    stats = transfer.statistics()
    assert stats.rounds >= 2 and outbox.dropped["transfer-all-peers-bad"] == stats.rounds
    assert stats.chunks_bad >= 4 and transfer.held() == 0
    assert {dest for dest, _ in run.asked[-6:]} == {-1, 1, 2}  # still asking both
    transfer.abandon()
    assert not transfer.active and transfer.in_flight() == 0


# -- silence and failover ---------------------------------------------------------------------


def test_a_silent_peer_is_failed_over_after_the_retransmit_interval() -> None:
    transfer, outbox = _transfer(attrs.evolve(SETTINGS, transfer_chunks_in_flight=1))
    state = _state(1)
    assert transfer.start(UPTO, _root(state), 1, [1, 2], 0.0)
    assert outbox.sends == [(1, ChunkRequest(UPTO, 0))]
    outbox.sends.clear()
    transfer.tick(0.24)
    assert outbox.sends == []  # not yet late
    transfer.tick(0.25)
    assert outbox.sends == [(2, ChunkRequest(UPTO, 0))]
    chunk = _honest(state)(ChunkRequest(UPTO, 0))
    assert chunk is not None
    assert transfer.on_chunk(2, chunk, 0.3) == state
    assert transfer.statistics().failovers == 1


def test_all_chunks_come_from_the_one_answering_peer_while_the_others_are_silent() -> None:
    state = _state(17)
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(state), None, [1, 2, 3], 0.0)
    run = _drive(transfer, outbox, {1: _silent, 2: _honest(state), 3: _silent})
    assert run.state == state
    assert set(run.answered_by) == {2} and len(run.answered_by) == 17
    stats = transfer.statistics()
    # Silent peers are avoided once they let a request lapse: they cost one interval, not
    # one per chunk.
    assert stats.failovers <= 2 * SETTINGS.transfer_chunks_in_flight
    assert run.now < 3 * SETTINGS.retransmit_interval_s
    assert stats.peers_marked_bad == 0


def test_a_peer_that_answers_late_is_asked_again_in_its_turn() -> None:
    transfer, outbox = _transfer(attrs.evolve(SETTINGS, transfer_chunks_in_flight=1))
    assert transfer.start(UPTO, _root(STATE), 10, [1, 2, 3], 0.0)
    transfer.tick(0.25)  # peer 1 is late: chunk 0 is asked of peer 2
    serve = _honest()
    for index, sender in ((0, 1), (1, 3)):  # then peer 1's answer comes after all
        chunk = serve(ChunkRequest(UPTO, index))
        assert chunk is not None
        transfer.on_chunk(sender, chunk, 0.3)
    assert [dest for dest, _ in outbox.sends] == [1, 2, 3, 1]
    assert transfer.held() == 2 * CB and transfer.statistics().failovers == 1


def test_silent_peers_are_asked_again_once_every_peer_was_silent() -> None:
    transfer, outbox = _transfer(attrs.evolve(SETTINGS, transfer_chunks_in_flight=1))
    assert transfer.start(UPTO, _root(STATE), 10, [1, 2], 0.0)
    late = {1: _silent, 2: _silent}
    run = _drive(transfer, outbox, late, until=1.2)  # both silent for a while
    assert run.state is None and transfer.statistics().rounds >= 1
    assert [dest for dest, _ in run.asked][:4] == [1, 2, 1, 2]
    run = _drive(transfer, outbox, {1: _silent, 2: _honest()})
    assert run.state == STATE


# -- bounds and bookkeeping -------------------------------------------------------------------


def test_an_oversized_count_is_refused_before_anything_is_asked() -> None:
    transfer, outbox = _transfer()
    chunks_max = SETTINGS.snapshot_bytes_max // CB
    assert not transfer.start(UPTO, _root(STATE), chunks_max + 1, [1, 2], 0.0)
    assert not transfer.active and outbox.sends == []
    assert transfer.statistics().refused == 1 and outbox.dropped["transfer-refused"] == 1
    assert transfer.start(UPTO, _root(STATE), chunks_max, [1, 2], 0.0)  # the edge is fine


def test_a_certified_state_too_large_is_refused_on_its_first_verified_chunk() -> None:
    settings = attrs.evolve(SETTINGS, snapshot_bytes_max=8 * CB)
    transfer, outbox = _transfer(settings)
    big = _state(9)
    assert transfer.start(UPTO, _root(big), None, [1, 2], 0.0)
    run = _drive(transfer, outbox, {1: _honest(big), 2: _honest(big)}, until=0.5)
    assert run.state is None and not transfer.active
    assert outbox.dropped["snapshot-too-large"] == 1 and transfer.statistics().refused == 1
    assert run.held_max == 0 and transfer.statistics().peers_marked_bad == 0


def test_memory_stays_within_the_snapshot_bound() -> None:
    state = _state(64)  # as large as SETTINGS allows
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(state), None, [1, 2, 3], 0.0)
    run = _drive(transfer, outbox, {1: _flipped, 2: _honest(state), 3: _honest(state)})
    assert run.state == state
    assert run.held_max <= SETTINGS.snapshot_bytes_max
    assert run.held_max == len(state) - len(chunks_of(state, CB)[-1])  # all but the last


def test_duplicates_are_ignored_and_unsolicited_valid_chunks_kept() -> None:
    transfer, outbox = _transfer(attrs.evolve(SETTINGS, transfer_chunks_in_flight=1))
    assert transfer.start(UPTO, _root(STATE), None, [1], 0.0)
    serve = _honest()
    five = serve(ChunkRequest(UPTO, 5))
    assert five is not None
    assert transfer.on_chunk(2, five, 0.0) is None  # from anyone: it verifies
    held = transfer.held()
    assert held == CB and transfer.target is not None and transfer.target.count == 10
    assert transfer.on_chunk(1, five, 0.0) is None
    assert outbox.dropped["chunk-duplicate"] == 1 and transfer.held() == held
    assert transfer.statistics().chunks_received == 1


def test_a_chunk_with_no_transfer_under_way_is_unexpected() -> None:
    transfer, outbox = _transfer()
    chunk = _honest()(ChunkRequest(UPTO, 0))
    assert chunk is not None
    assert transfer.on_chunk(1, chunk, 0.0) is None
    assert outbox.dropped["chunk-unexpected"] == 1 and transfer.held() == 0


def test_retarget_moves_to_a_newer_checkpoint_and_ignores_an_older_one() -> None:
    transfer, outbox = _transfer()
    assert transfer.start(OLD, _root(OLD_STATE), None, [1, 2], 0.0)
    old = _honest(OLD_STATE, OLD)
    first = old(ChunkRequest(OLD, 0))
    assert first is not None and transfer.on_chunk(1, first, 0.0) is None
    assert transfer.held() > 0
    assert not transfer.retarget(OLD, _root(OLD_STATE), None, [1, 2], 0.1)  # same: no change
    assert transfer.held() > 0
    outbox.sends.clear()
    assert transfer.retarget(UPTO, _root(STATE), None, [1, 2], 0.1)
    assert transfer.held() == 0 and transfer.target is not None
    assert transfer.target.upto == UPTO
    assert all(item == ChunkRequest(UPTO, 0) for _, item in outbox.sends)
    second = old(ChunkRequest(OLD, 1))
    assert second is not None and transfer.on_chunk(2, second, 0.1) is None
    assert outbox.dropped["chunk-stale"] == 1  # answers to the old requests
    run = _drive(transfer, outbox, {1: _honest(), 2: _honest()})
    assert run.state == STATE and transfer.statistics().started == 2


def test_abandon_frees_what_was_held() -> None:
    transfer, outbox = _transfer()
    assert transfer.start(UPTO, _root(STATE), None, [1], 0.0)
    chunk = _honest()(ChunkRequest(UPTO, 0))
    assert chunk is not None
    transfer.on_chunk(1, chunk, 0.0)
    assert transfer.held() == CB and transfer.in_flight() > 0
    transfer.abandon()
    assert (transfer.active, transfer.held(), transfer.in_flight()) == (False, 0, 0)
    outbox.sends.clear()
    transfer.tick(5.0)
    assert outbox.sends == []


def test_no_peer_to_ask_is_refused() -> None:
    transfer, outbox = _transfer()
    assert not transfer.start(UPTO, _root(STATE), None, [ME], 0.0)
    assert transfer.statistics().refused == 1 and not transfer.active
    assert outbox.sends == [] and outbox.dropped["transfer-refused"] == 1


# -- the serving side -------------------------------------------------------------------------


def test_serve_answers_its_own_snapshot_with_chunks_that_verify() -> None:
    server = ChunkServer(settings=SETTINGS, outbox=Outbox())
    root = _root(STATE)
    assert server.root_of(UPTO, STATE) == root
    chunks = chunks_of(STATE, CB)
    for index in range(len(chunks)):
        chunk = server.serve(ChunkRequest(UPTO, index), UPTO, STATE)
        assert chunk is not None
        assert (chunk.upto, chunk.root, chunk.count, chunk.index) == (UPTO, root, 10, index)
        assert chunk.data == chunks[index]
        assert chunk.proof == merkle_proof(chunks, index)
        assert verify_chunk(root, 10, index, chunk.data, chunk.proof)
    assert server.served == 10


def test_serve_refuses_another_upto_an_index_out_of_range_and_a_state_too_large() -> None:
    server = ChunkServer(settings=SETTINGS, outbox=Outbox())
    assert server.serve(ChunkRequest(OLD, 0), UPTO, STATE) is None
    assert server.serve(ChunkRequest(UPTO, 10), UPTO, STATE) is None
    too_large = bytes(SETTINGS.snapshot_bytes_max + 1)
    assert server.serve(ChunkRequest(UPTO, 0), UPTO, too_large) is None
    assert server.served == 0


def test_serving_k_chunks_builds_the_tree_once_per_snapshot(
        monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[int] = []

    class Counting(MerkleTree):
        def __init__(self, data: bytes, chunk_bytes: int) -> None:
            built.append(len(data))
            super().__init__(data, chunk_bytes)

    monkeypatch.setattr(transfer_module, "MerkleTree", Counting)
    server = ChunkServer(settings=SETTINGS, outbox=Outbox())
    for index in range(10):
        assert server.serve(ChunkRequest(UPTO, index), UPTO, STATE) is not None
    copy = bytes(bytearray(STATE))  # equal bytes, another object: still the same snapshot
    assert server.serve(ChunkRequest(UPTO, 0), UPTO, copy) is not None
    assert built == [len(STATE)]
    assert server.serve(ChunkRequest(OLD, 0), OLD, OLD_STATE) is not None  # a new snapshot
    assert built == [len(STATE), len(OLD_STATE)] and server.held() == 6


def test_on_request_sends_the_chunk_to_the_asker_or_counts_the_drop() -> None:
    outbox = Outbox()
    server = ChunkServer(settings=SETTINGS, outbox=outbox)
    snapshot = Snapshot(CheckpointCert(UPTO, bytes(32), ()), STATE)
    server.on_request(3, ChunkRequest(UPTO, 2), snapshot, 0.0)
    assert [(dest, type(item)) for dest, item in outbox.sends] == [(3, Chunk)]
    server.on_request(3, ChunkRequest(UPTO, 2), None, 0.0)
    server.on_request(3, ChunkRequest(OLD, 2), snapshot, 0.0)
    assert outbox.dropped["chunkreq-not-held"] == 2 and len(outbox.sends) == 1


def test_a_peer_asking_again_and_again_is_served_within_its_budget() -> None:
    """A burst of ``transfer_chunks_in_flight`` chunks at once, then
    ``transfer_serve_bytes_per_s``; another peer's budget is its own."""
    settings = attrs.evolve(SETTINGS, transfer_chunks_in_flight=2,
                            transfer_serve_bytes_per_s=SETTINGS.chunk_bytes * 10)
    outbox = Outbox()
    server = ChunkServer(settings=settings, outbox=outbox)
    snapshot = Snapshot(CheckpointCert(UPTO, bytes(32), ()), STATE)

    def served(peer: int, now: float, times: int = 100) -> int:
        before = len(outbox.sends)
        for _ in range(times):
            server.on_request(peer, ChunkRequest(UPTO, 0), snapshot, now)
        return len(outbox.sends) - before

    assert served(3, 0.0) == 2  # the burst
    assert outbox.dropped["chunkreq-over-budget"] == 98
    assert served(2, 0.0) == 2  # another peer
    assert served(3, 0.0) == 0
    assert served(3, 0.5) == 2  # half a second earns five chunks; the burst caps it at two
    assert served(3, 0.55) == 0
    assert served(3, 0.65) == 1
    total = sum(served(3, 1.0 + k * 0.01, times=3) for k in range(100))  # a second more
    assert 10 <= total <= 12, total
