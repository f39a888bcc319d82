"""The signing journal: one message per instance, whatever a member asks to sign later."""

from __future__ import annotations

import pytest

from btob.core.journal import SigningJournal, conflict_key
from btob.core.wire import (
    Batch,
    Checkpoint,
    Echo,
    Fetch,
    NewView,
    Order,
    OrderEcho,
    OrderReady,
    PreparedCert,
    Ready,
    Request,
    Send,
    Status,
    ViewChange,
    WireLimits,
)
from tests.helpers import Keys

KEYS = Keys(4)
D1, D2 = b"\x01" * 32, b"\x02" * 32


def _journal() -> SigningJournal:
    return SigningJournal(1, KEYS.signers[1].sign)


@pytest.mark.parametrize(("message", "key"), [
    (Send(7, Batch(0, (b"x",))), ("send", 1, 7)),
    (Echo(2, 7, D1), ("echo", 2, 7)),
    (Ready(2, 7, D1), ("ready", 2, 7)),
    (Request(7, D1), ("request", 1, 7)),
    (Order(3, 9, ()), ("order", 3, 9)),
    (OrderEcho(3, 9, D1), ("oecho", 3, 9)),
    (OrderReady(3, 9, D1), ("oready", 3, 9)),
    (Checkpoint(16, D1), ("checkpoint", 16, 0)),
    (ViewChange(4, None, ()), ("viewchange", 4, 0)),
    (NewView(4, (), ()), ("newview", 4, 0)),
    (Fetch(2, 7, D1), None),
    (Status(3, 0), None),
])
def test_each_kind_names_the_instance_it_may_speak_about_once(message: object,
                                                              key: object) -> None:
    assert conflict_key(1, message) == key  # type: ignore[arg-type]


def test_a_second_message_for_an_instance_gets_the_first_one_back() -> None:
    journal = _journal()
    first = journal.sign(OrderEcho(0, 5, D1))
    again = journal.sign(OrderEcho(0, 5, D2))  # would contradict the first ECHO
    assert again == first and isinstance(again.message, OrderEcho)
    assert again.message.digest == D1
    assert journal.sign(OrderEcho(0, 5, D1)) == first  # a retransmission, not re-signed
    assert (journal.repeated, journal.refused) == (2, 1)
    assert journal.sign(OrderReady(0, 5, D2)).message.digest == D2  # another kind: its own


@pytest.mark.parametrize(("first", "conflicting"), [
    (Send(7, Batch(0, (b"x",))), Send(7, Batch(0, (b"y",)))),
    (Echo(2, 7, D1), Echo(2, 7, D2)),
    (Ready(2, 7, D1), Ready(2, 7, D2)),
    (Request(7, D1), Request(7, D2)),
    (Order(3, 9, ()), Order(3, 9, (), (b"carried",))),
    (OrderEcho(3, 9, D1), OrderEcho(3, 9, D2)),
    (OrderReady(3, 9, D1), OrderReady(3, 9, D2)),
    (Checkpoint(16, D1), Checkpoint(16, D2)),
    (ViewChange(4, None, ()), ViewChange(4, None, (PreparedCert(3, 9, (), ()),))),
    (NewView(4, (), ()), NewView(4, (), (), (2,))),
], ids=lambda m: type(m).KIND)
def test_every_kind_that_can_contradict_is_durable_before_it_leaves(first: object,
                                                                    conflicting: object) -> None:
    """Whatever a member signs with a conflict key is handed out as a durable change with
    the signature, and a restart repeats it: no kind may skip the journal."""
    journal = _journal()
    signed = journal.sign(first)  # type: ignore[arg-type]
    put, _ = journal.take_changes()
    key = conflict_key(1, first)  # type: ignore[arg-type]
    assert key is not None and put == {f"sig/{key[0]}/{key[1]}/{key[2]}": signed.to_frame()}
    restarted = _journal()
    restarted.load(put, WireLimits())
    assert restarted.sign(conflicting) == signed  # type: ignore[arg-type]


def test_signed_messages_are_handed_out_as_changes_once_and_forgotten_as_deletes() -> None:
    journal = _journal()
    echo = journal.sign(Echo(2, 7, D1))
    journal.sign(Status(0, 0))  # no conflict key: nothing to keep
    put, delete = journal.take_changes()
    assert put == {"sig/echo/2/7": echo.to_frame()} and delete == set()
    assert journal.take_changes() == ({}, set())
    assert journal.forget(lambda key: key[0] == "echo") == 1
    assert journal.take_changes() == ({}, {"sig/echo/2/7"})
    fresh = journal.sign(Echo(2, 7, D2))  # forgotten: may be signed anew
    assert fresh.message == Echo(2, 7, D2)


def test_a_restarted_journal_repeats_what_the_old_one_signed() -> None:
    old = _journal()
    order = old.sign(Order(1, 3, ()))
    put, _ = old.take_changes()
    new = _journal()
    new.load({**put, "pay/0": b"not a signed message"}, WireLimits())
    assert new.sign(Order(1, 3, (), ())) == order
    assert new.refused == 0 and new.held() == 1
    assert [s.message for s in new.signed("order")] == [order.message]
    assert new.take_changes() == ({}, set())  # what was loaded is on disk already
