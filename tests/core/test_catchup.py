"""Catch-up: who helps a laggard, how often, with proofs or segments, and what help is taken."""

from __future__ import annotations

from ..helpers import Keys


def test_a_laggards_periodic_status_is_answered_every_period() -> None:
    # Regression: help to one laggard was rate limited for a whole status interval, so its
    # next periodic STATUS, arriving a hair sooner, went unanswered and help came a period
    # late. A repeat inside half the interval is still ignored.
    from btob.core.wire import LogSegment, SlotProof, Status, decode_frame

    from ..helpers import Router

    keys = Keys(4)
    router = Router(keys)
    router.stopped = {3}
    for k in range(6):
        router.members[1].submit(b"p%d" % k, router.now)
        router.pump()
        router.advance(0.1)
    router.advance(1.0)  # past the catch-up grace
    helper = router.members[0]  # first in ring order after member 3
    assert helper.next_slot > 0
    helper.take_outputs()
    status = keys.sign(3, Status(0, 0)).to_frame()
    interval = helper.settings.status_interval_s

    def help_sent(at: float) -> int:
        helper.receive(status, at)
        frames, _ = helper.take_outputs()
        return sum(1 for f in frames if f.destination == 3 and isinstance(
            decode_frame(f.frame).parse().message, (SlotProof, LogSegment)))

    start = router.now
    assert help_sent(start) > 0
    assert help_sent(start + 0.1 * interval) == 0
    assert help_sent(start + 0.99 * interval) > 0
