"""Wire format: round trips, and untrusted bytes raise WireError and nothing else."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btob import WireError
from btob.core.wire import (
    WIRE_VERSION,
    Batch,
    BatchRef,
    Chunk,
    ChunkRequest,
    Echo,
    Fetch,
    Final,
    Order,
    OrderEcho,
    OrderReady,
    Ready,
    Send,
    Signed,
    SlotProof,
    Status,
    Vote,
    WireLimits,
    decode_frame,
    slot_digest,
)

SIG = bytes(range(64))
D = bytes(32)
REF = BatchRef(1, 2, D)
BATCH = Batch(5, (b"a", b"", b"xyz"))
VOTES = (Vote(0, SIG), Vote(3, SIG))

SAMPLES = [
    Send(7, BATCH),
    Echo(1, 2, D),
    Ready(1, 2, D),
    Fetch(1, 2, D),
    Final(1, 2, BATCH, VOTES),
    Order(3, 9, (REF, BatchRef(0, 0, b"\x01" * 32))),
    OrderEcho(3, 9, D),
    OrderReady(3, 9, D),
    Status(12),
    SlotProof(1, 9, (REF,), VOTES, (BATCH,)),
    ChunkRequest(32, 5),
    Chunk(32, D, 7, 5, b"chunk bytes", (D, b"\x01" * 32, b"\x02" * 32)),
]


def _sign(kind: str, body: bytes) -> bytes:
    return SIG


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    signed = Signed.create(2, message, _sign)  # type: ignore[arg-type]
    raw = decode_frame(signed.to_frame())
    assert (raw.sender, raw.kind, raw.body, raw.signature) == (2, signed.kind, signed.body, SIG)
    assert raw.parse() == signed


def test_kinds_are_distinct_per_class() -> None:
    kinds = {type(m).KIND for m in SAMPLES}
    assert len(kinds) == len(SAMPLES)


def test_slot_digest_binds_slot_and_refs_but_not_view() -> None:
    assert slot_digest(1, (REF,)) != slot_digest(2, (REF,))
    assert slot_digest(1, (REF,)) != slot_digest(1, (BatchRef(1, 3, D),))
    assert Order(0, 1, (REF,)).digest == Order(5, 1, (REF,)).digest


def _frame(*fields: object) -> bytes:
    return msgpack.packb(fields, use_bin_type=True)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # never-used msgpack byte
        _frame(WIRE_VERSION, 2, 1, b"x"),  # four fields
        _frame(WIRE_VERSION + 1, 2, 1, b"x", SIG),  # unknown version
        _frame(WIRE_VERSION, 99, 1, b"x", SIG),  # unknown kind
        _frame(WIRE_VERSION, 2, -1, b"x", SIG),  # negative sender
        _frame(WIRE_VERSION, 2, 1, b"x", SIG[:10]),  # short signature
        _frame(WIRE_VERSION, 2, 1, "text", SIG),  # body is a string
        msgpack.packb({"a": 1}),  # a map
        _frame(True, 2, 1, b"x", SIG),  # a bool is not a version
    ],
)
def test_malformed_envelopes(frame: bytes) -> None:
    with pytest.raises(WireError):
        decode_frame(frame)


def _raw(message_code: int, body_fields: object) -> bytes:
    body = msgpack.packb(body_fields, use_bin_type=True)
    return _frame(WIRE_VERSION, message_code, 1, body, SIG)


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        (Echo.CODE, (1, 2)),  # too few
        (Echo.CODE, (1, 2, b"short")),  # digest length
        (Echo.CODE, (1, -2, D)),  # negative counter
        (Echo.CODE, (1, 2**64 - 1, D)),  # beyond int64
        (Send.CODE, (1, (0, (b"a", 7)))),  # payload not bytes
        (Send.CODE, (1, (0, b"a"))),  # payloads not an array
        (Order.CODE, (0, 1, ((1, 2),))),  # ref too short
        (Final.CODE, (1, 2, (0, ()), ((0, b"sig"),))),  # short vote signature
        (Status.CODE, ()),
        (SlotProof.CODE, (0, 1, (), ())),
        (ChunkRequest.CODE, (32,)),  # no index
        (ChunkRequest.CODE, (32, -1)),  # negative index
        (ChunkRequest.CODE, (32, b"\x05")),  # index not an integer
        (Chunk.CODE, (32, D, 7, 5, b"data")),  # no proof
        (Chunk.CODE, (32, D[:31], 7, 5, b"data", ())),  # short root
        (Chunk.CODE, (32, D, 7, 5, "data", ())),  # data is text
        (Chunk.CODE, (32, D, 7, 5, b"data", (D, b"short"))),  # short proof step
        (Chunk.CODE, (32, D, 7, 5, b"data", D)),  # proof not an array
        (Chunk.CODE, (32, D, -7, 5, b"data", ())),  # negative count
        (Chunk.CODE, (32, D, 7, 5, b"data", (), b"extra")),  # one field too many
    ],
)
def test_malformed_bodies(code: int, fields: object) -> None:
    raw = decode_frame(_raw(code, fields))
    with pytest.raises(WireError):
        raw.parse()


def test_frame_size_bound() -> None:
    limits = WireLimits(frame_bytes_max=100)
    big = Signed.create(1, Send(0, Batch(0, (b"x" * 200,))), _sign).to_frame()
    with pytest.raises(WireError, match="exceeds"):
        decode_frame(big, limits)


def test_a_chunk_is_bounded_by_the_frame_bound_like_every_message() -> None:
    limits = WireLimits(frame_bytes_max=1024)
    fits = Signed.create(1, Chunk(1, D, 1, 0, b"x" * 800, ()), _sign).to_frame()
    assert decode_frame(fits, limits).parse(limits).message == Chunk(1, D, 1, 0, b"x" * 800, ())
    big = Signed.create(1, Chunk(1, D, 1, 0, b"x" * 1024, ()), _sign).to_frame()
    with pytest.raises(WireError, match="exceeds"):
        decode_frame(big, limits)


def test_a_chunk_round_trips_its_empty_data_and_proof() -> None:
    empty = Chunk(16, D, 1, 0, b"", ())
    signed = Signed.create(0, empty, _sign)
    assert decode_frame(signed.to_frame()).parse().message == empty


def test_array_length_bound() -> None:
    limits = WireLimits(items_max=8)
    many = Signed.create(1, Send(0, Batch(0, tuple(b"p" for _ in range(20)))), _sign)
    raw = decode_frame(many.to_frame(), limits)
    with pytest.raises(WireError):
        raw.parse(limits)


def test_deep_nesting_is_refused() -> None:
    deep = b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(WireError):
        decode_frame(deep)
    raw = decode_frame(_frame(WIRE_VERSION, Send.CODE, 1, deep, SIG))
    with pytest.raises(WireError):
        raw.parse()


def _decode_all_the_way(data: bytes) -> None:
    with contextlib.suppress(WireError):
        decode_frame(data).parse()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_raise_only_wire_error(data: bytes) -> None:
    _decode_all_the_way(data)


VALID_FRAMES = [Signed.create(3, m, _sign).to_frame() for m in SAMPLES]


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(VALID_FRAMES),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 10_000),
    st.binary(max_size=16),
)
def test_mutated_frames_raise_only_wire_error(
    frame: bytes, flips: list[tuple[int, int]], cut: int, tail: bytes
) -> None:
    data = bytearray(frame)
    for position, value in flips:
        data[position % len(data)] = value
    _decode_all_the_way(bytes(data))
    _decode_all_the_way(bytes(data[: cut % (len(data) + 1)]))
    _decode_all_the_way(bytes(data) + tail)


@settings(max_examples=300, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=5) | st.floats(allow_nan=True),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=3),
                                                                         children, max_size=3),
    max_leaves=30,
), st.sampled_from([c.CODE for c in (Send, Echo, Final, Order, OrderEcho, Status, SlotProof,
                                       ChunkRequest, Chunk)]))
def test_random_structured_bodies_raise_only_wire_error(body: object, code: int) -> None:
    data = msgpack.packb(body, use_bin_type=True)
    _decode_all_the_way(_frame(WIRE_VERSION, code, 0, data, SIG))
