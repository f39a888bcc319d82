"""The replicated key-value store: commands, expiry on the logical clock, bounds, snapshots,
and replies that every member gives alike."""

from __future__ import annotations

import hashlib

import pytest

from btob import Delivery, Member, MsgId, WireError
from btob.apps.kv import KVStore, command, decode_result
from btob.core.clients import ClientAdmission
from btob.core.clientwire import ClientRequest, SignedReply, decode_client_frame, sign_request
from btob.crypto import Signer, SigningKey
from tests.helpers import Keys, Router

CLIENT = b"k" * 32


def deliver(store: KVStore, payload: bytes, client: bytes = CLIENT) -> tuple[str, bytes] | None:
    delivery = Delivery(0, MsgId(-1, 0, client, 1), -1, payload, client=client)
    result = store.apply(delivery)
    return None if result is None else decode_result(result)


def test_set_get_del() -> None:
    store = KVStore()
    assert deliver(store, command("get", b"a")) == ("missing", b"")
    assert deliver(store, command("set", b"a", b"1")) == ("ok", b"")
    assert deliver(store, command("get", b"a")) == ("ok", b"1")
    assert deliver(store, command("set", b"a", b"2")) == ("ok", b"")
    assert deliver(store, command("get", b"a")) == ("ok", b"2")
    assert deliver(store, command("del", b"a")) == ("ok", b"")
    assert deliver(store, command("del", b"a")) == ("missing", b"")
    assert deliver(store, command("get", b"a")) == ("missing", b"")


def test_entries_expire_on_the_logical_clock_and_a_new_set_renews_them() -> None:
    store = KVStore()
    deliver(store, command("set", b"s", b"alice", ttl_ms=1000, now_ms=10_000))
    assert deliver(store, command("get", b"s", now_ms=10_999)) == ("ok", b"alice")
    deliver(store, command("set", b"s", b"alice", ttl_ms=1000, now_ms=10_999))  # renewed
    assert deliver(store, command("get", b"s", now_ms=11_500)) == ("ok", b"alice")
    assert deliver(store, command("get", b"s", now_ms=11_999)) == ("missing", b"")
    # the clock never goes back: an older now_ms does not revive anything
    assert deliver(store, command("get", b"s", now_ms=5)) == ("missing", b"")
    assert store.clock_ms == 11_999


def test_a_member_payload_gets_applied_but_no_reply() -> None:
    store = KVStore()
    assert deliver(store, command("set", b"a", b"1"), client=b"") is None
    assert deliver(store, command("get", b"a")) == ("ok", b"1")


def test_bad_commands_and_the_key_bound() -> None:
    store = KVStore(keys_max=2)
    for bad in (b"", b"\xc1", command("get", b"x")[:-1], b"\x93\xc4\x03set\x01\x02",
                b"\x92\xc4\x03get\xc4\x01k"):
        assert deliver(store, bad) == ("bad", b"")
    assert deliver(store, command("set", b"k" * 1025, b"v")) == ("bad", b"")
    deliver(store, command("set", b"a", b"1"))
    deliver(store, command("set", b"b", b"1"))
    assert deliver(store, command("set", b"c", b"1")) == ("full", b"")
    assert deliver(store, command("set", b"a", b"2")) == ("ok", b"")  # an old key may change
    with pytest.raises(ValueError):
        command("incr", b"a")
    with pytest.raises(WireError):
        decode_result(b"\x91\xc4\x02ok")


def test_snapshot_and_restore_give_the_same_store_and_the_same_expiries() -> None:
    store = KVStore()
    deliver(store, command("set", b"b", b"2", ttl_ms=50, now_ms=100))
    deliver(store, command("set", b"a", b"1"))
    again = KVStore()
    again.restore(store.snapshot())
    assert again.snapshot() == store.snapshot() and again.entries == store.entries
    assert deliver(again, command("get", b"b", now_ms=150)) == ("missing", b"")
    again.restore(b"")
    assert again.entries == {} and again.clock_ms == 0


def test_every_member_replies_alike_to_a_client_command() -> None:
    keys = Keys(4)
    stores = [KVStore() for _ in range(4)]

    def make(**kw: object) -> Member:
        return Member(clients=ClientAdmission(open=True), app=stores[kw["member"]],  # type: ignore[index]
                      **kw)  # type: ignore[arg-type]

    router = Router(keys, member_factory=make)
    client = Signer(SigningKey.from_seed(hashlib.sha256(b"c").digest()),
                    cluster_id=keys.cluster_id)
    for seq, cmd in enumerate((command("set", b"u", b"alice"), command("get", b"u"))):
        frame = sign_request(ClientRequest(client.public_key, 1, seq, cmd), client.sign)
        router.members[0].submit_request(frame, router.now)
        router.advance(0.5)
    verifier = keys.verifier()
    for i, member in enumerate(router.members):
        replies = [decode_client_frame(f, frame_bytes_max=1 << 20)
                   for _, f in member.take_client_outputs()]
        replies = [r for r in replies if isinstance(r, SignedReply)]
        assert [(r.member, r.reply.seq, decode_result(r.reply.result)) for r in replies] == \
            [(i, 0, ("ok", b"")), (i, 1, ("ok", b"alice"))]
        assert all(verifier.verify(i, "client.reply", r.body, r.signature) for r in replies)
    assert all(s.entries == stores[0].entries for s in stores)


def test_a_client_that_asks_again_after_delivery_gets_the_kept_reply() -> None:
    keys = Keys(4)

    def make(**kw: object) -> Member:
        return Member(clients=ClientAdmission(open=True), app=KVStore(), **kw)  # type: ignore[arg-type]

    router = Router(keys, member_factory=make)
    client = Signer(SigningKey.from_seed(hashlib.sha256(b"c").digest()),
                    cluster_id=keys.cluster_id)
    frame = sign_request(ClientRequest(client.public_key, 1, 0, command("set", b"u", b"v")),
                         client.sign)
    router.members[0].submit_request(frame, router.now)
    router.advance(0.5)
    # member 2 was not asked, but its application replied (a runtime drops the frame when
    # the client is not connected): suppose it was lost
    (lost,) = router.members[2].take_client_outputs()
    router.members[2].submit_request(frame, router.now)  # asked after the delivery
    answers = [decode_client_frame(f, frame_bytes_max=1 << 20)
               for _, f in router.members[2].take_client_outputs()]
    (again,) = [a for a in answers if isinstance(a, SignedReply)]  # (and the receipt)
    assert again.member == 2
    assert decode_result(again.reply.result) == ("ok", b"") and again.to_frame() == lost[1]
