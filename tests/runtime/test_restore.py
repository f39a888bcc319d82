"""A node reopened on its data directory hands the core what it committed (``store.load()``
then ``core.restore``), before any input; what the core says on resuming is committed before
its frames leave; and the deliveries it makes again keep their indices, so readers go on
where they were."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from btob import DeliveryNotRetained
from btob.core.delivery import Delivery, MsgId
from btob.core.durable import DurableChanges, DurableState, SlotRecord
from btob.core.wire import Batch, BatchRef
from btob.runtime.node import SkippedDeliveries
from btob.runtime.store import DurableStore

from .ledger import KEYS, LedgerCore, RecordingTransport, ledger_node, slow_disk


class ResumingCore(LedgerCore):
    """A core that, on restore, re-delivers the slots above its snapshot with the indices
    they had (``first_index`` on), says one frame and commits one more key."""

    def __init__(self, first_index: int) -> None:
        super().__init__()
        self.first_index = first_index
        self.restored: list[DurableState] = []
        self.inputs_before_restore = 0

    def restore(self, state: DurableState, now: float) -> None:
        """Resume: deliver each restored slot's payloads again."""
        self.inputs_before_restore = self.frames_made
        self.restored.append(state)
        index = self.first_index
        for record in state.slots:
            for batch in record.batches:
                for offset, payload in enumerate(batch.payloads):
                    msg_id = MsgId(1, batch.first_counter + offset)
                    self._deliveries.append(Delivery(index, msg_id, 1, payload))
                    self.step_of[msg_id] = self.step
                    index += 1
        self.next_index = index
        self._frame()


def _slot(slot: int) -> SlotRecord:
    batch = Batch(slot * 2, (b"a%d" % slot, b"b%d" % slot))
    return SlotRecord(0, slot, (BatchRef(1, slot, batch.digest()),), (), (batch,))


async def test_a_reopened_node_restores_what_it_committed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stores = slow_disk(monkeypatch, 0.0)
    first = LedgerCore()
    with trio.fail_after(20):
        async with ledger_node(tmp_path, first, RecordingTransport(lambda: set())) as node:
            msg_id = await node.broadcast(b"p")
        # What the store holds: a step made as the node closed (a tick, on a loaded machine)
        # may be left uncommitted, and then none of its frames left either.
        committed = set(stores[0].committed)
        assert f"step/{first.step_of[msg_id]}" in committed and "step/0" in committed
        # what a member would have committed besides: delivered slots above its snapshot
        store = DurableStore(tmp_path, identity=_identity())
        store.commit(DurableChanges(delete=("step/0",), slots=(_slot(7), _slot(8))))
        store.close()
        core = ResumingCore(first_index=40)
        transport = RecordingTransport(lambda: stores[-1].committed)
        async with ledger_node(tmp_path, core, transport) as node:
            state = core.restored[0]
            assert set(state.entries) == committed - {"step/0"}
            assert state.slots == (_slot(7), _slot(8))
            assert core.inputs_before_restore == 0  # restored before any input
            stats = node.statistics()
            assert stats.slots_restored == 2
            assert node.delivered == 44  # the re-delivered slots keep their indices
            with pytest.raises(DeliveryNotRetained) as caught:
                async for _ in node.deliveries(0):
                    pass
            assert caught.value.oldest == 40
            # and says why: those deliveries are below the snapshot it resumed from
            assert node.skipped == (SkippedDeliveries(0, 40, "restore"),)
            seen = []
            async for delivery in node.deliveries(40):
                seen.append((delivery.index, delivery.payload))
                if len(seen) == 4:
                    break
            assert seen == [(40, b"a7"), (41, b"b7"), (42, b"a8"), (43, b"b8")]
            # the frame said on resuming left only once its key was committed
            assert transport.sent_steps == [0] and transport.early == []
            # and the next broadcast goes on from there
            msg_id = await node.broadcast(b"q")
            async for delivery in node.deliveries(44):
                assert delivery.msg_id == msg_id and delivery.index == 44
                break


async def test_a_node_resumed_from_a_snapshot_with_nothing_above_it_goes_on_from_there(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member restored at delivery index 40 that delivers nothing again (no slot above its
    snapshot) still continues at 40: the node says the run below is the snapshot's and its
    next delivery is 40 (it took index 40 for a skip without a transfer, and failed)."""
    slow_disk(monkeypatch, 0.0)
    async with ledger_node(tmp_path, LedgerCore(), RecordingTransport(lambda: set())) as node:
        await node.broadcast(b"p")
    core = ResumingCore(first_index=40)
    async with ledger_node(tmp_path, core, RecordingTransport(lambda: set())) as node:
        assert core.restored[0].slots == ()
        assert node.skipped == (SkippedDeliveries(0, 40, "restore"),)
        assert node.delivered == 40
        msg_id = await node.broadcast(b"q")
        with trio.fail_after(10):
            async for delivery in node.deliveries(40):
                assert (delivery.index, delivery.msg_id) == (40, msg_id)
                break


def _identity() -> dict[str, object]:
    """What :func:`open_core_node` records for the ledger node by default."""
    return {"cluster_id": b"ledger".hex(), "member": 0,
            "public_key": KEYS.registry.public_key(0).hex()}
