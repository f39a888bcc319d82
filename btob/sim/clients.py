"""Simulated honest clients: closed loop (or a small window) on virtual time.

A :class:`SimClient` drives the shipped client's rules (:class:`~btob.core.clientcore.
ClientCore`: which member a request goes to, fail-over, receipt acceptance, giving up) with
the simulator's events, so the sweeps check the rules :class:`btob.client.client.Client`
runs. It keeps at most ``in_flight`` requests waiting, makes their payloads from its seeded
random source, and after ``give_up_s`` without a receipt that proves a request it goes on (the
cluster may still deliver it: a receipt is the only proof either way).

What it sent and what it accepted are the client logs the checker judges
(:class:`~btob.sim.logs.BroadcastRecord`, :class:`~btob.sim.logs.ReceiptRecord`).
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable

from btob.core.clientcore import ClientCore, ClientOutput, ClientStatistics
from btob.core.delivery import CLIENT_ORIGIN, MsgId
from btob.core.quorum import Quorums
from btob.faults._clients import ClientActions
from btob.sim.logs import BroadcastRecord, ReceiptRecord

__all__ = ["ClientStatistics", "SimClient", "client_msg_id"]


def client_msg_id(client: bytes, session: int, seq: int) -> str:
    """The message id of a client's request, as deliveries name it."""
    return str(MsgId(CLIENT_ORIGIN, seq, client, session))


class SimClient:
    """One honest client (see the module docstring); the simulator calls :meth:`start`,
    :meth:`on_frame` and :meth:`on_timer` and carries out the :class:`ClientActions`."""

    honest = True

    def __init__(self, client: int, *, public_key: bytes, sign: Callable[[str, bytes], bytes],
                 n: int, quorums: Quorums, requests: int, in_flight: int, payload_size: int,
                 retry_s: float, give_up_s: float, rng: random.Random,
                 verify_member: Callable[[int, str, bytes, bytes], bool],
                 frame_bytes_max: int, session: int = 1) -> None:
        self.client = client
        self.public_key = public_key
        self.session = session
        self._requests = requests
        self._in_flight = in_flight
        self._payload_size = payload_size
        self._rng = rng
        self._core = ClientCore(public_key=public_key, sign=sign, session=session, n=n,
                                quorums=quorums, retry_s=retry_s, give_up_s=give_up_s,
                                verify_member=verify_member, frame_bytes_max=frame_bytes_max)
        self.statistics: ClientStatistics = self._core.statistics
        """What it did (the effects of members' faults show here)."""
        self.broadcasts: list[BroadcastRecord] = []
        """Every request it sent, in order (its client log)."""
        self.receipts: list[ReceiptRecord] = []
        """Every receipt it accepted, in order."""
        self.accepted_frames: list[bytes] = []
        """The request frames of its accepted receipts (what a replaying client re-sends)."""

    @property
    def done(self) -> bool:
        """True once every request was proven or given up."""
        return self._core.next_seq >= self._requests and not self._core.waiting

    def start(self, now: float) -> ClientActions:
        """Its first requests."""
        out = ClientActions()
        self._fill(now, out)
        return out

    def on_timer(self, token: int, now: float) -> ClientActions:
        """A timer of request ``token``: one more member, or give it up."""
        out = ClientActions()
        self._take(self._core.on_timer(token, now), now, out)
        return out

    def on_frame(self, member: int, frame: bytes, now: float) -> ClientActions:
        """A RECEIPT or NOTICE from ``member``."""
        out = ClientActions()
        self._take(self._core.on_frame(member, frame, now), now, out)
        return out

    def _fill(self, now: float, out: ClientActions) -> None:
        while self._core.waiting < self._in_flight and self._core.next_seq < self._requests:
            seq = self._core.next_seq
            head = struct.pack(">II", self.client, seq)
            payload = (head + self._rng.randbytes(max(0, self._payload_size - len(head))))[
                :max(self._payload_size, len(head))]
            self.broadcasts.append(BroadcastRecord(
                client_msg_id(self.public_key, self.session, seq),
                hashlib.sha256(payload).hexdigest()))
            self._take(self._core.request(payload, now)[1], now, out)

    def _take(self, core: ClientOutput, now: float, out: ClientActions) -> None:
        """Carry the core's output into the simulator's actions; a finished request makes
        room for the next."""
        out.sends.extend((member, frame) for member, _, frame in core.sends)
        out.timers.extend(core.timers)
        for outcome in core.finished:
            if outcome.receipt is not None and outcome.failure is None:
                self.receipts.append(ReceiptRecord(
                    client_msg_id(self.public_key, self.session, outcome.seq),
                    outcome.receipt.slot, outcome.receipt.index, outcome.member))
                self.accepted_frames.append(outcome.frame)
        if core.finished:
            self._fill(now, out)
