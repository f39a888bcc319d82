"""The client port over loopback: the signed handshake, cheap refusals before any signature
work, the bounds and the eviction of silent connections, one connection per key, and frames.

The client here is :mod:`tests.runtime.clientkit`, written from the module docstring of
``btob.runtime.clientport``, so these tests also pin the wire format down.
"""

from __future__ import annotations

import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from btob._errors import ConfigError
from btob.core.clients import ClientAdmission
from btob.core.clientwire import ClientRequest, sign_request
from btob.crypto import Signer
from btob.runtime.clientport import ClientPort, ClientPortSettings
from btob.runtime.config import ClusterConfig, MemberAddress

from ..helpers import CLUSTER, Keys
from .clientkit import HOST, RawClient, client_key, closed_without_a_byte, hello

KEYS = Keys(4)
ALICE, BOB = client_key("alice"), client_key("bob")
MEMBER = 2


def _config() -> ClusterConfig:
    return ClusterConfig(CLUSTER, KEYS.registry,
                         tuple(MemberAddress(HOST, 7000 + i) for i in range(4)),
                         client_keys=(ALICE.public_key(),),
                         client_addresses=tuple(MemberAddress(HOST, 0) for _ in range(4)))


@asynccontextmanager
async def serving(settings: ClientPortSettings | None = None,
                  admission: ClientAdmission | None = None) -> AsyncIterator[ClientPort]:
    port = ClientPort(config=_config(), member=MEMBER, signer=KEYS.signers[MEMBER],
                      settings=settings, admission=admission)
    async with trio.open_nursery() as nursery:
        await nursery.start(port.serve)
        yield port
        nursery.cancel_scope.cancel()


async def connect(port: ClientPort, key: object = ALICE, **kw: object) -> RawClient:
    assert port.port is not None
    return await RawClient.connect(port.port, key, cluster_id=CLUSTER,  # type: ignore[arg-type]
                                   registry=KEYS.registry, member=MEMBER, **kw)  # type: ignore[arg-type]


async def wait_for(condition: object, within_s: float = 5.0) -> None:
    with trio.fail_after(within_s):
        while not condition():  # type: ignore[operator]
            await trio.sleep(0.01)


async def test_a_client_handshakes_and_its_requests_and_answers_cross() -> None:
    async with serving() as port:
        client = await connect(port)
        await wait_for(lambda: port.connected() == {ALICE.public_key()})
        frame = client.request(b"hello")
        await client.send(b"")  # a keepalive is not a request
        await client.send(frame)
        with trio.fail_after(5):
            assert await port.receive() == (ALICE.public_key(), frame)
        assert port.send_nowait(ALICE.public_key(), b"an answer")
        with trio.fail_after(5):
            assert await client.frame() == b"an answer"
        await wait_for(lambda: port.statistics().frames_sent == 1)  # counted once written
        stats = port.statistics()
    assert (stats.authenticated, stats.requests_received, stats.frames_sent) == (1, 1, 1)
    assert stats.bad_frames == stats.handshakes_failed == 0


async def test_a_key_not_admitted_is_closed_before_any_signature_work() -> None:
    async with serving() as port:
        signed_before = KEYS.signers[MEMBER].signatures_made
        assert port.port is not None
        stream = await trio.open_tcp_stream(HOST, port.port)
        await stream.send_all(hello(BOB.public_key(), os.urandom(32)))
        assert await closed_without_a_byte(stream)  # no answer, so no member signature
        stats = port.statistics()
        assert stats.not_admitted == 1 and stats.authenticated == 0
        assert KEYS.signers[MEMBER].signatures_made == signed_before
        assert port.verifier.verifications == 0
        # the admitted key still gets in, and that one costs a signature and a verification
        client = await connect(port)
        await wait_for(lambda: port.statistics().authenticated == 1)
        await client.stream.aclose()
        assert KEYS.signers[MEMBER].signatures_made == signed_before + 1
        assert port.verifier.verifications == 1


async def test_an_open_cluster_admits_any_key() -> None:
    async with serving(admission=ClientAdmission(open=True)) as port:
        client = await connect(port, BOB)  # held: a dropped stream is closed when collected
        await wait_for(lambda: port.connected() == {BOB.public_key()})
        await client.stream.aclose()


@pytest.mark.parametrize("wrong", ["another member", "another key", "garbage"])
async def test_a_bad_client_proof_is_refused(wrong: str) -> None:
    async with serving() as port:
        if wrong == "another member":
            client = await connect(port, proof_member=MEMBER + 1)
        elif wrong == "another key":
            client = await connect(port, proof_signer=Signer(BOB, cluster_id=CLUSTER))
        else:
            client = await connect(port, proof_signer=Signer(ALICE, cluster_id=b"other"))
        assert await closed_without_a_byte(client.stream)
        stats = port.statistics()
    assert (stats.handshakes_failed, stats.authenticated) == (1, 0)
    assert port.connected() == frozenset()


async def test_a_malformed_hello_is_closed_and_counted() -> None:
    async with serving() as port:
        assert port.port is not None
        stream = await trio.open_tcp_stream(HOST, port.port)
        await stream.send_all(b"btcp" + bytes(65))  # a member's magic, not a client's
        assert await closed_without_a_byte(stream)
        assert port.statistics().bad_frames == 1
        assert port.verifier.verifications == 0


async def test_a_hello_must_arrive_in_time_even_trickled() -> None:
    settings = ClientPortSettings(hello_timeout_s=0.3)
    async with serving(settings) as port:
        assert port.port is not None
        silent = await trio.open_tcp_stream(HOST, port.port)
        trickler = await trio.open_tcp_stream(HOST, port.port)
        message = hello(ALICE.public_key(), os.urandom(32))
        started = trio.current_time()
        with trio.fail_after(5):
            try:
                for byte in message:  # every byte in time for a per-read timeout
                    await trickler.send_all(bytes([byte]))
                    await trio.sleep(0.05)
                    if port.statistics().hello_timeouts == 2:
                        break
            except trio.BrokenResourceError:
                pass
        assert trio.current_time() - started < 0.05 * len(message) / 2
        assert await closed_without_a_byte(silent, 2)
        assert port.statistics().hello_timeouts == 2
        assert port.verifier.verifications == 0


async def test_a_second_connection_of_the_same_key_replaces_the_first() -> None:
    async with serving() as port:
        first = await connect(port)
        await wait_for(lambda: port.statistics().authenticated == 1)
        second = await connect(port)
        await wait_for(lambda: port.statistics().authenticated == 2)
        with trio.fail_after(5):
            assert await first.frame() is None  # closed by the member
        await wait_for(lambda: port.connected() == {ALICE.public_key()})
        assert port.send_nowait(ALICE.public_key(), b"to the newest")
        with trio.fail_after(5):
            assert await second.frame() == b"to the newest"
        assert port.statistics().replaced == 1


def _other_keys_request() -> bytes:
    signer = Signer(BOB, cluster_id=CLUSTER)
    return sign_request(ClientRequest(signer.public_key, 1, 0, b"x"), signer.sign)


@pytest.mark.parametrize("garbage", [
    struct.pack(">I", 5) + b"hello",  # not a REQUEST
    struct.pack(">I", 1 << 30),  # a length beyond the bound
    b"\x00\x00",  # end of stream inside a prefix
    struct.pack(">I", len(_other_keys_request())) + _other_keys_request(),  # not its key
])
async def test_garbage_after_the_handshake_closes_the_connection(garbage: bytes) -> None:
    async with serving() as port:
        client = await connect(port)
        await wait_for(lambda: port.connected() == {ALICE.public_key()})
        await client.stream.send_all(garbage)
        if garbage == b"\x00\x00":
            await client.stream.send_eof()
        await wait_for(lambda: port.connected() == frozenset())
        stats = port.statistics()
    assert stats.bad_frames == 1 and stats.requests_received == 0


async def test_silent_connections_are_evicted_to_let_a_real_client_in() -> None:
    # A HELLO deadline far away: only eviction can make room here.
    settings = ClientPortSettings(client_handshakes_concurrent_max=32,
                                  client_handshakes_per_address_max=32, hello_timeout_s=60)
    async with serving(settings) as port:
        assert port.port is not None
        idle = []
        with trio.fail_after(10):
            for _ in range(300):
                idle.append(await trio.open_tcp_stream(HOST, port.port))
            await wait_for(lambda: port.statistics().connections_accepted == 300)
            client = await connect(port)
            await client.send(client.request(b"in"))
            assert (await port.receive())[0] == ALICE.public_key()
        stats = port.statistics()
        assert stats.evicted_without_hello >= 300 + 1 - 32
        assert stats.handshakes_refused_full == 0 and stats.hello_timeouts == 0
        for stream in idle:
            await stream.aclose()


async def test_connections_past_their_hello_are_not_evicted_and_a_newcomer_is_refused() -> None:
    settings = ClientPortSettings(client_handshakes_concurrent_max=2,
                                  client_handshakes_per_address_max=2)
    async with serving(settings, admission=ClientAdmission(open=True)) as port:
        assert port.port is not None
        signed = KEYS.signers[MEMBER].signatures_made
        stalled = []
        for name in ("x", "y"):  # HELLO, then never a proof
            stream = await trio.open_tcp_stream(HOST, port.port)
            await stream.send_all(hello(client_key(name).public_key(), os.urandom(32)))
            stalled.append(stream)
        await wait_for(lambda: KEYS.signers[MEMBER].signatures_made == signed + 2)
        newcomer = await trio.open_tcp_stream(HOST, port.port)
        assert await closed_without_a_byte(newcomer)
        stats = port.statistics()
        assert stats.handshakes_refused_full == 1 and stats.evicted_without_hello == 0


async def test_the_authenticated_bounds_refuse_a_hello_before_any_signature_work() -> None:
    settings = ClientPortSettings(client_connections_max=2,
                                  client_connections_per_address_max=1)
    async with serving(settings, admission=ClientAdmission(open=True)) as port:
        first = await connect(port, ALICE)
        await wait_for(lambda: len(port.connected()) == 1)
        signed = KEYS.signers[MEMBER].signatures_made
        assert port.port is not None
        stream = await trio.open_tcp_stream(HOST, port.port)
        await stream.send_all(hello(BOB.public_key(), os.urandom(32)))
        assert await closed_without_a_byte(stream)  # one per address
        assert port.statistics().connections_full == 1
        assert KEYS.signers[MEMBER].signatures_made == signed
        # the same key again replaces its connection: that is room enough
        second = await connect(port, ALICE)
        await wait_for(lambda: port.statistics().replaced == 1)
        assert port.connected() == {ALICE.public_key()}
        await first.stream.aclose()
        await second.stream.aclose()


async def test_frames_for_a_client_not_connected_are_dropped_and_counted() -> None:
    async with serving() as port:
        assert not port.send_nowait(BOB.public_key(), b"nobody listens")
        assert port.statistics().frames_dropped_not_connected == 1


@pytest.mark.parametrize(("fields", "named"), [
    ({"client_connections_max": 0}, "client_connections_max must be a positive integer"),
    ({"hello_timeout_s": float("nan")}, "hello_timeout_s must be a positive number"),
    ({"client_connections_max": 4}, "per_address_max must be at most"),
    ({"client_handshakes_concurrent_max": 4}, "per_address_max must be at most"),
    ({"keepalive_interval_s": 30.0}, "keepalive_interval_s must be below"),
])
def test_settings_are_checked(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        ClientPortSettings(**fields)  # type: ignore[arg-type]


def test_a_member_without_a_client_port_cannot_serve_clients() -> None:
    config = ClusterConfig(CLUSTER, KEYS.registry,
                           tuple(MemberAddress(HOST, 7000 + i) for i in range(4)))
    with pytest.raises(ConfigError, match="member 2 has no client_port"):
        ClientPort(config=config, member=MEMBER, signer=KEYS.signers[MEMBER])
    with pytest.raises(ConfigError, match="not member 1's registered key"):
        ClientPort(config=_config(), member=1, signer=KEYS.signers[MEMBER])


async def test_a_busy_client_port_is_a_config_error_naming_it() -> None:
    import socket

    with socket.socket() as holder:
        holder.bind((HOST, 0))
        holder.listen()
        busy = holder.getsockname()[1]
        config = ClusterConfig(CLUSTER, KEYS.registry,
                               tuple(MemberAddress(HOST, 7000 + i) for i in range(4)),
                               client_addresses=tuple(MemberAddress(HOST, busy)
                                                      for _ in range(4)))
        port = ClientPort(config=config, member=MEMBER, signer=KEYS.signers[MEMBER])
        with pytest.raises(ConfigError, match=f"member 2 cannot serve clients on "
                                              f"127.0.0.1:{busy}"):
            await port.serve()
