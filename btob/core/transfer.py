"""State transfer: a member any distance behind fetches a stable checkpoint's state in chunks.

Theory of operation. Catch-up (:mod:`btob.core.catchup`) replays the log, which peers keep
for ``log_retention_slots`` only; a member further behind, or one whose data directory is
empty, must instead take the *state* at a stable checkpoint. A stable certificate signs
(upto, chain digest, state root), where the root is the Merkle root of the snapshot's bytes
cut in chunks of ``Settings.chunk_bytes`` (:mod:`btob.core.merkle`). Two quorums share an
honest member, so at most one root is certified per ``upto``, and it is the root every honest
member computed from the same deterministic state: a receiver that holds the certified root
trusts no peer, only hashes.

The fetching side (:class:`StateTransfer`) asks for chunks with CHUNK-REQUEST(upto, index),
at most ``transfer_chunks_in_flight`` at a time, each of one peer, spreading the requests over
its peers in rotation. A CHUNK(upto, root, count, index, data, proof) is checked against the
certified root before it is kept: a chunk failing the check (its data, its proof, its root or
its count) proves its sender Byzantine - an honest member serves exactly the certified bytes -
so the sender is marked bad for this transfer, never asked again, and what it was asked for
goes to another peer at once. A chunk of another checkpoint is only stale (an honest peer may
answer a request the fetcher has since given up on), and is dropped. A request unanswered for
``retransmit_interval_s`` is asked of the next peer in the rotation and the silent peer is
avoided while another is not, until every peer has been. So the transfer needs one honest
peer and gets its speed from all the honest ones; among the n-1 peers at least f+1 are
honest. Should every peer end up marked bad (only a wrong root or count given by the caller
can do that to an honest one), the marks are cleared and everyone is asked again: the
transfer never gives up on its own; the caller abandons it, or restarts it at a newer
checkpoint (:meth:`StateTransfer.retarget`).

The number of chunks need not be known: the root commits to it, so the first chunk that
verifies with the count it carries tells it. Memory is bounded: a transfer whose count would
exceed ``snapshot_bytes_max`` (rounded to whole chunks) is refused, only verified chunks are
kept, and no chunk is longer than ``chunk_bytes``.

The serving side (:class:`ChunkServer`) answers a request for its own snapshot's ``upto``
with the chunk and its audit path, from a Merkle tree it builds once per snapshot. Each
peer has a budget of chunk bytes (a token bucket: ``transfer_serve_bytes_per_s``, a burst
of ``transfer_chunks_in_flight`` chunks); a request beyond it is dropped unanswered, as if
lost - the fetcher asks another peer, or this one again later.

Wiring both into the member: route ``ctl.chunkreq`` to :meth:`ChunkServer.on_request` with
the member's stable snapshot and ``ctl.chunk`` to :meth:`StateTransfer.on_chunk`, installing
the state it returns (``b""`` is a state: test for None); call :meth:`StateTransfer.tick`
from the member's tick; on a verified stable certificate beyond what catch-up can serve,
``retarget(cert.upto, cert.state, None, None, now)``; and take the root a CHECKPOINT signs
from a tree the server then keeps (:meth:`ChunkServer.root_of`, or :meth:`ChunkServer.adopt`
for one built off the event loop), so that it serves the chunks later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import attrs

from btob.core.durable import Snapshot
from btob.core.effects import Outbox
from btob.core.merkle import MerkleTree, verify_chunk
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import DIGEST_BYTES, Chunk, ChunkRequest

__all__ = ["ChunkServer", "StateTransfer", "TransferStatistics", "TransferTarget"]


@attrs.frozen
class TransferTarget:
    """The certified state a transfer fetches."""

    upto: int
    """The stable checkpoint whose state it is."""
    root: bytes
    """The Merkle root its certificate signs."""
    count: int | None
    """Its number of chunks, once known (given, or learnt from the first verified chunk)."""


@attrs.frozen
class TransferStatistics:
    """Counters of a member's state transfers, over all of them."""

    started: int = 0
    """Transfers begun (retargets included)."""
    completed: int = 0
    """Transfers that assembled their whole state."""
    refused: int = 0
    """Transfers refused because the state exceeds ``snapshot_bytes_max`` (or no peer)."""
    requests_sent: int = 0
    """CHUNK-REQUESTs sent, first requests and failovers alike."""
    chunks_received: int = 0
    """Chunks verified and kept."""
    chunks_bad: int = 0
    """Chunks that failed verification (each proves its sender Byzantine)."""
    peers_marked_bad: int = 0
    """Times a peer was marked bad for a transfer."""
    failovers: int = 0
    """Requests unanswered in time and asked of another peer."""
    rounds: int = 0
    """Times every peer had been avoided (silent) or marked bad and all were asked again."""


class StateTransfer:
    """One member's fetching side of state transfer (see the module docstring).

    Sans-IO: time is the ``now`` argument of every call and requests go to ``outbox``. One
    transfer at a time: :meth:`start` (or :meth:`retarget`) begins one, :meth:`on_chunk`
    takes the answers and returns the state once every chunk is verified, :meth:`tick`
    retransmits and fails over, :meth:`abandon` gives up.
    """

    def __init__(self, *, member: int, quorums: Quorums, settings: Settings,
                 outbox: Outbox) -> None:
        self.member = member
        self.quorums = quorums
        self.settings = settings
        self.outbox = outbox
        self._chunk_bytes = settings.chunk_bytes
        self._chunks_max = max(1, settings.snapshot_bytes_max // self._chunk_bytes)
        self._stats: dict[str, int] = dict.fromkeys(attrs.fields_dict(TransferStatistics), 0)
        self._reset()

    def _reset(self) -> None:
        self._target: TransferTarget | None = None
        self._peers: list[int] = []
        self._bad: set[int] = set()
        self._silent: set[int] = set()
        """Peers that left a request unanswered since they last sent a good chunk."""
        self._turn = 0
        self._chunks: dict[int, bytes] = {}
        self._held_bytes = 0
        self._outstanding: dict[int, tuple[int, float]] = {}
        """Chunk index -> (peer asked, when)."""
        self._next_fresh = 0
        self._all_bad_since: float | None = None
        """When the last good peer was marked bad (None while one is left)."""
        self._again: deque[int] = deque()
        """Indices taken back from a peer and not asked of another yet."""

    # -- starting and stopping ----------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True while a transfer is under way."""
        return self._target is not None

    @property
    def target(self) -> TransferTarget | None:
        """What the transfer under way fetches (None when idle)."""
        return self._target

    def start(self, upto: int, root: bytes, count: int | None,
              peers: Sequence[int] | None, now: float) -> bool:
        """Begin fetching the state the stable certificate for ``upto`` signs as ``root``
        (the caller verified the certificate), replacing any transfer under way.

        ``count`` is the number of chunks if known; None learns it from the first verified
        chunk (the root commits to it, so a wrong count only fails verification). ``peers``
        are asked in this order, this member left out; None means every other member, in
        ring order after this one (so laggards do not all start at the same peer). Returns
        False, and counts the refusal, if the state would exceed ``snapshot_bytes_max`` or
        there is no peer to ask.
        """
        assert len(root) == DIGEST_BYTES, "a Merkle root is a SHA-256 digest"
        if peers is None:
            n = self.quorums.n
            peers = [(self.member + k) % n for k in range(1, n)]
        chosen = list(dict.fromkeys(p for p in peers if p != self.member))
        self._reset()
        if (count is not None and not 1 <= count <= self._chunks_max) or not chosen:
            self._count("refused")
            self.outbox.drop("transfer-refused")
            return False
        self._target = TransferTarget(upto, root, count)
        self._peers = chosen
        self._count("started")
        self._fill(now)
        return True

    def retarget(self, upto: int, root: bytes, count: int | None,
                 peers: Sequence[int] | None, now: float) -> bool:
        """:meth:`start` at a newer stable checkpoint learnt mid-transfer (or when idle);
        a checkpoint not above the one being fetched changes nothing. True if it started."""
        if self._target is not None and upto <= self._target.upto:
            return False
        return self.start(upto, root, count, peers, now)

    def abandon(self) -> None:
        """Give up the transfer under way and free what it held; later chunks are stale."""
        self._reset()

    # -- answers ------------------------------------------------------------------------------

    def on_chunk(self, sender: int, chunk: Chunk, now: float) -> bytes | None:
        """A peer's CHUNK; returns the whole state once every chunk is verified (the
        transfer is then over), else None. Bad chunks mark ``sender`` bad and are counted."""
        target = self._target
        if target is None:
            self.outbox.drop("chunk-unexpected")
            return None
        if chunk.upto != target.upto:
            self.outbox.drop("chunk-stale")
            return None
        if chunk.index in self._chunks:
            self.outbox.drop("chunk-duplicate")
            return None
        if chunk.root != target.root or (target.count is not None
                                         and chunk.count != target.count):
            self._refuse(sender, "chunk-bad-root", now)
            return None
        if len(chunk.data) > self._chunk_bytes or not verify_chunk(
                target.root, chunk.count, chunk.index, chunk.data, chunk.proof):
            self._refuse(sender, "chunk-bad-proof", now)
            return None
        if target.count is None:
            # Verified against the certified root, which commits to the count: it is true.
            if chunk.count > self._chunks_max:
                self._count("refused")
                self.outbox.drop("snapshot-too-large")
                self._reset()
                return None
            target = self._target = attrs.evolve(target, count=chunk.count)
        assert target.count is not None
        self._chunks[chunk.index] = chunk.data
        self._held_bytes += len(chunk.data)
        self._outstanding.pop(chunk.index, None)
        self._silent.discard(sender)
        self._count("chunks_received")
        if len(self._chunks) == target.count:
            state = b"".join(self._chunks[i] for i in range(target.count))
            self._count("completed")
            self._reset()
            return state
        self._fill(now)
        return None

    def _refuse(self, sender: int, reason: str, now: float) -> None:
        """A chunk failed verification: its sender is Byzantine; ask others what it owes."""
        self.outbox.drop(reason)
        self._count("chunks_bad")
        if sender in self._peers and sender not in self._bad:
            self._bad.add(sender)
            self._count("peers_marked_bad")
            if self._bad.issuperset(self._peers):
                self._all_bad_since = now
        owed = [i for i, (peer, _) in self._outstanding.items() if peer == sender]
        for index in owed:
            del self._outstanding[index]
            self._again.append(index)
        self._fill(now)

    # -- time ---------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Ask the next peer for every chunk unanswered for ``retransmit_interval_s``, then
        top the requests in flight up again; a retransmit interval after every peer was
        marked bad, ask them all again."""
        if self._target is None:
            return
        interval = self.settings.retransmit_interval_s
        if self._all_bad_since is not None and now - self._all_bad_since >= interval:
            # Only a wrong root or count makes honest peers fail verification; asking again,
            # paced like a retransmission, costs requests, giving up would cost liveness.
            self._bad.clear()
            self._all_bad_since = None
            self._count("rounds")
            self.outbox.drop("transfer-all-peers-bad")
        late = [(i, peer) for i, (peer, at) in self._outstanding.items() if now - at >= interval]
        for index, peer in late:
            self._silent.add(peer)
            self._count("failovers")
            del self._outstanding[index]
            self._again.append(index)
        self._fill(now)

    # -- requests -----------------------------------------------------------------------------

    def _fill(self, now: float) -> None:
        """Keep ``transfer_chunks_in_flight`` requests outstanding while chunks are missing
        (only the first until the count is known: its answer tells how many there are)."""
        assert self._target is not None
        limit = self._target.count if self._target.count is not None else 1
        while len(self._outstanding) < self.settings.transfer_chunks_in_flight:
            index = self._next_index(limit)
            if index is None:
                return
            peer = self._pick()
            if peer is None:  # every peer is marked bad: tick asks them again, paced
                self._again.appendleft(index)
                return
            self._ask(index, peer, now)

    def _next_index(self, limit: int) -> int | None:
        while self._again:
            index = self._again.popleft()
            if index not in self._chunks and index not in self._outstanding:
                return index
        while self._next_fresh < limit:
            index = self._next_fresh
            self._next_fresh += 1
            if index not in self._chunks and index not in self._outstanding:
                return index
        return None

    def _ask(self, index: int, peer: int, now: float) -> None:
        assert self._target is not None
        self._outstanding[index] = (peer, now)
        self._count("requests_sent")
        self.outbox.send(peer, ChunkRequest(self._target.upto, index))

    def _pick(self) -> int | None:
        """The next peer in rotation that is not marked bad, preferring one that has not left
        a request unanswered; None if every peer is marked bad."""
        good = [p for p in self._peers if p not in self._bad]
        if not good:
            return None
        answering = {p for p in good if p not in self._silent}
        if not answering:
            self._silent.clear()  # every peer was silent once: a new round for all
            self._count("rounds")
            answering = set(good)
        n = len(self._peers)
        for step in range(n):
            peer = self._peers[(self._turn + step) % n]
            if peer in answering:
                self._turn = (self._turn + step + 1) % n
                return peer
        raise AssertionError("an answering peer is one of the peers")  # pragma: no cover

    # -- queries ------------------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self._stats[name] += 1

    def statistics(self) -> TransferStatistics:
        """The counters, over every transfer so far."""
        return TransferStatistics(**self._stats)

    def held(self) -> int:
        """Bytes of verified chunks held (at most ``snapshot_bytes_max``, in whole chunks)."""
        return self._held_bytes

    def in_flight(self) -> int:
        """Requests outstanding (at most ``transfer_chunks_in_flight``)."""
        return len(self._outstanding)

    def bad_peers(self) -> frozenset[int]:
        """Peers marked bad in the transfer under way."""
        return frozenset(self._bad)


class ChunkServer:
    """The serving side: chunks of this member's snapshot, with their audit paths.

    The Merkle tree of the latest snapshot served is kept (64 bytes per chunk, the state
    itself is referenced, not copied), so serving k chunks costs one tree build, not k; the
    root it yields is the one the member signs in its CHECKPOINT (:meth:`root_of`).
    """

    def __init__(self, *, settings: Settings, outbox: Outbox) -> None:
        self.settings = settings
        self.outbox = outbox
        self._chunk_bytes = settings.chunk_bytes
        self._upto: int | None = None
        self._tree: MerkleTree | None = None
        self._burst = settings.transfer_chunks_in_flight * self._chunk_bytes
        self._budgets: dict[int, tuple[float, float]] = {}
        """Per peer: (bytes it may still be served, when that was computed)."""
        self.served = 0
        """Chunks served."""

    def _tree_of(self, upto: int, state: bytes) -> MerkleTree:
        tree = self._tree
        # Identity first: the member passes its snapshot's own bytes, and comparing 256 MiB
        # for every chunk would cost what the cache saves.
        if tree is None or self._upto != upto or (tree.data is not state
                                                  and tree.data != state):
            tree = self._tree = MerkleTree(state, self._chunk_bytes)
            self._upto = upto
        return tree

    def adopt(self, upto: int, tree: MerkleTree) -> None:
        """Serve the snapshot at ``upto`` from ``tree``, built elsewhere (off the event loop)."""
        self._tree, self._upto = tree, upto

    def root_of(self, upto: int, state: bytes) -> bytes:
        """The Merkle root of ``state``, the snapshot at ``upto`` (its tree is kept)."""
        return self._tree_of(upto, state).root

    def serve(self, request: ChunkRequest, snapshot_upto: int, state: bytes) -> Chunk | None:
        """The chunk ``request`` asks for, from ``state`` (the snapshot at ``snapshot_upto``);
        None if it names another checkpoint, an index out of range, or the state exceeds
        ``snapshot_bytes_max`` (no peer would take it)."""
        if request.upto != snapshot_upto or len(state) > self.settings.snapshot_bytes_max:
            return None
        tree = self._tree_of(snapshot_upto, state)
        if request.index >= tree.count:
            return None
        self.served += 1
        return Chunk(snapshot_upto, tree.root, tree.count, request.index,
                     tree.chunk(request.index), tree.proof(request.index))

    def on_request(self, sender: int, request: ChunkRequest, snapshot: Snapshot | None,
                   now: float) -> None:
        """Answer ``sender``'s CHUNK-REQUEST from this member's stable ``snapshot`` (None: it
        holds none) if ``sender``'s budget allows, or count the request dropped."""
        allowed, at = self._budgets.get(sender, (self._burst, now))
        allowed = min(self._burst, allowed + max(0.0, now - at)
                      * self.settings.transfer_serve_bytes_per_s)
        if allowed < self._chunk_bytes:
            self._budgets[sender] = (allowed, now)
            self.outbox.drop("chunkreq-over-budget")
            return
        chunk = None if snapshot is None else self.serve(request, snapshot.upto, snapshot.state)
        if chunk is None:
            self._budgets[sender] = (allowed, now)
            self.outbox.drop("chunkreq-not-held")
            return
        self._budgets[sender] = (allowed - len(chunk.data), now)
        self.outbox.send(sender, chunk)

    def held(self) -> int:
        """Chunks whose tree is kept (one snapshot's)."""
        return 0 if self._tree is None else self._tree.count
