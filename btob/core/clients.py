"""Which client requests a committed slot delivers: at most once, in order, boundedly.

Every honest member runs this on the same committed requests in the same order, so every honest
member delivers the same ones: like :mod:`btob.core.delivery`, it is a pure function of the
committed log (and of ``cluster.toml``, which says which client keys are admitted).

Rules, per client key:

- a request whose signature does not verify, or whose key is not admitted, is dropped (a
  Byzantine relay put it there; checking again here is what makes relaying safe);
- a higher session replaces the client's state (the client restarted); a lower one is stale;
- within a session, ``seq`` below the next expected is a duplicate (the client sent it to two
  members, or someone replays it); ``seq`` equal to it is delivered, and with it every held
  successor; ``seq`` up to ``window - 1`` above it is held back; beyond that it is dropped
  (a client keeps at most ``window`` requests in flight, so an honest one never gets there);
- a request held back for ``hold_slots`` slots stops waiting: the gap below it is skipped
  (its missing predecessors will count as duplicates) and it is delivered, with its held
  successors. A client that gave up on a request, or whose request a Byzantine member
  dropped, would otherwise see its later requests committed but never delivered;
- state for a new key is made only while fewer than ``tracked_max`` clients are known; past
  that, requests of unknown keys are dropped. State is never forgotten: forgetting a client
  would let a replay of its old request be delivered again.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from btob._errors import WireError
from btob.core.clientwire import REQUEST_KIND, ClientRequest, decode_request

__all__ = ["ClientAdmission", "ClientLog"]


@attrs.frozen
class ClientAdmission:
    """Which client keys a cluster admits: ``keys``, or any key if ``open``."""

    keys: frozenset[bytes] = frozenset()
    open: bool = False

    def admits(self, client: bytes) -> bool:
        """True if ``client`` may have requests delivered."""
        return self.open or client in self.keys


@attrs.define
class _Client:
    session: int
    next_seq: int = 0
    early: dict[int, tuple[bytes, ClientRequest, int]] = attrs.field(factory=dict)
    """Held requests by seq: the frame, the request, the slot that committed it."""


class ClientLog:
    """Decides, request by committed request, which client requests are delivered."""

    def __init__(self, *, admission: ClientAdmission, window: int, tracked_max: int,
                 frame_bytes_max: int, verify: Callable[[bytes, str, bytes, bytes], bool],
                 hold_slots: int = 64) -> None:
        self._admission = admission
        self._window = window
        self._tracked_max = tracked_max
        self._frame_bytes_max = frame_bytes_max
        self._verify = verify
        self._hold_slots = hold_slots
        self._clients: dict[bytes, _Client] = {}
        self._holding: dict[bytes, None] = {}  # clients with held requests
        self.dropped: dict[str, int] = {}
        """Committed requests not delivered, by reason (all but ``duplicate`` need a
        Byzantine client or relay)."""

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def parse(self, frame: bytes) -> ClientRequest | None:
        """The request in ``frame`` if it is well formed, signed and admitted, else None
        (counted)."""
        try:
            request, body, signature = decode_request(frame,
                                                      frame_bytes_max=self._frame_bytes_max)
        except WireError:
            self._drop("malformed")
            return None
        if not self._admission.admits(request.client):
            self._drop("not-admitted")
            return None
        if not self._verify(request.client, REQUEST_KIND, body, signature):
            self._drop("bad-signature")
            return None
        return request

    def offer(self, frame: bytes, slot: int = 0) -> list[ClientRequest]:
        """The requests one REQUEST frame committed in ``slot`` releases, in delivery
        order."""
        request = self.parse(frame)
        if request is None:
            return []
        state = self._clients.get(request.client)
        if state is None:
            if len(self._clients) >= self._tracked_max:
                self._drop("clients-full")
                return []
            state = self._clients[request.client] = _Client(request.session)
        if request.session < state.session:
            self._drop("stale-session")
            return []
        if request.session > state.session:
            state.session, state.next_seq, state.early = request.session, 0, {}
            self._holding.pop(request.client, None)
        if request.seq < state.next_seq or request.seq in state.early:
            self._drop("duplicate")
            return []
        if request.seq >= state.next_seq + self._window:
            self._drop("beyond-window")
            return []
        if request.seq > state.next_seq:
            state.early[request.seq] = (frame, request, slot)  # checked once, here
            self._holding[request.client] = None
            return []
        out = [request]
        state.next_seq += 1
        self._release(request.client, state, out)
        return out

    def _release(self, client: bytes, state: _Client, out: list[ClientRequest]) -> None:
        while state.next_seq in state.early:
            out.append(state.early.pop(state.next_seq)[1])
            state.next_seq += 1
        if not state.early:
            self._holding.pop(client, None)

    def slot_done(self, slot: int) -> list[ClientRequest]:
        """The held requests that stop waiting once ``slot`` is delivered (held since slot
        ``slot - hold_slots`` or earlier), with their held successors, in delivery order."""
        out: list[ClientRequest] = []
        for client in sorted(self._holding):  # sorted: the same order at every member
            state = self._clients[client]
            oldest = min(state.early)
            if state.early[oldest][2] > slot - self._hold_slots:
                continue
            self._drop("gap-skipped")
            state.next_seq = oldest
            self._release(client, state, out)
        return out

    def next_seq(self, client: bytes) -> tuple[int, int] | None:
        """``(session, next seq)`` of ``client``, or None if it is unknown."""
        state = self._clients.get(client)
        return None if state is None else (state.session, state.next_seq)

    def early_held(self) -> int:
        """Requests held back waiting for an earlier one of their session."""
        return sum(len(c.early) for c in self._clients.values())

    Row = tuple[bytes, int, int, tuple[bytes, ...], tuple[int, ...]]

    def export(self) -> tuple[Row, ...]:
        """``(client, session, next seq, held frames, their slots)`` per client, sorted by
        key: the state a snapshot holds."""
        rows = []
        for key, c in sorted(self._clients.items()):
            held = [c.early[s] for s in sorted(c.early)]
            rows.append((key, c.session, c.next_seq, tuple(h[0] for h in held),
                         tuple(h[2] for h in held)))
        return tuple(rows)

    def restore(self, rows: tuple[Row, ...]) -> None:
        """Continue from an exported state."""
        self._clients, self._holding = {}, {}
        for key, session, next_seq, held, slots in rows:
            state = self._clients[key] = _Client(session, next_seq)
            for frame, slot in zip(held, slots, strict=True):
                request = self.parse(frame)
                if request is not None:
                    state.early[request.seq] = (frame, request, slot)
                    self._holding[key] = None
