"""The dissemination interface: the batch bounds every variant applies, and the defaults of
the hooks where ordering meets dissemination."""

from __future__ import annotations

import pytest

from btob.core.dissemination import BRB_KINDS, Dissemination, batch_fits
from btob.core.effects import Outbox
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import Batch, BatchRef, Echo, Order

from ..helpers import Keys

SETTINGS = Settings(batch_payloads_max=3, batch_bytes_max=10, payload_bytes_max=6)


def test_a_batch_fits_within_every_bound_and_at_them() -> None:
    assert batch_fits(Batch(0, (b"x",)), SETTINGS)
    assert batch_fits(Batch(0, (b"aaaaaa", b"bb", b"cc")), SETTINGS)  # 3 payloads, 10 bytes
    assert batch_fits(Batch(0, (b"",)), SETTINGS)  # an empty payload is a payload


@pytest.mark.parametrize(("payloads", "why"), [
    ((), "no payload"),
    ((b"a", b"b", b"c", b"d"), "too many payloads"),
    ((b"x" * 7,), "a payload too large"),
    ((b"aaaaaa", b"bbbbb"), "too many bytes"),
])
def test_a_batch_beyond_a_bound_does_not_fit(payloads: tuple[bytes, ...], why: str) -> None:
    assert not batch_fits(Batch(0, payloads), SETTINGS), why


def test_the_reliable_broadcasts_are_bracha_and_signed_echo() -> None:
    assert BRB_KINDS == ("bracha", "echo")


def _base() -> tuple[Dissemination, Outbox]:
    outbox = Outbox()
    return Dissemination(member=1, quorums=Quorums.for_cluster(4), settings=SETTINGS,
                         outbox=outbox), outbox


def test_the_dissemination_itself_must_be_provided_by_a_variant() -> None:
    core, _ = _base()
    signed = Keys(4).sign(2, Echo(2, 0, bytes(32)))
    for call in (lambda: core.broadcast(0, Batch(0, (b"x",)), 0.0),
                 lambda: core.on_message(signed, 0.0), lambda: core.forget(2, 0),
                 lambda: core.retransmit(0.0), core.instances):
        with pytest.raises(NotImplementedError):
            call()


def test_the_hooks_default_to_doing_nothing() -> None:
    core, outbox = _base()
    keys = Keys(4)
    ref = BatchRef(2, 0, bytes(32))
    order = Order(0, 0, (ref,))
    assert core.member == 1 and core.settings is SETTINGS and core.outbox is outbox
    assert not core.needless(keys.sign(2, Echo(2, 0, bytes(32))))  # every signature is checked
    assert core.admit_order(order)
    assert not core.admit_order(Order(0, 0, (ref,), (b"frame",)))  # only UB's ORDERs carry
    assert core.outgoing_order(order) is order
    core.on_order(keys.sign(0, order), 0)
    core.want(ref, 0.0)
    core.view_installed(0.0)
    assert outbox == Outbox()  # nothing sent, dropped, delivered or proven
