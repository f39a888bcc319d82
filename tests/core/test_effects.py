"""What the cores ask their driver for: the Outbox, evidence and BRB deliveries."""

from __future__ import annotations

import attrs
import pytest

from btob.core.effects import BrbDelivery, Evidence, Outbox
from btob.core.wire import Batch, Echo, Status

from ..helpers import Keys


def test_an_outbox_starts_empty_and_outboxes_share_nothing() -> None:
    a, b = Outbox(), Outbox()
    assert (a.sends, a.brb_deliveries, a.evidence, a.wanted, dict(a.dropped)) == ([], [], [],
                                                                                    [], {})
    a.send(None, Status(1))
    a.drop("x")
    assert b.sends == [] and b.dropped["x"] == 0


def test_sends_keep_their_order_and_destination() -> None:
    keys = Keys(4)
    outbox = Outbox()
    signed = keys.sign(2, Echo(2, 0, bytes(32)))
    outbox.send(None, Status(1))
    outbox.send(3, signed)
    outbox.send(0, Status(2))
    assert outbox.sends == [(None, Status(1)), (3, signed), (0, Status(2))]


def test_drops_are_counted_by_reason() -> None:
    outbox = Outbox()
    for reason in ("a", "b", "a"):
        outbox.drop(reason)
    assert outbox.dropped == {"a": 2, "b": 1}


def test_evidence_names_the_member_and_the_kind_it_signed_twice() -> None:
    keys = Keys(4)
    first = keys.sign(3, Echo(1, 0, bytes(32)))
    second = keys.sign(3, Echo(1, 0, bytes([1]) * 32))
    evidence = Evidence(3, first, second)
    assert evidence.describe() == "member 3 signed two conflicting brb.echo messages"


def test_a_brb_delivery_is_a_value() -> None:
    batch = Batch(0, (b"p",))
    delivery = BrbDelivery(1, 0, batch, batch.digest())
    assert delivery == BrbDelivery(1, 0, Batch(0, (b"p",)), batch.digest())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        delivery.counter = 1  # type: ignore[misc]
