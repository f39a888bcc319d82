"""Cutting submitted payloads into batches: at once, or after ``batch_delay_s`` unless full."""

from __future__ import annotations

import pytest

from btob import ConfigError, Member, Settings
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
