"""The application a member may run: a deterministic state machine fed the total order.

A member with an application applies each delivery to it as the delivery is made, takes its
snapshot at every checkpoint boundary, and signs the snapshot's root in its CHECKPOINT; a
member that starts from a snapshot (after a restart, or by state transfer) restores the
application from it. Without an application the snapshot holds the protocol state only.
"""

from __future__ import annotations

from typing import Protocol

from btob.core.delivery import Delivery

__all__ = ["StateMachine"]


class StateMachine(Protocol):
    """A replicated application. It must be deterministic: the same deliveries from the same
    snapshot give the same snapshot bytes at every member, or the member whose state differs
    from a stable checkpoint stops with :class:`~btob.StateDiverged`."""

    def apply(self, delivery: Delivery) -> bytes | None:
        """Apply the next delivery of the total order; for a client's request
        (``delivery.client``) a returned result goes back to the client as this member's
        signed REPLY (the same at every honest member, since the application is
        deterministic). Return None for no reply."""

    def snapshot(self) -> bytes:
        """The whole state as bytes (canonical: equal states give equal bytes)."""

    def restore(self, snapshot: bytes) -> None:
        """Replace the whole state by one :meth:`snapshot` returned (``b""``: the initial
        state, before any delivery)."""
