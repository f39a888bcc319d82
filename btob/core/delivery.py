"""The delivery log: committed slots in, TO-deliveries out, as a deterministic function.

Every honest member feeds the same committed slots in the same order, so every honest member
produces the same deliveries: the prefix-order guarantee rests on this module being a pure
function of the committed log. It suppresses duplicates (a message id is delivered once) and
releases each origin's payloads in counter order (FIFO), holding back - boundedly - those that
arrive before an earlier one of the same origin. A batch's client requests follow its payloads,
each delivered or not as :class:`~btob.core.clients.ClientLog` decides.
"""

from __future__ import annotations

import attrs

from btob.core.clients import ClientLog
from btob.core.clientwire import ClientRequest
from btob.core.wire import Batch, BatchRef

__all__ = ["CLIENT_ORIGIN", "Delivery", "DeliveryLog", "MsgId"]


CLIENT_ORIGIN = -1
"""The ``origin`` of a client's payload (no member's counter numbers it)."""


@attrs.frozen(order=True)
class MsgId:
    """Identifies a payload: its origin member and the origin's payload counter; for a
    client's request, origin :data:`CLIENT_ORIGIN`, the request's ``seq`` as the counter and
    the client's key and session."""

    origin: int
    counter: int
    client: bytes = b""
    session: int = 0

    def __str__(self) -> str:
        if self.client:
            return f"c{self.client.hex()}.{self.session}:{self.counter}"
        return f"{self.origin}:{self.counter}"


@attrs.frozen
class Delivery:
    """One TO-delivery: position ``index`` in the member's total order.

    A client's request has ``origin`` :data:`CLIENT_ORIGIN`; ``client`` is then the client's
    public key (``b""`` for a member's payload) and ``relay`` the member whose batch carried
    it. ``slot`` is the slot that delivered it.
    """

    index: int
    msg_id: MsgId
    origin: int
    payload: bytes
    client: bytes = b""
    relay: int = -1
    slot: int = -1


class DeliveryLog:
    """Turns committed slots into deliveries: gap-free, duplicate-free, FIFO per origin."""

    def __init__(self, *, early_payloads_max_per_origin: int,
                 clients: ClientLog | None = None) -> None:
        self._early_max = early_payloads_max_per_origin
        self.clients = clients
        self._slot = -1
        """The client requests' rules (None: a batch's requests are never delivered)."""
        self._next_counter: dict[int, int] = {}
        self._early: dict[int, dict[int, bytes]] = {}
        self.next_index = 0
        """Index the next delivery will carry (= deliveries so far)."""
        self.dropped_early = 0
        """Payloads discarded because their origin's early buffer was full (Byzantine origins)."""

    def deliver_slot(
        self, refs: tuple[BatchRef, ...], batches: tuple[Batch, ...], slot: int = -1
    ) -> list[Delivery]:
        """Deliveries released by one committed slot, in order."""
        out: list[Delivery] = []
        clients = self.clients
        self._slot = slot
        for ref, batch in zip(refs, batches, strict=True):
            origin = ref.origin
            for offset, payload in enumerate(batch.payloads):
                self._offer(origin, batch.first_counter + offset, payload, out)
            if clients is None:
                continue
            for frame in batch.requests:
                self._emit_requests(clients.offer(frame, slot), origin, slot, out)
        if clients is not None:
            self._emit_requests(clients.slot_done(slot), -1, slot, out)
        return out

    def _emit_requests(self, requests: list[ClientRequest], relay: int, slot: int,
                       out: list[Delivery]) -> None:
        for request in requests:
            out.append(Delivery(
                self.next_index,
                MsgId(CLIENT_ORIGIN, request.seq, request.client, request.session),
                CLIENT_ORIGIN, request.payload, client=request.client, relay=relay, slot=slot))
            self.next_index += 1

    def _offer(self, origin: int, counter: int, payload: bytes, out: list[Delivery]) -> None:
        expected = self._next_counter.get(origin, 0)
        if counter < expected:
            return  # duplicate
        early = self._early.get(origin)
        if counter > expected:
            if early is None:
                early = self._early[origin] = {}
            if counter in early:
                return
            if len(early) >= self._early_max:
                self.dropped_early += 1  # only a Byzantine origin leaves such a hole
                return
            early[counter] = payload
            return
        self._emit(origin, counter, payload, out)
        counter += 1
        while early and counter in early:
            self._emit(origin, counter, early.pop(counter), out)
            counter += 1
        if early is not None and not early:
            del self._early[origin]

    def _emit(self, origin: int, counter: int, payload: bytes, out: list[Delivery]) -> None:
        out.append(Delivery(self.next_index, MsgId(origin, counter), origin, payload,
                            slot=self._slot))
        self.next_index += 1
        self._next_counter[origin] = counter + 1

    def next_counter(self, origin: int) -> int:
        """The payload counter of ``origin`` delivered next."""
        return self._next_counter.get(origin, 0)

    def early_held(self) -> int:
        """Payloads held back waiting for an earlier one of their origin."""
        return sum(len(e) for e in self._early.values())

    def export(self) -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int, bytes], ...]]:
        """``(origin, next counter)`` per origin and ``(origin, counter, payload)`` per early
        payload, sorted: the log's state as a snapshot holds it."""
        counters = tuple(sorted(self._next_counter.items()))
        early = tuple((o, c, p) for o in sorted(self._early)
                      for c, p in sorted(self._early[o].items()))
        return counters, early

    def restore(self, next_index: int, counters: tuple[tuple[int, int], ...],
                early: tuple[tuple[int, int, bytes], ...]) -> None:
        """Continue from an exported state at delivery index ``next_index``."""
        self.next_index = next_index
        self._next_counter = dict(counters)
        self._early = {}
        for origin, counter, payload in early:
            self._early.setdefault(origin, {})[counter] = payload
