"""The field codecs, bounded msgpack, the generated encoders and decoders, and the wire format
itself, pinned by the digests of one frame of every message kind."""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar

import attrs
import pytest

from btob import WireError
from btob.core.codec import (
    BYTES,
    DIGEST,
    INT,
    INT_MAX,
    SIGNATURE,
    Wired,
    optional,
    pack,
    pair,
    record,
    seq,
    unpack,
    wired,
)
from btob.core.wire import (
    KINDS,
    Batch,
    BatchRef,
    Checkpoint,
    CheckpointCert,
    Echo,
    Fetch,
    Final,
    LogSegment,
    Message,
    NewView,
    Order,
    OrderEcho,
    OrderReady,
    PreparedCert,
    Ready,
    Reproposal,
    Request,
    Send,
    SlotProof,
    Status,
    ViewChange,
    Vote,
)

from ..helpers import Keys

D = bytes(range(32))  # a digest
S = bytes(range(64))  # a signature


def _refused(codec: Any, value: object, match: str) -> None:
    with pytest.raises(WireError, match=match):
        codec.decode(value, "the field")


# -- scalar codecs --------------------------------------------------------------------------


def test_int_takes_non_negative_64_bit_integers_only() -> None:
    assert INT.decode(0, "x") == 0 and INT.decode(INT_MAX, "x") == INT_MAX
    assert INT_MAX == 2**63 - 1
    for bad in (-1, INT_MAX + 1, True, 1.0, b"\x01", None, ()):
        _refused(INT, bad, "the field: expected a non-negative integer")


def test_bytes_digest_and_signature_check_type_and_length() -> None:
    assert BYTES.decode(b"", "x") == b"" and BYTES.decode(b"abc", "x") == b"abc"
    for bad in ("abc", bytearray(b"abc"), 3, ()):
        _refused(BYTES, bad, "the field: expected bytes")
    assert DIGEST.decode(D, "x") == D
    _refused(DIGEST, D[:31], "expected 32 bytes, got 31")
    _refused(DIGEST, D + b"\x00", "expected 32 bytes, got 33")
    assert SIGNATURE.decode(S, "x") == S
    _refused(SIGNATURE, S[:63], "expected 64 bytes, got 63")
    assert all(c.identity for c in (INT, BYTES, DIGEST, SIGNATURE))


# -- composite codecs -----------------------------------------------------------------------


def test_seq_checks_every_item_and_wants_an_array() -> None:
    ints = seq(INT)
    assert ints.decode((), "x") == () and ints.decode((1, 2, 3), "x") == (1, 2, 3)
    assert ints.encode((1, 2)) == (1, 2)
    _refused(ints, (1, -2), "the field: expected a non-negative integer")
    _refused(ints, [1, 2], "expected an array")  # msgpack decodes arrays as tuples only
    _refused(ints, b"\x01\x02", "expected an array")
    refs = seq(record(BatchRef))
    value = (BatchRef(1, 2, D), BatchRef(3, 4, D))
    assert refs.decode(refs.encode(value), "x") == value
    _refused(refs, ((1, 2, D), (3, 4)), "batch ref: expected 3 items, got 2")


def test_optional_sends_none_as_an_empty_array() -> None:
    codec = optional(record(BatchRef))
    assert codec.encode(None) == ()
    assert codec.decode((), "x") is None
    value = BatchRef(1, 2, D)
    assert codec.decode(codec.encode(value), "x") == value
    _refused(codec, (1, 2), "batch ref: expected 3 items")
    assert not codec.identity


def test_pair_wants_exactly_two_items_each_checked() -> None:
    codec = pair(INT, DIGEST)
    assert codec.encode((5, D)) == (5, D)
    assert codec.decode((5, D), "x") == (5, D)
    _refused(codec, (5,), "the field: expected 2 items, got 1")
    _refused(codec, (5, D, 6), "the field: expected 2 items, got 3")
    _refused(codec, (5, b"short"), "expected 32 bytes, got 5")
    _refused(codec, [5, D], "expected an array")


def test_generated_decoders_name_the_type_and_the_field() -> None:
    with pytest.raises(WireError, match="batch ref: expected 3 items, got 2"):
        BatchRef.from_wire((1, 2))
    with pytest.raises(WireError, match="batch ref digest: expected 32 bytes, got 3"):
        BatchRef.from_wire((1, 2, b"abc"))
    with pytest.raises(WireError, match="vote member: expected a non-negative integer"):
        Vote.from_wire((-1, S))
    with pytest.raises(WireError, match="batch: expected an array"):
        Send.from_wire((0, b"not a batch"))
    with pytest.raises(WireError, match=r"ctl\.status: expected 2 items"):
        Status.from_wire((1,))


def test_wired_wants_one_codec_per_field() -> None:
    @attrs.frozen
    class TwoFields(Wired):
        WIRE: ClassVar = (INT,)
        a: int
        b: int

    with pytest.raises(AssertionError, match="one codec per field"):
        wired("two fields")(TwoFields)


def test_a_table_of_codecs_gives_a_round_tripping_type() -> None:
    @wired("example")
    @attrs.frozen
    class Example(Wired):
        WIRE: ClassVar = (INT, optional(record(Vote)), seq(pair(INT, BYTES)))
        n: int
        vote: Vote | None
        items: tuple[tuple[int, bytes], ...]

    value = Example(7, Vote(1, S), ((1, b"a"), (2, b"")))
    assert value.to_wire() == (7, (1, S), ((1, b"a"), (2, b"")))
    assert Example.from_wire(unpack(pack(value.to_wire()), frame_bytes_max=1000,
                                    items_max=10)) == value
    assert Example.from_wire((7, (), ())) == Example(7, None, ())


# -- bounded msgpack ------------------------------------------------------------------------


def test_unpack_refuses_what_no_frame_holds() -> None:
    def refused(data: object, match: str, **limits: int) -> None:
        bounds = {"frame_bytes_max": 1000, "items_max": 8} | limits
        with pytest.raises(WireError, match=match):
            unpack(data, **bounds)  # type: ignore[arg-type]

    refused("text", "must be bytes")
    refused(bytes(1001), "exceeds 1000")
    refused(b"\x81\x01\x02", "malformed")  # a map
    refused(b"\xa3abc", "malformed")  # a string
    refused(b"\xd4\x01\x00", "malformed")  # an extension
    refused(b"\x99" + b"\x00" * 9, "malformed")  # nine items, the bound is eight
    refused(b"\x93\x01", "malformed")  # truncated
    refused(b"\x01\x02", "malformed")  # extra data
    assert unpack(b"\x98" + b"\x00" * 8, frame_bytes_max=1000, items_max=8) == (0,) * 8


def test_unpack_gives_tuples_and_bytes() -> None:
    assert unpack(b"\x92\x01\xc4\x02ab", frame_bytes_max=100, items_max=8) == (1, b"ab")
    assert unpack(memoryview(b"\x90"), frame_bytes_max=100, items_max=8) == ()


# -- the encodings, byte for byte -----------------------------------------------------------


def test_the_generated_encoders_match_msgpack_written_by_hand() -> None:
    # fixarray 0x90+n, positive fixint, uint16 0xcd, bin8 0xc4 LEN
    assert pack(BatchRef(1, 2, D).to_wire()) == b"\x93\x01\x02\xc4\x20" + D
    assert pack(Batch(5, (b"ab", b"")).to_wire()) == b"\x92\x05\x92\xc4\x02ab\xc4\x00"
    assert Status(7, 300).to_body() == b"\x92\x07\xcd\x01\x2c"
    assert Echo(1, 2, D).to_body() == b"\x93\x01\x02\xc4\x20" + D
    assert Request(3, D).to_body() == b"\x92\x03\xc4\x20" + D
    assert ViewChange(3, None, ()).to_body() == b"\x93\x03\x90\x90"  # None: an empty array
    assert Order(1, 2, (BatchRef(0, 4, D),), (b"xy",)).to_body() == (
        b"\x94\x01\x02\x91\x93\x00\x04\xc4\x20" + D + b"\x91\xc4\x02xy")
    assert Send(9, Batch(9, (b"p",))).to_body() == b"\x92\x09\x92\x09\x91\xc4\x01p"
    assert NewView(2, (), (Reproposal(6, ()),)).to_body() == b"\x94\x02\x90\x91\x92\x06\x90\x90"


def _samples() -> list[Message]:
    ref = BatchRef(1, 2, D)
    batch = Batch(2, (b"payload", b""))
    votes = (Vote(0, S), Vote(2, S))
    cert = CheckpointCert(16, D, votes)
    prepared = PreparedCert(1, 3, (ref,), votes)
    return [
        Send(2, batch),
        Echo(1, 2, D),
        Ready(1, 2, D),
        Fetch(1, 2, D),
        Final(1, 2, batch, votes),
        Request(2, D),
        Order(1, 3, (ref,), (b"carried frame",)),
        OrderEcho(1, 3, D),
        OrderReady(1, 3, D),
        Status(17, 1),
        SlotProof(1, 3, (ref,), votes, (batch,)),
        LogSegment(cert, 0, (((ref,), (batch,)), ((), ()))),
        Checkpoint(16, D),
        ViewChange(2, cert, (prepared,)),
        NewView(2, (b"a view change frame",), (Reproposal(3, (ref,)), Reproposal(4, ())), (1,)),
    ]


# The sha256 of each sample's frame, signed by member 1 of tests.helpers.Keys: a change here
# is a change of the wire format (or of the signed domain), which old members cannot read.
# Bump WIRE_VERSION (or PROTOCOL_VERSION) with it and update these digests deliberately.
GOLDEN = {
    "brb.send": "3fb0638e6c624e0849a3874ad5a22fbb54b7432b2c772cc81603083474cf0134",
    "brb.echo": "37961cc2b1541ab115471eaf2e71de8deb4740b74b1f3a9cd68cc4cea0de792e",
    "brb.ready": "c0886248b9b0f39d415894bb4a44cfd8a09e686acb217045da8ff8e84199c215",
    "brb.fetch": "298cea1b77e91f453bec2e6fc7c548a197e70ca86c42a71f9d2e68a8e71051d7",
    "brb.final": "0d4b160aef0a1a344519d9ae60b02fc885f719847194ff284e11cc8587da2326",
    "uub.request": "d4b9b1abd61caba0e2e72a26bea4bd415ca6f3ae3d3126cdd16f138111aa25d5",
    "ord.order": "01e12d580a8ca6cfbe181a5d47c38fbef7e000eb8eb93c48b07fe627f748f98d",
    "ord.echo": "d93db8ea186f7a069e90efaeb2fb3563bc92f5d9ed8d12ae0c45daae2d8b932f",
    "ord.ready": "a80d8ab1b03ab14045e94e33a11026732e0f155a8847a815d94876b327705694",
    "ctl.status": "28aac2fa06e5a1994c5c8693841f9b9d014d36a83e6afebaa0ed039fd5b90edd",
    "ctl.slot": "e0f8b0de9bf64f6ca2cd3015e7ce46350d2044526013265f2424b9057a3e230a",
    "ctl.segment": "f0118b986fd7a4ce62af5b841a2872357efc07a44a1509f5084692e615b2fb4e",
    "ckp.checkpoint": "1949593f395f2f508eb67fa661483c5a73248dddb3e8ac3ec6c6d8bb5d240584",
    "vc.viewchange": "e077e69b60c9ef08c2b6583cd0f6fc74c6d1a701207c73344ba3fd3320032318",
    "vc.newview": "c710f818a5ab0163f09a61f932163e70e0956052a1c58ed69e70e4d533b96dc3",
}


def test_the_wire_format_of_every_message_kind_is_pinned() -> None:
    keys = Keys(4)
    samples = _samples()
    assert sorted(m.KIND for m in samples) == sorted(KINDS)  # one sample of every kind
    digests = {m.KIND: hashlib.sha256(keys.sign(1, m).to_frame()).hexdigest() for m in samples}
    assert digests == GOLDEN


def test_every_sample_round_trips_through_its_frame() -> None:
    from btob.core.wire import decode_frame

    keys = Keys(4)
    for message in _samples():
        signed = keys.sign(1, message)
        parsed = decode_frame(signed.to_frame()).parse()
        assert parsed == signed and type(parsed.message) is type(message)
