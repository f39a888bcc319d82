"""Direct dissemination, driven directly with an Outbox: UB's hand-over to the sequencer and
the checks of the batches its ORDERs carry; UUB's slot requests and grant relay."""

from __future__ import annotations

import attrs

from btob.core.direct import DirectDissemination, GrantedDissemination
from btob.core.effects import Outbox
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import (
    Batch,
    BatchRef,
    Echo,
    Fetch,
    Order,
    Request,
    Send,
    Signed,
)

from ..helpers import Keys

N = 4
SETTINGS = Settings(brb_window=4, batch_payloads_max=4, retransmit_interval_s=0.25,
                    view_change_timeout_s=1.0)
KEYS = Keys(N)


@attrs.define
class Rig:
    core: DirectDissemination
    outbox: Outbox
    leader: list[int]
    lows: dict[int, int]


def _rig(member: int = 1, leader: int = 0, cls: type[DirectDissemination] = DirectDissemination,
         ) -> Rig:
    outbox = Outbox()
    leaders = [leader]
    lows: dict[int, int] = {}
    core = cls(member=member, quorums=Quorums.for_cluster(N), settings=SETTINGS, outbox=outbox,
               verify=KEYS.verifier().verify, leader=lambda: leaders[0],
               ordered_low=lambda origin: lows.get(origin, 0),
               sign=lambda send: KEYS.sign(member, send))
    return Rig(core, outbox, leaders, lows)


def _send(origin: int, counter: int, *payloads: bytes) -> Signed:
    return KEYS.sign(origin, Send(counter, Batch(counter, payloads or (b"%d-%d" % (origin,
                                                                                   counter),))))


def _ref(signed: Signed) -> BatchRef:
    message = signed.message
    assert isinstance(message, Send)
    return BatchRef(signed.sender, message.counter, message.batch.digest())


def _carrying(*sends: Signed, frames: tuple[bytes, ...] | None = None) -> Order:
    return Order(0, 0, tuple(_ref(s) for s in sends),
                 tuple(s.to_frame() for s in sends) if frames is None else frames)


def _delivered(rig: Rig) -> list[tuple[int, int, bytes]]:
    return [(d.origin, d.counter, d.digest) for d in rig.outbox.brb_deliveries]


# -- UB: the hand-over ----------------------------------------------------------------------


def test_an_origin_hands_its_batch_to_the_sequencer_only_and_keeps_it() -> None:
    rig = _rig(member=2)
    batch = Batch(0, (b"p",))
    rig.core.broadcast(0, batch, 0.0)
    [(dest, item)] = rig.outbox.sends
    assert dest == 0 and isinstance(item, Signed) and item.message == Send(0, batch)
    assert _delivered(rig) == [(2, 0, batch.digest())]
    assert rig.core.instances() == 1


def test_the_sequencer_keeps_its_own_batch_without_sending_it() -> None:
    rig = _rig(member=0)
    rig.core.broadcast(0, Batch(0, (b"p",)), 0.0)
    assert rig.outbox.sends == [] and len(rig.outbox.brb_deliveries) == 1


def test_the_sequencers_order_carries_the_signed_sends_it_names() -> None:
    rig = _rig(member=0)
    handed = [_send(1, 0), _send(2, 0)]
    for signed in handed:
        rig.core.on_message(signed, 0.0)
    order = Order(0, 0, tuple(_ref(s) for s in handed))
    outgoing = rig.core.outgoing_order(order)
    assert outgoing.refs == order.refs
    assert outgoing.carried == tuple(s.to_frame() for s in handed)  # byte for byte
    assert rig.core.outgoing_order(outgoing) is outgoing  # already carrying: left alone


def test_a_carried_batch_signed_by_its_origin_is_admitted_and_held() -> None:
    rig = _rig(member=3)
    signed = _send(1, 0)
    assert rig.core.admit_order(_carrying(signed))
    assert _delivered(rig) == [(1, 0, _ref(signed).digest)]


def test_carried_batches_that_do_not_prove_what_the_order_names_are_refused() -> None:
    good = _send(1, 0)
    ref = _ref(good)
    other_origin = KEYS.sign(2, good.message)  # the very same batch, from another origin
    forged = Signed(1, good.message, good.body, bytes(64))
    by_another = Signed(1, good.message, good.body, KEYS.sign(2, good.message).signature)
    not_a_send = KEYS.sign(1, Echo(1, 0, ref.digest))
    cases = {
        "no frames": Order(0, 0, (ref,)),
        "a frame too many": _carrying(good, frames=(good.to_frame(), good.to_frame())),
        "garbage": _carrying(good, frames=(b"\x00garbage",)),
        "not a SEND": _carrying(good, frames=(not_a_send.to_frame(),)),
        "another origin's SEND": Order(0, 0, (ref,), (other_origin.to_frame(),)),
        "a bad signature": _carrying(good, frames=(forged.to_frame(),)),
        "signed by another member": _carrying(good, frames=(by_another.to_frame(),)),
        "another counter": Order(0, 0, (BatchRef(1, 1, ref.digest),), (good.to_frame(),)),
        "another digest": Order(0, 0, (BatchRef(1, 0, bytes(32)),), (good.to_frame(),)),
    }
    for name, order in cases.items():
        rig = _rig(member=3)
        assert not rig.core.admit_order(order), name
        assert rig.outbox.brb_deliveries == [], name


def test_held_batches_are_bounded_by_the_window_and_the_batch_bounds() -> None:
    rig = _rig(member=0)
    assert not rig.core.accept(_send(1, SETTINGS.brb_window))
    assert rig.outbox.dropped["ub-beyond-window"] == 1
    assert rig.core.accept(_send(1, SETTINGS.brb_window - 1))
    too_many = KEYS.sign(1, Send(0, Batch(0, (b"x",) * (SETTINGS.batch_payloads_max + 1))))
    assert not rig.core.accept(too_many)
    assert rig.outbox.dropped["ub-batch-out-of-bounds"] == 1
    rig.lows[2] = 3  # batches of origin 2 below 3 are ordered already
    assert not rig.core.accept(_send(2, 2))
    assert rig.core.accept(_send(2, 3 + SETTINGS.brb_window - 1))  # the window moved
    assert rig.core.instances() == 2


def test_an_equivocated_batch_is_evidence_and_only_the_order_replaces_the_held_value() -> None:
    rig = _rig(member=0)
    first, second = _send(1, 0, b"one"), _send(1, 0, b"two")
    assert rig.core.accept(first)
    assert rig.core.accept(first)  # the same value again: still held, no evidence
    assert rig.outbox.evidence == []
    assert not rig.core.accept(second)  # handed over: the first value stays
    assert [(e.member, e.first, e.second) for e in rig.outbox.evidence] == [(1, first, second)]
    assert rig.core.carried((_ref(first),)) == (first.to_frame(),)
    assert rig.core.admit_order(_carrying(second))  # an ORDER names the value: it replaces
    assert rig.core.carried((_ref(second),)) == (second.to_frame(),)
    assert _delivered(rig)[-1] == (1, 0, _ref(second).digest)


def test_a_member_lacking_a_named_batch_fetches_it_once_and_takes_that_value() -> None:
    rig = _rig(member=3)
    held, named = _send(1, 0, b"held"), _send(1, 0, b"named")
    rig.core.accept(held)
    rig.core.want(_ref(held), 0.0)
    assert rig.outbox.sends == []  # it holds that value already
    rig.core.want(_ref(named), 0.0)
    rig.core.want(_ref(named), 0.1)
    assert rig.outbox.sends == [(None, Fetch(1, 0, _ref(named).digest))]  # once, to everyone
    assert rig.core.accept(named)  # the wanted value replaces the held one
    assert _delivered(rig)[-1] == (1, 0, _ref(named).digest)


def test_a_fetch_is_answered_only_with_the_value_it_names() -> None:
    rig = _rig(member=0)
    held = _send(1, 0)
    rig.core.accept(held)
    rig.core.on_message(KEYS.sign(2, Fetch(1, 0, bytes(32))), 0.0)
    rig.core.on_message(KEYS.sign(2, Fetch(1, 1, _ref(held).digest)), 0.0)
    assert rig.outbox.sends == []
    rig.core.on_message(KEYS.sign(2, Fetch(1, 0, _ref(held).digest)), 0.0)
    assert rig.outbox.sends == [(2, held)]


def test_other_kinds_are_dropped() -> None:
    rig = _rig()
    rig.core.on_message(KEYS.sign(2, Echo(2, 0, bytes(32))), 0.0)
    assert rig.outbox.dropped["ub-unexpected-kind"] == 1
    assert not rig.core.needless(KEYS.sign(2, Echo(2, 0, bytes(32))))


def test_unordered_own_batches_go_to_the_sequencer_again_then_to_everyone() -> None:
    rig = _rig(member=2)
    rig.core.broadcast(0, Batch(0, (b"p",)), 0.0)
    rig.outbox.sends.clear()
    rig.core.retransmit(0.2)
    assert rig.outbox.sends == []  # inside the retransmit interval
    rig.core.retransmit(0.25)
    assert [dest for dest, _ in rig.outbox.sends] == [0]
    rig.outbox.sends.clear()
    rig.core.retransmit(1.0)  # the view-change timeout passed: everyone learns of the work
    assert [dest for dest, _ in rig.outbox.sends] == [None]


def test_a_new_view_hands_unordered_own_batches_to_its_sequencer() -> None:
    rig = _rig(member=2)
    rig.core.broadcast(0, Batch(0, (b"a",)), 0.0)
    rig.core.broadcast(1, Batch(1, (b"b",)), 0.0)
    rig.core.forget(2, 0)  # batch 0 was ordered and delivered
    rig.outbox.sends.clear()
    rig.leader[0] = 1
    rig.core.view_installed(0.5)
    assert [(dest, item.message) for dest, item in rig.outbox.sends] == [  # type: ignore[union-attr]
        (1, Send(1, Batch(1, (b"b",))))]
    rig.outbox.sends.clear()
    rig.core.retransmit(10.0)
    assert len(rig.outbox.sends) == 1  # the forgotten batch is not resent
    assert rig.core.instances() == 1


# -- UUB: requests and grants ---------------------------------------------------------------


def test_a_uub_origin_asks_the_sequencer_for_a_slot_instead_of_handing_over() -> None:
    for member in (0, 2):  # the sequencer asks itself too
        rig = _rig(member=member, cls=GrantedDissemination)
        batch = Batch(0, (b"p",))
        rig.core.broadcast(0, batch, 0.0)
        assert rig.outbox.sends == [(0, Request(0, batch.digest()))]
        assert len(rig.outbox.brb_deliveries) == 1


def test_a_grant_from_the_sequencer_is_relayed_with_the_batch_once_never_to_oneself() -> None:
    rig = _rig(member=2, cls=GrantedDissemination)
    batch = Batch(0, (b"p",))
    rig.core.broadcast(0, batch, 0.0)
    rig.outbox.sends.clear()
    grant = KEYS.sign(0, Order(0, 5, (BatchRef(2, 0, batch.digest()),)))
    rig.core.on_order(grant, 0)
    sends = [(dest, item) for dest, item in rig.outbox.sends]
    assert sorted(dest for dest, item in sends if item is grant) == [0, 1, 3]
    relayed = [(dest, item) for dest, item in sends if item is not grant]
    assert sorted(dest for dest, _ in relayed) == [0, 1, 3]
    assert all(isinstance(item, Signed) and item.message == Send(0, batch) for _, item in relayed)
    rig.outbox.sends.clear()
    rig.core.on_order(grant, 0)
    assert rig.outbox.sends == []  # one relay per (view, slot)


def test_grants_not_from_the_sequencer_or_for_others_batches_are_not_relayed() -> None:
    rig = _rig(member=2, cls=GrantedDissemination)
    batch = Batch(0, (b"p",))
    rig.core.broadcast(0, batch, 0.0)
    rig.outbox.sends.clear()
    mine = (BatchRef(2, 0, batch.digest()),)
    rig.core.on_order(KEYS.sign(1, Order(0, 5, mine)), 0)  # member 1 is not the leader
    rig.core.on_order(KEYS.sign(0, Order(0, 6, (BatchRef(3, 0, bytes(32)),))), 0)
    assert rig.outbox.sends == []


def test_uub_orders_carry_nothing() -> None:
    rig = _rig(member=3, cls=GrantedDissemination)
    signed = _send(1, 0)
    assert not rig.core.admit_order(_carrying(signed))
    order = Order(0, 0, (_ref(signed),))
    assert rig.core.admit_order(order)
    assert rig.core.outgoing_order(order) is order
