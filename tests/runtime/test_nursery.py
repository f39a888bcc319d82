"""Errors arrive as themselves: what the block of ``open_local_cluster``, ``open_node`` or
``open_core_node`` raises is not wrapped in a group per node, while failures of a node's own
tasks still propagate (as trio's group)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from btob import ClusterConfig, MemberAddress, Node, open_core_node, open_node
from btob.crypto import KeyRegistry, SigningKey
from btob.runtime.nursery import open_background_nursery
from btob.testing import MemoryNetwork, open_local_cluster

N = 4
KEYS = [SigningKey.from_seed(hashlib.sha256(b"nursery/%d" % i).digest()) for i in range(N)]
CONFIG = ClusterConfig(b"nursery", KeyRegistry(tuple(k.public_key() for k in KEYS)),
                       tuple(MemberAddress("memory", 1) for _ in range(N)))


def _fail(message: str = "raised by the block") -> None:
    raise ValueError(message)


@asynccontextmanager
async def _one_memory_node() -> AsyncIterator[Node]:
    async with open_node(CONFIG, 0, KEYS[0], transport=MemoryNetwork(N).endpoints[0]) as node:
        yield node


@asynccontextmanager
async def _one_core_node() -> AsyncIterator[Node]:
    from btob import Member

    member = Member(member=0, registry=CONFIG.registry, signing_key=KEYS[0],
                    cluster_id=CONFIG.cluster_id, f=CONFIG.f)
    async with open_core_node(member, CONFIG, KEYS[0],
                              transport=MemoryNetwork(N).endpoints[0]) as node:
        yield node


@asynccontextmanager
async def _cluster() -> AsyncIterator[object]:
    async with open_local_cluster(n=N) as cluster:
        yield cluster


OPENERS = {"open_local_cluster": _cluster, "open_node": _one_memory_node,
           "open_core_node": _one_core_node}


@pytest.mark.parametrize("opener", OPENERS)
async def test_an_error_of_the_block_arrives_as_itself(opener: str) -> None:
    with pytest.raises(ValueError, match="raised by the block") as info:
        async with OPENERS[opener]():
            await trio.sleep(0.01)
            _fail()
    assert type(info.value) is ValueError
    assert info.traceback[-1].name == "_fail"  # the original traceback, down to the raise
    assert info.value.__context__ is None  # no group hiding behind it either


@pytest.mark.parametrize("opener", OPENERS)
async def test_cancellation_of_the_block_is_not_swallowed(opener: str) -> None:
    seen: list[BaseException] = []
    with trio.move_on_after(0.05) as scope:
        try:
            async with OPENERS[opener]():
                await trio.sleep_forever()
        except BaseException as exc:
            seen.append(exc)
            raise
    assert scope.cancelled_caught
    assert len(seen) == 1 and isinstance(seen[0], trio.Cancelled)


@pytest.mark.parametrize("opener", OPENERS)
async def test_keyboard_interrupt_in_the_block_arrives_as_itself(opener: str) -> None:
    with pytest.raises(KeyboardInterrupt):
        async with OPENERS[opener]():
            raise KeyboardInterrupt


async def test_a_group_raised_by_the_block_arrives_as_that_group() -> None:
    group = ExceptionGroup("the block's own", [ValueError("a"), KeyError("b")])
    with pytest.raises(ExceptionGroup) as info:
        async with _one_memory_node():
            raise group
    assert info.value is group


class _BrokenTransport:
    """A transport whose receive fails (the node's receive task), and optionally whose own
    task fails too."""

    def __init__(self, *, run_fails: bool = False, fail_on_cancel: bool = False) -> None:
        self.fail_on_cancel = fail_on_cancel
        if run_fails:
            self.run = self._run

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        return True

    async def receive(self) -> tuple[int, bytes]:
        if self.fail_on_cancel:
            try:
                await trio.sleep_forever()
            finally:
                raise OSError("the link broke while closing")
        raise OSError("the link broke")  # before any checkpoint: even if already cancelled

    async def _run(self) -> None:
        raise RuntimeError("the transport's own task failed")


async def test_a_failure_of_a_node_task_still_propagates() -> None:
    with trio.fail_after(10), pytest.raises(ExceptionGroup) as info:
        async with open_node(CONFIG, 0, KEYS[0], transport=_BrokenTransport()):
            await trio.sleep_forever()
    assert info.group_contains(OSError, match="the link broke")


async def test_several_failures_of_node_tasks_propagate_as_one_group() -> None:
    with trio.fail_after(10), pytest.raises(ExceptionGroup) as info:
        async with open_node(CONFIG, 0, KEYS[0], transport=_BrokenTransport(run_fails=True)):
            await trio.sleep_forever()
    assert info.group_contains(RuntimeError, match="own task failed")
    assert info.group_contains(OSError, match="the link broke")


async def test_a_task_failure_beside_an_error_of_the_block_hides_neither() -> None:
    with trio.fail_after(10), pytest.raises(ExceptionGroup) as info:
        async with open_node(CONFIG, 0, KEYS[0],
                             transport=_BrokenTransport(fail_on_cancel=True)):
            await trio.sleep(0.01)
            _fail()
    assert info.group_contains(ValueError, match="raised by the block")
    assert info.group_contains(OSError, match="while closing")


async def test_the_helper_unwraps_the_block_and_keeps_task_failures() -> None:
    with pytest.raises(KeyError):
        async with open_background_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise KeyError("block")

    async def crash() -> None:
        raise RuntimeError("task")

    with pytest.raises(ExceptionGroup) as info:
        async with open_background_nursery() as nursery:
            nursery.start_soon(crash)
            await trio.sleep_forever()
    assert info.group_contains(RuntimeError, match="task")
    # The block cancelled from inside: nothing to report.
    async with open_background_nursery() as nursery:
        nursery.start_soon(trio.sleep_forever)
        nursery.cancel_scope.cancel()
        await trio.sleep(0)
