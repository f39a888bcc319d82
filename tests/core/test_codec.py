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
    Chunk,
    ChunkRequest,
    Echo,
    Fetch,
    Final,
    LogSegment,
    Message,
    NewView,
    Order,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
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
    with pytest.raises(WireError, match=r"ctl\.status: expected 3 items"):
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
    assert pack(Batch(5, (b"ab", b"")).to_wire()) == b"\x93\x05\x92\xc4\x02ab\xc4\x00\x90"
    assert Status(7, 300).to_body() == b"\x93\x07\xcd\x01\x2c\x90"
    assert Echo(1, 2, D).to_body() == b"\x93\x01\x02\xc4\x20" + D
    assert Request(3, D).to_body() == b"\x92\x03\xc4\x20" + D
    assert ViewChange(3, None, ()).to_body() == b"\x93\x03\x90\x90"  # None: an empty array
    assert Order(1, 2, (BatchRef(0, 4, D),), (b"xy",)).to_body() == (
        b"\x94\x01\x02\x91\x93\x00\x04\xc4\x20" + D + b"\x91\xc4\x02xy")
    assert Send(9, Batch(9, (b"p",))).to_body() == b"\x92\x09\x93\x09\x91\xc4\x01p\x90"
    assert NewView(2, (), (Reproposal(6, ()),)).to_body() == b"\x94\x02\x90\x91\x92\x06\x90\x90"
    assert ChunkRequest(3, 300).to_body() == b"\x92\x03\xcd\x01\x2c"
    assert Chunk(1, D, 2, 0, b"ab", (D,)).to_body() == (
        b"\x96\x01\xc4\x20" + D + b"\x02\x00\xc4\x02ab\x91\xc4\x20" + D)


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
        OrderPrepared(1, 3, (ref,), votes),
        OrderCommitted(1, 3, D, votes),
        Status(17, 1),
        SlotProof(1, 3, (ref,), votes, (batch,)),
        LogSegment(cert, 0, (((ref,), (batch,)), ((), ()))),
        Checkpoint(16, D),
        ViewChange(2, cert, (prepared,)),
        NewView(2, (b"a view change frame",), (Reproposal(3, (ref,)), Reproposal(4, ())), (1,)),
        ChunkRequest(16, 3),
        Chunk(16, D, 5, 3, b"chunk", (D, D, D)),
    ]


# The sha256 of each sample's frame, signed by member 1 of tests.helpers.Keys: a change here
# is a change of the wire format (or of the signed domain), which old members cannot read.
# Bump WIRE_VERSION (or PROTOCOL_VERSION) with it and update these digests deliberately.
GOLDEN = {
    "brb.send": "c2250f6bcfafacbb926847fb22cabaa5e3fc8194fdae5536d49b3dbd76da7094",
    "brb.echo": "4f0658ea79d7ed245779c0ba7e7ecb9c8d11729853a5bde86d405d4502cd7bb6",
    "brb.ready": "2bf77f52e504bb85323106396b94dea7d05b5888669fc84a5b14880410b5b798",
    "brb.fetch": "2568f2051ab552046a50875b1bf773cb3374a9af70bf9ccb6907ed83929dc5eb",
    "brb.final": "f4ad9cd4037ab24bdb64718ac043a82064472ec7a0a1f8080aaaa83fbfb015ab",
    "uub.request": "a59349fc1c381c8203f87a9d32b16139110ff9aa75acbddcb3557c29ed6e7969",
    "ord.order": "0b77c9607562d7d20da2aaae34730e39d0f9f0b516b15993e54692cf9734d8d2",
    "ord.echo": "7ad5aa735d05dfa52637350eeaccb155166979eb3fcecd4a8fdd46746df05e22",
    "ord.ready": "9e9b34686589ac52428ca8389a1d343b522bbb145758e6dd7b11258b1a0700e4",
    "ord.prepared": "76625386d1b3238b7efe848a0cc66ddfd38784f5568373dcab2dc61a40215664",
    "ord.committed": "44487ef3192a7e44fcb912ba8b83232d91e718644ee6d4faeb4ada240ed51fcd",
    "ctl.status": "9f8d5d7b5513e2212d4e1438d62b3fbfd90f6df6d0522b21b50ebf51687253e9",
    "ctl.slot": "d87d8fbe046cf726f63cdd90df15f2be56858e3ebd1b0c188998b0fd49828067",
    "ctl.segment": "df686329f2338f247179c30b6e00cd8ea6a2be85eafbc3d367fe35b966496044",
    "ckp.checkpoint": "e14039b4dc53beb5276994679e32b417aad9ec7e89915d1e3b3427191db99914",
    "vc.viewchange": "7afb64a91dec8de6a5149c37bedb8921f9e90293e61e797c6af9f3ea9c7ec7c1",
    "vc.newview": "dd3b8532ac7435be4bb3f4bd4a27e7703bec36dec5429009d983a16846143279",
    "ctl.chunkreq": "ffe0fc3347e9a9bf7a01ccdf115f55ab1f2b494ef3ae739e959375adc6861e36",
    "ctl.chunk": "b0e6d78bf82812eb8a30515f811f0f92a9677eed56326477a35af14764f05d37",
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
