"""Floods past every bound a peer can push against: the held state stays within its setting.

A Byzantine member signs every flooding message with its real key, so nothing is rejected at
the signature check: the bounds alone must hold the line.
"""

from __future__ import annotations

from btob import Member, Settings
from btob.core.wire import Batch, Checkpoint, Echo, Order, OrderEcho, Send, Status, ViewChange

from ..helpers import Keys

SETTINGS = Settings(brb_window=8, slot_window=16, checkpoint_interval=4, view_window=4,
                    log_retention_slots=64)
BYZANTINE = 3


def _target(keys: Keys) -> Member:
    return Member(member=1, registry=keys.registry, signing_key=keys.keys[1],
                  cluster_id=keys.cluster_id, settings=SETTINGS)


def _flood(keys: Keys, node: Member, messages: list[object], sender: int = BYZANTINE) -> None:
    for message in messages:
        node.receive(keys.sign(sender, message).to_frame(), 0.0)  # type: ignore[arg-type]
        node.take_outputs()


def test_future_brb_instances_are_bounded_by_the_window() -> None:
    keys = Keys(4)
    node = _target(keys)
    _flood(keys, node, [Send(c, Batch(c, (b"x",))) for c in range(2000)])
    _flood(keys, node, [Echo(2, c, bytes(32)) for c in range(2000)])
    state = node.held_state()
    assert state["brb_instances"] <= 2 * SETTINGS.brb_window
    assert node.statistics().dropped["brb-beyond-window"] >= 2 * (2000 - SETTINGS.brb_window)


def test_future_slots_are_bounded_by_the_watermark_window() -> None:
    keys = Keys(4)
    node = _target(keys)
    ref_batch = Batch(0, (b"x",))
    from btob.core.wire import BatchRef

    ref = BatchRef(2, 0, ref_batch.digest())
    _flood(keys, node, [Order(0, s, (ref,)) for s in range(3000)], sender=0)
    _flood(keys, node, [OrderEcho(0, s, bytes(32)) for s in range(3000)])
    assert node.held_state()["open_slots"] <= SETTINGS.slot_window
    assert node.statistics().dropped["order-beyond-window"] >= 2 * (3000 - SETTINGS.slot_window)


def test_future_views_are_bounded() -> None:
    keys = Keys(4)
    node = _target(keys)
    _flood(keys, node, [ViewChange(v, None, ()) for v in range(1, 500)])
    _flood(keys, node, [ViewChange(v, None, ()) for v in range(1, 500)], sender=2)
    state = node.held_state()
    assert state["view_changes"] <= keys.registry.n  # one per member, the highest view
    assert node.statistics().dropped["viewchange-beyond-window"] >= 2 * (499 - SETTINGS.view_window)
    assert node.view == 0  # two members cannot move a correct member (f+1 = 2 would: see below)


def test_f_plus_one_view_changes_make_a_member_join() -> None:
    keys = Keys(4)
    node = _target(keys)
    _flood(keys, node, [ViewChange(2, None, ())], sender=2)
    assert node.statistics().view_changes_started == 0
    _flood(keys, node, [ViewChange(3, None, ())], sender=3)
    assert node.statistics().view_changes_started == 1  # joined the smaller one: view 2


def test_future_checkpoints_are_bounded() -> None:
    keys = Keys(4)
    node = _target(keys)
    k = SETTINGS.checkpoint_interval
    _flood(keys, node, [Checkpoint(k * i, bytes([i % 256]) * 32) for i in range(1, 3000)])
    _flood(keys, node, [Checkpoint(3, bytes(32)), Checkpoint(5, bytes(32))])
    assert node.held_state()["checkpoint_state"] <= SETTINGS.slot_window // k + 2
    dropped = node.statistics().dropped
    assert dropped["checkpoint-beyond-window"] > 2900
    assert dropped["checkpoint-stale-or-misaligned"] == 2


def test_status_floods_are_answered_at_most_once_per_interval() -> None:
    keys = Keys(4)
    node = _target(keys)
    for _ in range(100):
        node.receive(keys.sign(BYZANTINE, Status(0, 5)).to_frame(), 0.0)
    frames, _ = node.take_outputs()
    assert frames == []  # nothing to serve: it is not behind, and no NEW-VIEW is held


def test_evidence_is_one_entry_per_member() -> None:
    keys = Keys(4)
    node = _target(keys)
    messages = [Echo(2, 0, bytes([i]) * 32) for i in range(50)]
    _flood(keys, node, messages)
    assert node.held_state()["evidence"] == 1
    assert node.statistics().evidence == (BYZANTINE,)


def test_messages_of_future_views_are_held_boundedly() -> None:
    keys = Keys(4)
    settings = Settings(future_view_messages_max=32, view_window=4)
    node = Member(member=1, registry=keys.registry, signing_key=keys.keys[1],
                  cluster_id=keys.cluster_id, settings=settings)
    _flood(keys, node, [OrderEcho(v, s, bytes(32)) for v in (1, 2, 3) for s in range(100)])
    _flood(keys, node, [OrderEcho(9, 0, bytes(32))])  # beyond the view window: not held
    assert node.held_state()["early_view_messages"] == settings.future_view_messages_max


def test_oversized_frames_are_dropped_unread() -> None:
    keys = Keys(4)
    node = _target(keys)
    node.receive(bytes(SETTINGS.frame_bytes_max + 1), 0.0)
    assert node.statistics().dropped["oversized-frame"] == 1
