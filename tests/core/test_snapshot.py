"""The member state a checkpoint certifies: canonical bytes, bounded decoding, one root."""

from __future__ import annotations

import pytest

from btob import WireError
from btob.core.snapshot import EarlyPayload, MemberState, OriginCounter, OriginWindow


def _state(app: bytes = b"app") -> MemberState:
    return MemberState(upto=32, chain=bytes(range(32)), next_index=700,
                       counters=(OriginCounter(0, 10), OriginCounter(3, 4)),
                       early=(EarlyPayload(3, 6, b"early"),),
                       ordered=(OriginWindow(0, 5, (7, 9)), OriginWindow(2, 1, ())), app=app)


def test_a_state_round_trips_through_its_bytes() -> None:
    state = _state()
    data = state.encode()
    assert MemberState.decode(data, bytes_max=len(data)) == state
    assert _state().encode() == data  # canonical: equal states, equal bytes


def test_decoding_is_bounded_and_refuses_damage() -> None:
    data = _state(b"x" * 1000).encode()
    with pytest.raises(WireError, match="exceeds"):
        MemberState.decode(data, bytes_max=len(data) - 1)
    with pytest.raises(WireError):
        MemberState.decode(data[:-3], bytes_max=len(data))
    with pytest.raises(WireError):
        MemberState.decode(b"\x93\x01\x02\x03", bytes_max=100)


def test_the_root_depends_on_every_part_and_on_the_chunk_size() -> None:
    data = _state().encode()
    root = MemberState.root_of(data, 16)
    assert MemberState.root_of(_state(b"apq").encode(), 16) != root
    assert MemberState.root_of(data, 17) != root
    assert MemberState.root_of(data, 16) == root
