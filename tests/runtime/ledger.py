"""Test doubles for the node's group commit: a slow disk (a store whose commits sleep and
record what they committed), a core that has something to commit at every step, and a
transport that checks every frame it sends was committed first."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

import btob.runtime.node as node_module
from btob import ClusterConfig, MemberAddress, Node, Settings
from btob.core.contract import MemberStatistics, Outgoing
from btob.core.delivery import Delivery, MsgId
from btob.core.durable import DurableChanges, DurableState
from btob.runtime.node import open_core_node
from btob.runtime.store import DurableStore

from ..helpers import Keys

KEYS = Keys(4)


# -- a slow disk ------------------------------------------------------------------------------


class SlowStore(DurableStore):
    """A store whose every commit takes ``delay_s`` longer (a slow fsync), and which records
    the keys it committed - after the transaction, so a key in ``committed`` is durable."""

    delay_s = 0.0
    opened: list[SlowStore]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.committed: set[str] = set()
        self.commits = 0
        self.opened.append(self)

    def commit(self, changes: DurableChanges) -> None:
        """Sleep, then commit, then record."""
        time.sleep(self.delay_s)
        super().commit(changes)
        self.committed.update(key for key, _ in changes.put)
        self.commits += 1


def slow_disk(monkeypatch: pytest.MonkeyPatch, delay_s: float) -> list[SlowStore]:
    """Make every node opened from now on commit through a :class:`SlowStore`; the list
    fills with the stores as nodes open them."""
    opened: list[SlowStore] = []
    store = type("Slow", (SlowStore,), {"delay_s": delay_s, "opened": opened})
    monkeypatch.setattr(node_module, "DurableStore", store)
    return opened


# -- a core that has something to commit at every step ----------------------------------------


class LedgerCore:
    """A core whose every step changes its durable state (it puts ``step/K`` for step K), and
    whose frames and deliveries name the step that made them, so a test can tell whether they
    left before that step was committed. Each frame received and each payload submitted sends
    one frame of ``frame_bytes``; each payload is delivered at once."""

    def __init__(self, *, frame_bytes: int = 16) -> None:
        self.member = 0
        self.settings = Settings()
        self.view = 0
        self.step = 0
        """The step now being made: the number of ``take_durable`` calls so far."""
        self.step_of: dict[MsgId, int] = {}
        self.frames_made = 0
        self.bytes_made = 0
        self.step_bytes_max = 0
        self._step_bytes = 0
        self._frame_bytes = frame_bytes
        self._frames: list[Outgoing] = []
        self._deliveries: list[Delivery] = []
        self._submitted = 0
        self.next_index = 0
        """The index of the next delivery."""

    def _frame(self) -> None:
        head = b"%d|" % self.step
        self._frames.append(Outgoing(1, head + bytes(max(self._frame_bytes - len(head), 0))))

    def submit(self, payload: bytes, now: float) -> MsgId:
        """Accept and deliver ``payload``."""
        msg_id = MsgId(0, self._submitted)
        self._submitted += 1
        self.step_of[msg_id] = self.step
        self._deliveries.append(Delivery(self.next_index, msg_id, 0, payload))
        self.next_index += 1
        self._frame()
        return msg_id

    def receive(self, frame: bytes, now: float, *, source: int | None = None) -> None:
        """Answer with a frame."""
        self._frame()

    def tick(self, now: float) -> None:
        """Nothing to say: only what the test feeds in makes frames."""

    def take_outputs(self) -> tuple[list[Outgoing], list[Delivery]]:
        """What this step made."""
        frames, self._frames = self._frames, []
        deliveries, self._deliveries = self._deliveries, []
        size = sum(len(out.frame) for out in frames)
        self.frames_made += len(frames)
        self.bytes_made += size
        self.step_bytes_max = max(self.step_bytes_max, size)
        return frames, deliveries

    def take_durable(self) -> DurableChanges:
        """This step's key; the next step begins."""
        key = f"step/{self.step}"
        self.step += 1
        return DurableChanges(put=((key, b"said"),))

    def restore(self, state: DurableState, now: float) -> None:
        """Nothing to resume (each test starts on an empty directory)."""
        assert not state

    def statistics(self) -> MemberStatistics:
        """Counters: only what the node reads."""
        return MemberStatistics(
            member=0, payloads_submitted=self._submitted, deliveries=self.next_index,
            slots_delivered=0, messages_sent=self.frames_made, bytes_sent=self.bytes_made,
            frames_received=0, signatures_made=0, signatures_verified=0, verify_cache_hits=0,
            dropped={}, evidence=(), brb_instances=0, open_slots=0, pending_payloads=0,
            early_payloads=0, batches_held=0, view=0, view_changes_started=0,
            stable_checkpoint=0, proofs_held=0, checkpoint_state_held=0,
            history_slots_held=0, view_changes_held=0, slots_from_proofs=0,
            slots_from_segments=0)


class RecordingTransport:
    """Frames in from a channel; frames out checked against what the store committed."""

    def __init__(self, committed: Callable[[], set[str]]) -> None:
        self._committed = committed
        self.inbound, self._inbox = trio.open_memory_channel[tuple[int, bytes]](10_000)
        self.sent_steps: list[int] = []
        self.sent_bytes = 0
        self.early: list[int] = []
        """Steps with a frame sent before the step was committed."""
        self.on_send: Callable[[], None] = lambda: None

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Record the frame, and whether its step was durable."""
        step = int(frame.split(b"|", 1)[0])
        if f"step/{step}" not in self._committed():
            self.early.append(step)
        self.sent_steps.append(step)
        self.sent_bytes += len(frame)
        self.on_send()
        return True

    async def receive(self) -> tuple[int, bytes]:
        """The next frame the test fed in."""
        return await self._inbox.receive()


@asynccontextmanager
async def ledger_node(data: Path, core: LedgerCore,
                       transport: RecordingTransport) -> AsyncIterator[Node]:
    config = ClusterConfig(b"ledger", KEYS.registry,
                           tuple(MemberAddress("memory", 1) for _ in range(4)))
    async with open_core_node(core, config, KEYS.keys[0], transport=transport,
                              data_dir=data, tick_interval_s=0.01) as node:
        yield node
