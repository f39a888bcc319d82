"""What a protocol core asks its driver to do: the outputs of a sans-IO state machine."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import attrs

from btob.core.wire import Batch, BatchRef, Message, PreparedCert, Signed

__all__ = ["BrbDelivery", "Evidence", "Outbox", "VerifyFn"]

VerifyFn = Callable[[int, str, bytes, bytes], bool]
"""``verify(member, kind, body, signature) -> bool``: a crypto check injected into cores."""


@attrs.frozen
class BrbDelivery:
    """A batch the dissemination layer hands to ordering (not yet ordered): reliably
    delivered (``Outbox.brb_deliveries``), or only held (``Outbox.held``)."""

    origin: int
    counter: int
    batch: Batch
    digest: bytes


@attrs.frozen
class Evidence:
    """Two conflicting messages validly signed by ``member``: proof that it is Byzantine."""

    member: int
    first: Signed
    second: Signed

    def describe(self) -> str:
        """One line naming the member and what it signed twice."""
        return f"member {self.member} signed two conflicting {self.first.kind} messages"


@attrs.define
class Outbox:
    """Outputs queued by the cores of one member; the driver drains it after every input.

    ``sends`` holds ``(destination, item)`` pairs: destination ``None`` means every other
    member; an item is either a :class:`Message` for the driver to sign or a :class:`Signed`
    message to forward byte for byte.
    """

    sends: list[tuple[int | None, Message | Signed]] = attrs.field(factory=list)
    brb_deliveries: list[BrbDelivery] = attrs.field(factory=list)
    held: list[BrbDelivery] = attrs.field(factory=list)
    """Batches the reliable broadcast holds but has not delivered (this member echoed the
    value, or fetched it because a proposal or committed slot names it): proposals naming
    them may be echoed; only a delivery counts as work the sequencer owes."""
    evidence: list[Evidence] = attrs.field(factory=list)
    wanted: list[BatchRef] = attrs.field(factory=list)
    """Batches a proposal or committed slot names that this member lacks or holds another
    value of: the dissemination fetches them."""
    prepared: list[PreparedCert] = attrs.field(factory=list)
    """Prepared certificates made (durable before the READY they allow leaves)."""
    dropped: Counter[str] = attrs.field(factory=Counter)
    """Inputs refused, by reason (peer misbehaviour or stale retransmissions)."""

    def send(self, destination: int | None, item: Message | Signed) -> None:
        """Queue ``item`` for ``destination`` (``None``: all other members)."""
        self.sends.append((destination, item))

    def drop(self, reason: str) -> None:
        """Count one refused input."""
        self.dropped[reason] += 1
