"""A nursery for the background tasks of a context manager, around the caller's block.

A plain nursery wraps whatever its block raises in an ``ExceptionGroup``; an ``async with``
that opens one per node would hand a caller's own ``ValueError`` back four groups deep from a
four-node cluster. :func:`open_background_nursery` hands the block's exception back as itself
whenever it is the only failure, and leaves real failures of the background tasks to trio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

__all__ = ["open_background_nursery"]


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _holds_only(group: BaseExceptionGroup[BaseException], raised: BaseException) -> bool:
    """Whether ``group`` holds all of ``raised`` and, besides, at most cancellations of
    sibling tasks.

    Leaves are compared by identity because trio rebuilds groups it passes through (a group
    the block raised may come back as an equal copy holding the same leaves).
    """
    ours = {id(leaf) for leaf in _leaves(raised)}
    held = _leaves(group)
    return ours <= {id(leaf) for leaf in held} and all(
        isinstance(leaf, trio.Cancelled) for leaf in held if id(leaf) not in ours
    )


@asynccontextmanager
async def open_background_nursery() -> AsyncIterator[trio.Nursery]:
    """Open a nursery whose block's exception arrives as itself, not in an ``ExceptionGroup``.

    The block is everything inside ``async with open_background_nursery() as nursery:`` -
    a context manager's own setup and the caller's code it yields to. When the block raises
    (``trio.Cancelled`` and ``KeyboardInterrupt`` included) and no task started in the nursery
    failed, that exception propagates unwrapped, with its own traceback. When a task failed,
    trio's group propagates unchanged: every failure stays visible, so a task's error is never
    hidden behind the block's, nor the block's behind a task's.
    """
    raised: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            except BaseException as exc:
                raised = exc
                raise
    except BaseExceptionGroup as group:
        if raised is None or not _holds_only(group, raised):
            raise
        unwrapped = raised
    else:
        return
    # Raised outside the handler, so the group does not become its __context__; the context
    # manager protocol then restores the traceback it had when it left the block.
    raise unwrapped
