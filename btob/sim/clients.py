"""Simulated honest clients: closed loop (or a small window), failing over, verifying receipts.

A :class:`SimClient` is :class:`btob.client.client.Client`'s behaviour on virtual time,
driven by the simulator's events: it signs request ``seq`` of its session (0, 1, 2, ...),
sends it to the member ``(first + seq) % n`` (``first`` drawn from its key, as the real
client does), and each ``retry_s`` without a valid receipt - or at once on a NOTICE or a
receipt that does not prove the request - to the next member. It keeps at most
``in_flight`` requests waiting, verifies every receipt offline
(:func:`~btob.core.clientwire.receipt_problem`) and accepts only one that proves the very
request frame it sent; after ``give_up_s`` without one it gives the request up (the cluster
may still deliver it: a receipt is the only proof either way) and goes on.

What it sent and what it accepted are the client logs the checker judges
(:class:`~btob.sim.logs.BroadcastRecord`, :class:`~btob.sim.logs.ReceiptRecord`).
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable

import attrs

from btob._errors import WireError
from btob.core.clientwire import (
    ClientRequest,
    Notice,
    Receipt,
    SignedReply,
    decode_client_frame,
    receipt_problem,
    sign_request,
)
from btob.core.delivery import CLIENT_ORIGIN, MsgId
from btob.core.quorum import Quorums
from btob.faults._clients import ClientActions
from btob.sim.logs import BroadcastRecord, ReceiptRecord

__all__ = ["ClientStatistics", "SimClient", "client_msg_id"]


def client_msg_id(client: bytes, session: int, seq: int) -> str:
    """The message id of a client's request, as deliveries name it."""
    return str(MsgId(CLIENT_ORIGIN, seq, client, session))


@attrs.define
class ClientStatistics:
    """What a simulated client did (the effects of members' faults show here)."""

    requests: int = 0
    """Requests signed."""
    sends: int = 0
    """REQUEST frames sent (one per member tried)."""
    failovers: int = 0
    """Sends to one more member after a timeout, a NOTICE or a bad receipt."""
    receipts_valid: int = 0
    """Receipts that proved their request (each accepted once)."""
    receipts_late: int = 0
    """Further valid receipts of requests already proven."""
    receipts_invalid: int = 0
    """Receipts refused: malformed, proving nothing, or for a request it never sent."""
    notices: int = 0
    """NOTICE frames (a member did not take a request)."""
    gave_up: int = 0
    """Requests given up after ``give_up_s`` without a valid receipt."""


@attrs.define
class _Waiting:
    frame: bytes
    sent_at: float
    attempts: int = 1
    retry_at: float = 0.0


class SimClient:
    """One honest client (see the module docstring); the simulator calls :meth:`start`,
    :meth:`on_frame` and :meth:`on_timer` and carries out the :class:`ClientActions`."""

    honest = True

    def __init__(self, client: int, *, public_key: bytes, sign: Callable[[str, bytes], bytes],
                 n: int, quorums: Quorums, requests: int, in_flight: int, payload_size: int,
                 retry_s: float, give_up_s: float, rng: random.Random,
                 verify_member: Callable[[int, str, bytes, bytes], bool],
                 verify_client: Callable[[bytes, str, bytes, bytes], bool],
                 frame_bytes_max: int, session: int = 1) -> None:
        self.client = client
        self.public_key = public_key
        self._sign = sign
        self._n = n
        self._quorums = quorums
        self._requests = requests
        self._in_flight = in_flight
        self._payload_size = payload_size
        self._retry_s = retry_s
        self._give_up_s = give_up_s
        self._rng = rng
        self._verify_member = verify_member
        self._verify_client = verify_client
        self._frame_bytes_max = frame_bytes_max
        self.session = session
        self._first = int.from_bytes(hashlib.sha256(public_key).digest()[:4], "big") % n
        self._next_seq = 0
        self._waiting: dict[int, _Waiting] = {}
        self._by_frame: dict[bytes, int] = {}
        self._proven: set[bytes] = set()
        self.statistics = ClientStatistics()
        self.broadcasts: list[BroadcastRecord] = []
        """Every request it sent, in order (its client log)."""
        self.receipts: list[ReceiptRecord] = []
        """Every receipt it accepted, in order."""
        self.accepted_frames: list[bytes] = []
        """The request frames of its accepted receipts (what a replaying client re-sends)."""

    @property
    def done(self) -> bool:
        """True once every request was proven or given up."""
        return self._next_seq >= self._requests and not self._waiting

    def start(self, now: float) -> ClientActions:
        """Its first requests."""
        out = ClientActions()
        self._fill(now, out)
        return out

    def _fill(self, now: float, out: ClientActions) -> None:
        while len(self._waiting) < self._in_flight and self._next_seq < self._requests:
            seq = self._next_seq
            self._next_seq += 1
            head = struct.pack(">II", self.client, seq)
            payload = (head + self._rng.randbytes(max(0, self._payload_size - len(head))))[
                :max(self._payload_size, len(head))]
            frame = sign_request(ClientRequest(self.public_key, self.session, seq, payload),
                                 self._sign)
            self.statistics.requests += 1
            self.broadcasts.append(BroadcastRecord(
                client_msg_id(self.public_key, self.session, seq),
                hashlib.sha256(payload).hexdigest()))
            waiting = self._waiting[seq] = _Waiting(frame, now)
            self._by_frame[frame] = seq
            self._send(seq, waiting, now, out)

    def _send(self, seq: int, waiting: _Waiting, now: float, out: ClientActions) -> None:
        member = (self._first + seq + waiting.attempts - 1) % self._n
        out.sends.append((member, waiting.frame))
        self.statistics.sends += 1
        waiting.retry_at = now + self._retry_s
        out.timers.append((waiting.retry_at, seq))

    def _fail_over(self, seq: int, now: float, out: ClientActions) -> None:
        waiting = self._waiting[seq]
        if now - waiting.sent_at >= self._give_up_s:
            self.statistics.gave_up += 1
            self._forget(seq)
            self._fill(now, out)
            return
        waiting.attempts += 1
        self.statistics.failovers += 1
        self._send(seq, waiting, now, out)

    def _forget(self, seq: int) -> None:
        waiting = self._waiting.pop(seq)
        del self._by_frame[waiting.frame]

    def on_timer(self, token: int, now: float) -> ClientActions:
        """A retry timer of request ``token``: one more member, unless it was answered."""
        out = ClientActions()
        waiting = self._waiting.get(token)
        if waiting is not None and now >= waiting.retry_at:
            self._fail_over(token, now, out)
        return out

    def on_frame(self, member: int, frame: bytes, now: float) -> ClientActions:
        """A RECEIPT or NOTICE from ``member``."""
        out = ClientActions()
        try:
            message = decode_client_frame(frame, frame_bytes_max=self._frame_bytes_max)
        except WireError:
            self.statistics.receipts_invalid += 1
            return out
        if isinstance(message, Notice):
            self.statistics.notices += 1
            waiting = self._waiting.get(message.seq) if message.session == self.session \
                else None
            # At once to the next member, until each was tried once; then the timer paces it.
            if waiting is not None and waiting.attempts < self._n:
                self._fail_over(message.seq, now, out)
            return out
        if isinstance(message, SignedReply):
            return out  # simulated clients broadcast; they ask for no results
        self._on_receipt(member, message, now, out)
        return out

    def _on_receipt(self, member: int, receipt: Receipt, now: float,
                    out: ClientActions) -> None:
        seq = self._by_frame.get(receipt.request)
        if seq is None:
            if receipt.request in self._proven:
                self.statistics.receipts_late += 1
            else:
                self.statistics.receipts_invalid += 1  # for a request it never sent
            return
        problem = receipt_problem(receipt, quorums=self._quorums,
                                  verify_member=self._verify_member,
                                  verify_client=self._verify_client,
                                  frame_bytes_max=self._frame_bytes_max)
        if problem is not None:
            self.statistics.receipts_invalid += 1
            if self._waiting[seq].attempts < self._n:
                self._fail_over(seq, now, out)
            return
        self.statistics.receipts_valid += 1
        self.receipts.append(ReceiptRecord(client_msg_id(self.public_key, self.session, seq),
                                           receipt.slot, receipt.index, member))
        self.accepted_frames.append(receipt.request)
        self._proven.add(receipt.request)
        self._forget(seq)
        self._fill(now, out)
