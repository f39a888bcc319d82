"""Cutting submitted payloads into batches: at once, or after ``batch_delay_s`` unless full."""

from __future__ import annotations

import pytest

from btob import ConfigError, Member, Settings
from btob.core.batching import PendingPayloads
from btob.core.wire import Send, decode_frame
from btob.crypto import KeyRegistry, SigningKey


def test_member_batch_delay_waits_for_company_but_not_for_a_full_batch() -> None:
    keys = [SigningKey.from_seed(bytes([i]) * 32) for i in range(4)]
    registry = KeyRegistry(tuple(k.public_key() for k in keys))

    def member(settings: Settings) -> Member:
        return Member(member=1, registry=registry, signing_key=keys[1], cluster_id=b"t",
                      f=1, settings=settings)
    def sends(m: Member) -> int:
        frames, _ = m.take_outputs()
        return sum(isinstance(decode_frame(f.frame).parse().message, Send) for f in frames)
    delayed = member(Settings(batch_delay_s=0.05, batch_payloads_max=3))
    delayed.submit(b"p", 1.0)
    assert sends(delayed) == 0
    delayed.tick(1.049)
    assert sends(delayed) == 0
    delayed.tick(1.05)
    assert sends(delayed) == 3  # the SEND to the three others
    full = member(Settings(batch_delay_s=10.0, batch_payloads_max=3))
    for k in range(3):
        full.submit(b"q%d" % k, 0.0)
    assert sends(full) == 3
    with pytest.raises(ConfigError):
        Settings(batch_delay_s=-1)


# -- PendingPayloads, driven directly ------------------------------------------------------


def _pending(**settings: object) -> PendingPayloads:
    return PendingPayloads(Settings(**settings))  # type: ignore[arg-type]


def test_nothing_pending_cuts_nothing() -> None:
    pending = _pending()
    assert pending.cut(0.0) is None and len(pending) == 0


def test_without_a_delay_a_batch_is_cut_at_once_in_submission_order() -> None:
    pending = _pending(batch_payloads_max=3)
    for k in range(7):
        pending.add(b"p%d" % k, 0.0)
    assert len(pending) == 7
    assert pending.cut(0.0) == ([b"p0", b"p1", b"p2"], [])  # the count bound
    assert pending.cut(0.0) == ([b"p3", b"p4", b"p5"], [])
    assert pending.cut(0.0) == ([b"p6"], [])  # a lone payload does not wait
    assert pending.cut(0.0) is None and len(pending) == 0


def test_the_byte_bound_ends_a_batch_before_a_payload_that_would_not_fit() -> None:
    pending = _pending(batch_bytes_max=10, payload_bytes_max=10)
    for payload in (b"aaaa", b"bbbbbb", b"cccc", b"d"):
        pending.add(payload, 0.0)
    assert pending.cut(0.0) == ([b"aaaa", b"bbbbbb"], [])  # exactly 10 bytes fit
    assert pending.cut(0.0) == ([b"cccc", b"d"], [])
    assert pending.cut(0.0) is None


def test_with_a_delay_a_batch_waits_for_its_oldest_payload_to_have_waited_it() -> None:
    pending = _pending(batch_delay_s=0.05, batch_payloads_max=10)
    pending.add(b"a", 1.0)
    pending.add(b"b", 1.04)
    assert pending.cut(1.0) is None
    assert pending.cut(1.0499) is None
    assert pending.cut(1.05) == ([b"a", b"b"], [])  # the oldest waited the delay: both leave
    pending.add(b"c", 2.0)
    assert pending.cut(2.01) is None  # the clock starts again at the next oldest


def test_with_a_delay_a_full_batch_by_count_leaves_at_once() -> None:
    pending = _pending(batch_delay_s=10.0, batch_payloads_max=3)
    pending.add(b"a", 0.0)
    pending.add(b"b", 0.0)
    assert pending.cut(0.0) is None
    pending.add(b"c", 0.0)
    assert pending.cut(0.0) == ([b"a", b"b", b"c"], [])


def test_with_a_delay_a_full_batch_by_bytes_leaves_at_once_and_the_rest_waits() -> None:
    pending = _pending(batch_delay_s=10.0, batch_bytes_max=10, payload_bytes_max=10)
    pending.add(b"x" * 4, 0.0)
    pending.add(b"y" * 4, 0.0)
    assert pending.cut(0.0) is None  # 8 bytes: room left
    pending.add(b"z" * 4, 1.0)
    assert pending.cut(1.0) == ([b"x" * 4, b"y" * 4], [])  # 12 bytes pending: a full batch is due
    assert len(pending) == 1
    assert pending.cut(1.0) is None  # 4 bytes left, submitted at 1.0: waits for the delay
    assert pending.cut(11.0) == ([b"z" * 4], [])


def test_requests_share_the_batch_bounds_and_keep_their_place_apart_from_payloads() -> None:
    pending = PendingPayloads(Settings(batch_payloads_max=3, batch_bytes_max=100,
                                       payload_bytes_max=10))
    pending.add(b"p0", 0.0)
    pending.add_request(b"r0", 0.0)
    pending.add(b"p1", 0.0)
    pending.add_request(b"r1", 0.0)
    assert len(pending) == 2 and pending.requests == 2  # len counts payloads only
    assert pending.cut(0.0) == ([b"p0", b"p1"], [b"r0"])  # three entries: the count bound
    assert len(pending) == 0 and pending.requests == 1
    assert pending.cut(0.0) == ([], [b"r1"])
    assert pending.cut(0.0) is None and pending.requests == 0
