"""The client library against real members: verified receipts, FIFO, backpressure, fail-over
past unreachable and lying members, results from f+1 matching replies, and clear failure."""

from __future__ import annotations

import hashlib

import attrs
import pytest
import trio

from btob import ConfigError, Delivery, KVStore, MsgId, RequestFailed, Settings
from btob.apps.kv import command, decode_result
from btob.client.client import ClientSettings, open_client
from btob.core.clientcore import ClientCore, ClientOutput
from btob.core.clientwire import Receipt, SignedReply, decode_client_frame, decode_request
from btob.crypto import SigningKey
from btob.runtime.config import MemberAddress
from btob.testing import open_local_cluster

KEY = SigningKey.from_seed(hashlib.sha256(b"client under test").digest())
FAST = ClientSettings(retry_after_s=0.3, give_up_after_s=20.0)


async def test_broadcast_returns_receipts_that_name_the_delivery_everywhere() -> None:
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster, \
                open_client(cluster.client_config, KEY, FAST) as client:
            receipts = [await client.broadcast(b"payload %d" % k) for k in range(5)]
            assert client.statistics.receipts_valid == 5
            seqs = [decode_request(r.request, frame_bytes_max=1 << 20)[0].seq for r in receipts]
            assert seqs == [0, 1, 2, 3, 4]
            indexes = [r.index for r in receipts]
            assert indexes == sorted(indexes)  # FIFO: the client's order is the total order's
            for node in cluster.nodes:
                seen = {}
                async for delivery in node.deliveries():
                    seen[delivery.index] = delivery
                    if len(seen) == 5:
                        break
                for k, receipt in enumerate(receipts):
                    delivery = seen[receipt.index]
                    assert (delivery.client, delivery.payload) == (client.public_key,
                                                                   b"payload %d" % k)
                    assert delivery.slot == receipt.slot


async def test_concurrent_broadcasts_wait_for_a_place_beyond_in_flight_max(
        monkeypatch: pytest.MonkeyPatch) -> None:
    most = 0
    original = ClientCore.request

    def counting(self: ClientCore, payload: bytes, now: float, *,
                 wants_result: bool = False) -> tuple[int, ClientOutput]:
        nonlocal most
        most = max(most, self.waiting + 1)  # the requests waiting, this one included
        return original(self, payload, now, wants_result=wants_result)

    monkeypatch.setattr(ClientCore, "request", counting)
    settings = attrs.evolve(FAST, in_flight_max=3)
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster, \
                open_client(cluster.client_config, KEY, settings) as client:
            done: list[Receipt] = []

            async def one(k: int) -> None:
                done.append(await client.broadcast(b"p%d" % k))

            async with trio.open_nursery() as nursery:
                for k in range(12):
                    nursery.start_soon(one, k)
    assert len(done) == 12 and most == 3
    assert len({r.index for r in done}) == 12


async def test_a_client_fails_over_past_unreachable_members() -> None:
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster:
            config = cluster.client_config
            dead = MemberAddress("127.0.0.1", 1)  # nothing listens on port 1
            only_3 = attrs.evolve(config, client_addresses=(dead, dead, dead,
                                                            config.client_addresses[3]))
            async with open_client(only_3, KEY, FAST) as client:
                for k in range(3):
                    await client.broadcast(b"x%d" % k)
                assert client.statistics.connect_failures >= 3
                assert client.statistics.receipts_valid == 3


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    try:
        async for data in source:
            await sink.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await sink.aclose()


async def test_a_client_started_before_the_cluster_waits_for_its_members() -> None:
    # Every member's client port is reached through a relay that starts listening only
    # after a delay, as a cluster that comes up after its clients: the client must try the
    # members again until one takes its request, not give up when all refused at first.
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster, \
                trio.open_nursery() as relays:
            config = cluster.client_config
            listeners = [(await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
                         for _ in range(4)]
            ports = [listener.socket.getsockname()[1] for listener in listeners]
            for listener in listeners:
                await listener.aclose()  # nothing listens there until the relays start
            late = attrs.evolve(config, client_addresses=tuple(
                MemberAddress("127.0.0.1", port) for port in ports))

            async def relay(port: int, target: MemberAddress) -> None:
                await trio.sleep(1.0)

                async def forward(stream: trio.SocketStream) -> None:
                    upstream = await trio.open_tcp_stream(target.host, target.port)
                    async with trio.open_nursery() as pipes:
                        pipes.start_soon(_pipe, stream, upstream)
                        pipes.start_soon(_pipe, upstream, stream)

                await trio.serve_tcp(forward, port, host="127.0.0.1")

            settings = attrs.evolve(FAST, retry_after_s=0.2)
            async with open_client(late, KEY, settings) as client:
                started = trio.current_time()
                for port, target in zip(ports, config.client_addresses, strict=True):
                    relays.start_soon(relay, port, target)
                await client.broadcast(b"early bird")
                assert trio.current_time() - started >= 1.0
                assert client.statistics.connect_failures >= 4  # all refused at first
                assert client.statistics.receipts_valid == 1
            relays.cancel_scope.cancel()


async def test_a_member_that_forges_receipts_is_caught_and_passed_over() -> None:
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster:
            for liar in cluster.nodes[:3]:  # three liars, one honest member: it still works
                port = liar.client_port
                assert port is not None
                honest_send = port.send_nowait

                def forge(client: bytes, frame: bytes, send=honest_send) -> bool:  # type: ignore[no-untyped-def]
                    message = decode_client_frame(frame, frame_bytes_max=1 << 22)
                    if isinstance(message, Receipt):
                        frame = attrs.evolve(message, slot=message.slot + 7).to_frame()
                    return bool(send(client, frame))

                port.send_nowait = forge  # type: ignore[method-assign]
            async with open_client(cluster.client_config, KEY, FAST) as client:
                receipt = await client.broadcast(b"truth")
                assert client.statistics.receipts_invalid >= 1
                # the receipt accepted is the honest one: its slot is the delivery's
                async for delivery in cluster.nodes[3].deliveries():
                    assert delivery.slot == receipt.slot and delivery.payload == b"truth"
                    break


async def test_broadcast_gives_up_with_what_each_member_said() -> None:
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster:
            dead = MemberAddress("127.0.0.1", 1)
            config = attrs.evolve(cluster.client_config, client_addresses=(dead,) * 4)
            settings = ClientSettings(retry_after_s=0.05, give_up_after_s=1.0,
                                      connect_timeout_s=0.5)
            async with open_client(config, KEY, settings) as client:
                with pytest.raises(RequestFailed, match="member 0: unreachable"):
                    await client.broadcast(b"nobody hears")


async def test_request_returns_the_result_f_plus_1_members_agree_on() -> None:
    class LyingStore(KVStore):
        def apply(self, delivery):  # type: ignore[no-untyped-def]
            result = super().apply(delivery)
            return None if result is None else b"\x92\xc4\x02ok\xc4\x04lies"

    stores = [LyingStore(), KVStore(), KVStore(), KVStore()]
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True, apps=stores.__getitem__) as cluster, \
                open_client(cluster.client_config, KEY, FAST) as client:
            assert decode_result(await client.request(command("set", b"k", b"v"))) == ("ok", b"")
            for _ in range(3):
                assert decode_result(await client.request(command("get", b"k"))) == \
                    ("ok", b"v")
            assert client.statistics.replies >= 2 * 4


async def test_a_reply_lost_on_the_way_comes_again_when_the_client_asks_again() -> None:
    stores = [KVStore() for _ in range(4)]
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True, apps=stores.__getitem__) as cluster:
            dropped: set[int] = set()
            for member, node in enumerate(cluster.nodes[:3]):
                # the first reply of three members never arrives
                port = node.client_port
                assert port is not None

                def lose_first(client: bytes, frame: bytes, send=port.send_nowait,  # type: ignore[no-untyped-def]
                               member=member) -> bool:
                    message = decode_client_frame(frame, frame_bytes_max=1 << 22)
                    if isinstance(message, SignedReply) and message.reply.seq == 0 \
                            and member not in dropped:
                        dropped.add(member)
                        return True
                    return bool(send(client, frame))

                port.send_nowait = lose_first  # type: ignore[method-assign]
            async with open_client(cluster.client_config, KEY, FAST) as client:
                assert decode_result(await client.request(command("set", b"a", b"1"))) == \
                    ("ok", b"")
            assert dropped == {0, 1, 2}


async def test_client_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        ClientSettings(retry_after_s=0)
    async with open_local_cluster(1, clients=True,
                                  settings=Settings(client_window=4)) as cluster:
        with pytest.raises(ConfigError, match="client_window"):
            async with open_client(cluster.client_config, KEY,
                                   ClientSettings(in_flight_max=5)):
                pass


async def test_an_application_outside_the_members_replies_through_node_reply() -> None:
    """Each node's own task consumes its deliveries and answers client requests with
    ``Node.reply``; the client takes the result f+1 members sent."""
    with trio.fail_after(30):
        async with open_local_cluster(4, clients=True) as cluster:

            async def answer(node: object) -> None:
                async for delivery in node.deliveries():  # type: ignore[attr-defined]
                    if delivery.client:
                        await node.reply(delivery, delivery.payload.upper())  # type: ignore[attr-defined]

            async with trio.open_nursery() as nursery:
                for node in cluster.nodes:
                    nursery.start_soon(answer, node)
                async with open_client(cluster.client_config, KEY, FAST) as client:
                    assert await client.request(b"shout") == b"SHOUT"
                    assert client.statistics.replies >= 2
                with pytest.raises(ValueError):
                    await cluster.nodes[0].reply(
                        Delivery(0, MsgId(0, 0), 0, b"member payload"), b"no")
                nursery.cancel_scope.cancel()
