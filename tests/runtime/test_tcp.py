"""The TCP transport over loopback: topology, handshake, admission of strangers under a flood,
framing, bounds, reconnects, liveness.

Raw-socket peers below speak the wire format from the module docstring of ``btob.runtime.tcp``
independently of its code, so they also pin that format down.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import trio

from btob._errors import ConfigError
from btob.core.settings import Settings
from btob.crypto import KeyRegistry, Signer, SigningKey, Verifier
from btob.runtime.config import ClusterConfig, MemberAddress
from btob.runtime.tcp import TcpSettings, TcpTransport

from ..helpers import CLUSTER, Keys

HOST = "127.0.0.1"
FAST = TcpSettings(
    connect_backoff_initial_s=0.01,
    connect_backoff_max_s=0.1,
    keepalive_interval_s=0.1,
    idle_timeout_s=1.0,
    handshake_timeout_s=1.0,
)


def reserve_ports(n: int) -> list[socket.socket]:
    """``n`` sockets holding distinct loopback ports for the test's lifetime.

    Each is bound with SO_REUSEADDR but never listens, so a transport (trio sets SO_REUSEADDR
    on its listeners) can still bind and listen on the port, while the kernel hands it to
    nobody else - not to another ``bind(0)`` and not as the local port of an outgoing connect.
    """
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((HOST, 0))
        sockets.append(s)
    return sockets


class Cluster:
    """Keys, a config on fresh loopback ports, and transports for its members."""

    def __init__(self, n: int, settings: TcpSettings = FAST,
                 frame_bytes_max: int | None = None) -> None:
        self.keys = Keys(n)
        self.reservations = reserve_ports(n)
        protocol = Settings() if frame_bytes_max is None else Settings(
            frame_bytes_max=frame_bytes_max, batch_bytes_max=frame_bytes_max // 2,
            payload_bytes_max=frame_bytes_max // 4)
        self.config = ClusterConfig(
            CLUSTER, self.keys.registry,
            tuple(MemberAddress(HOST, s.getsockname()[1]) for s in self.reservations),
            settings=protocol,
        )
        self.settings = settings

    def close(self) -> None:
        for s in self.reservations:
            s.close()

    def port(self, member: int) -> int:
        return self.config.addresses[member].port

    def transport(self, member: int) -> TcpTransport:
        return TcpTransport(
            config=self.config, member=member, signer=self.keys.signers[member],
            verifier=self.keys.verifier(), settings=self.settings,
        )

    async def start(self, nursery: trio.Nursery, member: int) -> tuple[TcpTransport,
                                                                       trio.CancelScope]:
        """A new transport for ``member``, serving until the returned scope is cancelled."""
        transport = self.transport(member)
        scope: trio.CancelScope = await nursery.start(serve_scoped, transport)
        return transport, scope


MakeCluster = Callable[..., Cluster]


@pytest.fixture
def make_cluster() -> Iterator[MakeCluster]:
    """``make_cluster(n, settings=FAST)``; its port reservations end with the test."""
    made: list[Cluster] = []

    def make(n: int, settings: TcpSettings = FAST, frame_bytes_max: int | None = None
             ) -> Cluster:
        made.append(Cluster(n, settings, frame_bytes_max))
        return made[-1]

    yield make
    for cluster in made:
        cluster.close()


async def serve_scoped(
    transport: TcpTransport, *, task_status: trio.TaskStatus[trio.CancelScope]
) -> None:
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:
            await nursery.start(transport.serve)
            task_status.started(scope)


async def eventually(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():
            await trio.sleep(0.005)


async def eventually_equal(get: Callable[[], int], value: int) -> None:
    await eventually(lambda: get() == value)


async def receive_n(transport: TcpTransport, count: int,
                    timeout_s: float = 3.0) -> list[tuple[int, bytes]]:
    with trio.fail_after(timeout_s):
        return [await transport.receive() for _ in range(count)]


# -- a raw peer speaking the documented wire format ------------------------------------------

def framed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


async def receive_exactly(stream: trio.SocketStream, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


async def receive_framed(stream: trio.SocketStream) -> bytes:
    (length,) = struct.unpack(">I", await receive_exactly(stream, 4))
    return await receive_exactly(stream, length)


async def wait_for_eof(stream: trio.SocketStream, timeout_s: float = 3.0) -> None:
    """Read (and discard) until the other side closes."""
    with trio.fail_after(timeout_s):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:  # a reset counts as closed too
            pass


def hello(claimed: int) -> bytes:
    """A well-formed, framed HELLO claiming ``claimed``, with a fresh nonce."""
    return framed(struct.pack(">4sBH32s", b"btcp", 1, claimed, os.urandom(32)))


async def open_raw(port: int, source: str = HOST, first: bytes = b"") -> trio.SocketStream:
    """A raw connection from ``source`` that sends ``first`` and then nothing."""
    stream = await trio.open_tcp_stream(HOST, port, local_address=source)
    if first:
        await stream.send_all(first)
    return stream


async def closed_by_acceptor(stream: trio.SocketStream, timeout_s: float = 3.0) -> bytes:
    """Everything the acceptor sent until it closed ``stream`` (then closed here too)."""
    data = b""
    async with stream:
        with trio.fail_after(timeout_s):
            try:
                while chunk := await stream.receive_some(65536):
                    data += chunk
            except trio.BrokenResourceError:  # a reset counts as closed too
                pass
    return data


async def raw_handshake(
    port: int, *, claimed: int, acceptor: int, signer: Signer, keys: Keys
) -> trio.SocketStream:
    """Dial ``port`` and authenticate as ``claimed`` using ``signer``; checks the acceptor."""
    stream = await trio.open_tcp_stream(HOST, port)
    try:
        nonce = os.urandom(32)
        await stream.send_all(framed(struct.pack(">4sBH32s", b"btcp", 1, claimed, nonce)))
        magic, version, peer, peer_nonce = struct.unpack(">4sBH32s", await receive_framed(stream))
        assert (magic, version, peer) == (b"btcp", 1, acceptor)
        ids = claimed.to_bytes(2, "big") + acceptor.to_bytes(2, "big")
        await stream.send_all(framed(signer.sign("tcp.handshake", peer_nonce + nonce + ids)))
        proof = await receive_framed(stream)
        assert keys.verifier().verify(acceptor, "tcp.handshake", nonce + peer_nonce + ids, proof)
    except BaseException:
        await stream.aclose()
        raise
    return stream


# -- tests ------------------------------------------------------------------------------------

async def test_three_members_connect_and_carry_frames_in_order(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3)
    async with trio.open_nursery() as nursery:
        transports = [(await cluster.start(nursery, i))[0] for i in range(3)]
        await eventually(lambda: all(
            t.connected() == frozenset({0, 1, 2} - {i}) for i, t in enumerate(transports)))
        for src, t in enumerate(transports):
            for k in range(50):
                for dst in range(3):
                    if dst != src:
                        assert t.send_nowait(dst, b"%d->%d:%d" % (src, dst, k))
        for dst, t in enumerate(transports):
            received = await receive_n(t, 100)
            for src in set(range(3)) - {dst}:
                assert [f for s, f in received if s == src] == [
                    b"%d->%d:%d" % (src, dst, k) for k in range(50)]
        for t in transports:
            stats = t.statistics()
            assert (stats.frames_sent, stats.frames_received) == (100, 100)
            assert stats.handshakes_failed == stats.bad_frames == stats.reconnects == 0
            assert stats.connections_opened == 2
        nursery.cancel_scope.cancel()


async def test_large_frames_up_to_the_bound_and_oversize_sends_refused(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(2, frame_bytes_max=1024 * 1024)
    big = random.Random(1).randbytes(1024 * 1024)
    async with trio.open_nursery() as nursery:
        t0, _ = await cluster.start(nursery, 0)
        t1, _ = await cluster.start(nursery, 1)
        for _ in range(3):
            assert t0.send_nowait(1, big)
        assert t1.send_nowait(0, b"")  # an empty frame is a keepalive: sent, never delivered
        assert t1.send_nowait(0, big[:1000])
        assert not t0.send_nowait(1, big + b"x")
        assert t0.statistics().frames_dropped_oversize == 1
        assert await receive_n(t1, 3) == [(0, big)] * 3
        assert await receive_n(t0, 1) == [(1, big[:1000])]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("rogue_member", [0, 2])
@pytest.mark.parametrize("flaw", ["unregistered-key", "wrong-cluster"])
async def test_a_peer_that_cannot_prove_its_identity_is_refused(
    flaw: str, rogue_member: int, make_cluster: MakeCluster
) -> None:
    cluster = make_cluster(3)
    if flaw == "unregistered-key":
        key = SigningKey.from_seed(b"r" * 32)
        keys = list(cluster.keys.registry.public_keys)
        keys[rogue_member] = key.public_key()
        registry = KeyRegistry(tuple(keys))
        config = attrs.evolve(cluster.config, registry=registry)
        signer = Signer(key, cluster_id=CLUSTER)
        verifier = Verifier(registry, cluster_id=CLUSTER)
    else:
        config = attrs.evolve(cluster.config, cluster_id=b"other-cluster")
        signer = Signer(cluster.keys.keys[rogue_member], cluster_id=b"other-cluster")
        verifier = Verifier(cluster.keys.registry, cluster_id=b"other-cluster")
    rogue = TcpTransport(config=config, member=rogue_member, signer=signer, verifier=verifier,
                         settings=cluster.settings)
    honest_ids = sorted({0, 1, 2} - {rogue_member})
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_scoped, rogue)
        honest = {i: (await cluster.start(nursery, i))[0] for i in honest_ids}
        for i in honest_ids:
            assert rogue.send_nowait(i, b"evil")
        a, b = honest_ids
        await eventually(lambda: honest[a].connected() == {b} and honest[b].connected() == {a})
        await eventually(lambda: all(t.statistics().handshakes_failed > 0
                                     for t in honest.values()))
        await trio.sleep(0.1)  # the rogue keeps retrying meanwhile
        assert honest[a].send_nowait(b, b"hello b") and honest[b].send_nowait(a, b"hello a")
        assert await receive_n(honest[b], 1) == [(a, b"hello b")]
        assert await receive_n(honest[a], 1) == [(b, b"hello a")]
        # (The rogue may believe in a connection for a moment: with an unregistered key its own
        # check of the honest proof passes, and only the honest side hangs up.)
        for t in honest.values():
            assert rogue_member not in t.connected()
            assert t.statistics().frames_received == 1
        nursery.cancel_scope.cancel()


async def test_garbage_is_counted_and_a_real_peer_still_works(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3, frame_bytes_max=1024)
    noise = bytearray(random.Random(7).randbytes(2000))
    noise[0] = 0xFF  # a length far above any bound
    garbage = [
        bytes(noise),
        struct.pack(">I", 0xFFFFFFFF),  # oversized length prefix
        struct.pack(">I", 39) + b"\x01" * 10,  # truncated HELLO
        framed(b"\x00" * 39),  # a HELLO-sized frame with a bad magic
        b"\x00\x00",  # end of stream inside the length prefix
    ]
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        for k, data in enumerate(garbage, start=1):
            async with await trio.open_tcp_stream(HOST, cluster.port(1)) as stream:
                await stream.send_all(data)
                # Half-close and drain, so the transport sees an end of stream, not a reset.
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.send_eof()
                await wait_for_eof(stream)
            await eventually_equal(lambda: t1.statistics().bad_frames, k)
        assert t1.statistics().handshakes_failed == len(garbage)

        # A well-formed handshake against the topology: member 2 must be dialed by 1.
        with pytest.raises((EOFError, trio.BrokenResourceError)):
            await raw_handshake(cluster.port(1), claimed=2, acceptor=1,
                                signer=cluster.keys.signers[2], keys=cluster.keys)
        await eventually(lambda: t1.statistics().handshakes_failed == len(garbage) + 1)
        assert t1.statistics().bad_frames == len(garbage)

        # After an honest handshake: an oversized frame, then a frame cut short.
        for tail in (struct.pack(">I", 1025), struct.pack(">I", 100) + b"x" * 10):
            bad_before = t1.statistics().bad_frames
            stream = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                         signer=cluster.keys.signers[0], keys=cluster.keys)
            async with stream:
                await eventually(lambda: t1.connected() == {0})
                await stream.send_all(tail)
                if len(tail) > 4:
                    await stream.send_eof()
                await wait_for_eof(stream)
            await eventually_equal(lambda: t1.statistics().bad_frames, bad_before + 1)
        assert 0 not in t1.connected()

        t0, _ = await cluster.start(nursery, 0)
        await eventually(lambda: t1.connected() == {0})
        assert t0.send_nowait(1, b"ping") and t1.send_nowait(0, b"pong")
        assert await receive_n(t1, 1) == [(0, b"ping")]
        assert await receive_n(t0, 1) == [(1, b"pong")]
        nursery.cancel_scope.cancel()


async def test_a_restarted_member_reconnects_and_gets_frames_queued_while_down(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3)
    async with trio.open_nursery() as nursery:
        t0, _ = await cluster.start(nursery, 0)
        t1, scope1 = await cluster.start(nursery, 1)
        t2, _ = await cluster.start(nursery, 2)
        await eventually(lambda: t0.connected() == {1, 2} and t2.connected() == {0, 1})

        scope1.cancel()  # member 1 crashes
        await eventually(lambda: 1 not in t0.connected() and 1 not in t2.connected())
        assert t1.connected() == frozenset()
        for k in range(20):
            assert t0.send_nowait(1, b"from 0: %d" % k)
            assert t2.send_nowait(1, b"from 2: %d" % k)

        t1, _ = await cluster.start(nursery, 1)  # same member, same port
        await eventually(lambda: t1.connected() == {0, 2})
        received = await receive_n(t1, 40)
        for src in (0, 2):
            assert [f for s, f in received if s == src] == [
                b"from %d: %d" % (src, k) for k in range(20)]
        assert t1.send_nowait(0, b"back") and t1.send_nowait(2, b"back")
        assert await receive_n(t0, 1) == [(1, b"back")]
        assert await receive_n(t2, 1) == [(1, b"back")]
        assert t0.statistics().reconnects >= 1 and t2.statistics().reconnects >= 1
        nursery.cancel_scope.cancel()


async def test_frames_queued_for_a_peer_away_too_long_are_dropped_not_replayed(
    make_cluster: MakeCluster,
) -> None:
    # A member back after a long absence must not be fed the stale backlog (thousands of
    # old votes it would commit old slots by, instead of catching up): frames queued while it
    # was away longer than stale_backlog_s are dropped when it connects, and counted. (A
    # short absence keeps them: see the test below, where member 1 starts 50 ms late.)
    cluster = make_cluster(2, attrs.evolve(FAST, stale_backlog_s=0.2))
    async with trio.open_nursery() as nursery:
        t0, _ = await cluster.start(nursery, 0)  # member 1 is down
        assert all(t0.send_nowait(1, b"old %d" % k) for k in range(3))
        await trio.sleep(0.4)  # longer away than stale_backlog_s
        t1, _ = await cluster.start(nursery, 1)
        with trio.fail_after(5):
            while t0.statistics().frames_dropped_stale < 3:
                await trio.sleep(0.01)  # until the connection is up
        assert t0.send_nowait(1, b"new")
        assert await receive_n(t1, 1) == [(0, b"new")]
        assert t0.statistics().frames_dropped_stale == 3
        nursery.cancel_scope.cancel()


async def test_outgoing_queue_is_bounded_and_receive_applies_backpressure(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(2, attrs.evolve(FAST, queue_frames_max=8))
    async with trio.open_nursery() as nursery:
        t0, _ = await cluster.start(nursery, 0)  # member 1 is down
        await trio.sleep(0.05)
        results = [t0.send_nowait(1, b"%d" % k) for k in range(12)]
        assert results == [True] * 8 + [False] * 4
        assert not t0.send_nowait(0, b"self") and not t0.send_nowait(2, b"nobody")
        assert t0.statistics().frames_dropped_queue_full == 4

        t1, _ = await cluster.start(nursery, 1)
        assert await receive_n(t1, 8) == [(0, b"%d" % k) for k in range(8)]

        # Nobody calls t1.receive(): its reader stops after filling the receive channel.
        for k in range(100):
            while not t0.send_nowait(1, b"%d" % k):
                await trio.sleep(0.001)
        await eventually(lambda: t0.statistics().frames_sent == 108)
        await trio.sleep(0.2)
        assert t1.statistics().frames_received <= 8 + 8 + 1  # the channel, plus one in hand
        assert await receive_n(t1, 100) == [(0, b"%d" % k) for k in range(100)]
        nursery.cancel_scope.cancel()


async def test_idle_but_healthy_connections_stay_up_and_silent_ones_are_closed(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3, attrs.evolve(
        FAST, keepalive_interval_s=0.05, idle_timeout_s=0.3, handshake_timeout_s=0.3))
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        t2, _ = await cluster.start(nursery, 2)
        await eventually(lambda: t1.connected() == {2})
        await trio.sleep(1.2)  # four idle timeouts with nothing but keepalives
        assert t1.connected() == {2} and t2.connected() == {1}
        for t in (t1, t2):
            stats = t.statistics()
            assert stats.connections_closed == stats.idle_timeouts == stats.reconnects == 0

        # A socket that never sends its HELLO is closed after the HELLO timeout, here capped
        # by the handshake timeout.
        async with await trio.open_tcp_stream(HOST, cluster.port(1)) as stream:
            start = trio.current_time()
            await wait_for_eof(stream)
            assert trio.current_time() - start >= 0.25
        assert t1.statistics().handshakes_failed == t1.statistics().hello_timeouts == 1

        # An authenticated peer that goes silent is closed after the idle timeout.
        stream = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                     signer=cluster.keys.signers[0], keys=cluster.keys)
        async with stream:
            await eventually(lambda: t1.connected() == {0, 2})
            await wait_for_eof(stream)  # keepalives first, then the close
        await eventually(lambda: t1.connected() == {2})
        assert t1.statistics().idle_timeouts == 1
        assert t1.statistics().bad_frames == 0
        nursery.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_is_dropped_without_blocking_others(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3, attrs.evolve(FAST, keepalive_interval_s=0.05, idle_timeout_s=0.5),
                           frame_bytes_max=1024 * 1024)
    big = bytes(1024 * 1024)
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        t2, _ = await cluster.start(nursery, 2)
        stream = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                     signer=cluster.keys.signers[0], keys=cluster.keys)

        async def keepalives() -> None:  # looks alive, but never reads
            with contextlib.suppress(trio.BrokenResourceError):
                while True:
                    await stream.send_all(struct.pack(">I", 0))
                    await trio.sleep(0.05)

        async with stream, trio.open_nursery() as inner:
            inner.start_soon(keepalives)
            await eventually(lambda: t1.connected() == {0, 2})
            for _ in range(64):  # far more than loopback socket buffers hold
                assert t1.send_nowait(0, big)
            await trio.sleep(0.1)
            assert t1.send_nowait(2, b"not blocked")
            assert await receive_n(t2, 1, timeout_s=0.5) == [(1, b"not blocked")]
            await eventually(lambda: 0 not in t1.connected())
            assert t1.statistics().idle_timeouts == 1
            inner.cancel_scope.cancel()
        assert t1.connected() == {2}
        nursery.cancel_scope.cancel()


async def test_a_new_connection_from_a_peer_replaces_the_old_one(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(2)
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        old = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                  signer=cluster.keys.signers[0], keys=cluster.keys)
        await eventually(lambda: t1.connected() == {0})
        new = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                  signer=cluster.keys.signers[0], keys=cluster.keys)
        async with old, new:
            await wait_for_eof(old)
            await new.send_all(framed(b"via new"))
            assert await receive_n(t1, 1) == [(0, b"via new")]
            assert t1.connected() == {0}
            assert t1.statistics().reconnects == 1
        nursery.cancel_scope.cancel()


async def test_serve_twice_is_refused_and_a_bound_port_is_reported() -> None:
    keys = Keys(2)
    config = ClusterConfig(CLUSTER, keys.registry,
                           (MemberAddress(HOST, 0), MemberAddress(HOST, 0)))
    transport = TcpTransport(config=config, member=1, signer=keys.signers[1],
                             verifier=keys.verifier(), settings=FAST)
    assert transport.port is None
    async with trio.open_nursery() as nursery:
        port = await nursery.start(transport.serve)
        assert port == transport.port and port > 0
        with pytest.raises(RuntimeError):
            await transport.serve()
        nursery.cancel_scope.cancel()


def test_inconsistent_construction_is_a_config_error() -> None:
    keys = Keys(2)
    config = ClusterConfig(CLUSTER, keys.registry,
                           (MemberAddress(HOST, 1), MemberAddress(HOST, 2)))
    good: dict[str, Any] = {"config": config, "member": 0, "signer": keys.signers[0],
            "verifier": keys.verifier()}
    bad_cases: list[dict[str, Any]] = [
        {"member": 2},
        {"signer": keys.signers[1]},
        {"signer": Signer(keys.keys[0], cluster_id=b"other")},
        {"verifier": Verifier(keys.registry, cluster_id=b"other")},
        {"verifier": Verifier(KeyRegistry((keys.registry.public_keys[0],)),
                              cluster_id=CLUSTER)},
    ]
    TcpTransport(**good)
    for change in bad_cases:
        with pytest.raises(ConfigError):
            TcpTransport(**(good | change))
    with pytest.raises(ConfigError):
        TcpSettings(idle_timeout_s=0)
    with pytest.raises(ConfigError):
        TcpSettings(connect_backoff_initial_s=3.0, connect_backoff_max_s=1.0)
    with pytest.raises(ConfigError):
        TcpSettings(keepalive_interval_s=2.0, idle_timeout_s=1.0)
    for name in ("hellos_pending_max", "hellos_pending_per_source_max",
                 "handshakes_concurrent_max"):
        for value in (0, 2.5, True):
            with pytest.raises(ConfigError, match=name):
                TcpSettings(**{name: value})
    with pytest.raises(ConfigError, match="hello_timeout_s"):
        TcpSettings(hello_timeout_s=0)


# -- admission of unauthenticated connections -------------------------------------------------

HELLO_BYTES = 4 + 39


def acceptor(cluster: Cluster, member: int) -> tuple[TcpTransport, Signer, Verifier]:
    """A transport for ``member`` with a signer and verifier of its own, to count their work."""
    signer = Signer(cluster.keys.keys[member], cluster_id=CLUSTER)
    verifier = cluster.keys.verifier()
    transport = TcpTransport(config=cluster.config, member=member, signer=signer,
                             verifier=verifier, settings=cluster.settings)
    return transport, signer, verifier


async def test_a_stranger_gets_a_hello_and_no_signature_and_a_silent_one_goes_quickly(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(3, attrs.evolve(FAST, hello_timeout_s=0.4, handshake_timeout_s=1.0))
    t1, signer, verifier = acceptor(cluster, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_scoped, t1)
        start = trio.current_time()
        assert len(await closed_by_acceptor(await open_raw(cluster.port(1)))) == HELLO_BYTES
        assert 0.35 <= trio.current_time() - start < 0.9  # the HELLO timeout, not the whole
        assert t1.statistics().hello_timeouts == 1

        # Ids member 1 never accepts: itself, a larger one, out of range. Closed at once.
        for claimed in (1, 2, 3, 0xFFFF):
            stream = await open_raw(cluster.port(1), first=hello(claimed))
            assert len(await closed_by_acceptor(stream, timeout_s=0.3)) == HELLO_BYTES
        assert t1.statistics().hellos_refused == 4

        # A valid HELLO for a real member, then nothing: kept until the handshake timeout,
        # with no PROOF from member 1, whose proof follows a valid one only.
        start = trio.current_time()
        stream = await open_raw(cluster.port(1), first=hello(0))
        assert len(await closed_by_acceptor(stream)) == HELLO_BYTES
        assert trio.current_time() - start >= 0.9
        # ... and a PROOF that does not verify gets none either.
        stream = await open_raw(cluster.port(1), first=hello(0))
        await receive_framed(stream)
        await stream.send_all(framed(bytes(64)))
        assert await closed_by_acceptor(stream) == b""
        stats = t1.statistics()
        assert stats.handshakes_failed == 7 and stats.hello_timeouts == 1
        assert signer.signatures_made == 0
        assert verifier.statistics().verifications == 1  # the bad PROOF only

        # The real member 0 still gets in, and is the first to be signed for.
        stream = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                     signer=cluster.keys.signers[0], keys=cluster.keys)
        async with stream:
            await eventually(lambda: t1.connected() == {0})
        assert signer.signatures_made == 1
        nursery.cancel_scope.cancel()


async def test_a_source_with_too_many_connections_waiting_for_hello_loses_its_oldest(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(2, attrs.evolve(
        FAST, hello_timeout_s=1.0, hellos_pending_per_source_max=2))
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        first = await open_raw(cluster.port(1))
        second = await open_raw(cluster.port(1))
        other = await open_raw(cluster.port(1), source="127.0.0.2")
        await eventually_equal(lambda: t1.statistics().connections_opened, 3)
        third = await open_raw(cluster.port(1))
        start = trio.current_time()
        assert len(await closed_by_acceptor(first)) == HELLO_BYTES
        assert trio.current_time() - start < 0.5  # evicted, not timed out
        await eventually_equal(lambda: t1.statistics().connections_closed, 1)
        stats = t1.statistics()
        assert (stats.evictions_source, stats.evictions_hello, stats.hello_timeouts) == (1, 0, 0)
        # The member itself, from the crowded source, is let in all the same.
        stream = await raw_handshake(cluster.port(1), claimed=0, acceptor=1,
                                     signer=cluster.keys.signers[0], keys=cluster.keys)
        async with stream, second, other, third:
            await eventually(lambda: t1.connected() == {0})
            assert t1.statistics().evictions_source == 2  # second made room for it
        nursery.cancel_scope.cancel()


async def test_a_full_hello_pool_evicts_the_oldest_of_the_largest_source(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(2, attrs.evolve(
        FAST, hello_timeout_s=1.0, hellos_pending_max=3, hellos_pending_per_source_max=3))
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        streams: dict[str, trio.SocketStream] = {}
        for name, source in (("a1", "127.0.0.2"), ("b1", "127.0.0.3"), ("a2", "127.0.0.2")):
            streams[name] = await open_raw(cluster.port(1), source=source)
            await eventually_equal(lambda: t1.statistics().connections_opened, len(streams))
        # A newcomer from a third source evicts a1: source .2 holds two, .3 one.
        streams["c1"] = await open_raw(cluster.port(1), source="127.0.0.4")
        assert len(await closed_by_acceptor(streams.pop("a1"), timeout_s=0.5)) == HELLO_BYTES
        await eventually_equal(lambda: t1.statistics().evictions_hello, 1)
        # Now each source holds one: the oldest of them, b1, goes.
        streams["d1"] = await open_raw(cluster.port(1), source="127.0.0.5")
        assert len(await closed_by_acceptor(streams.pop("b1"), timeout_s=0.5)) == HELLO_BYTES
        await eventually_equal(lambda: t1.statistics().evictions_hello, 2)
        assert t1.statistics().connections_closed == 2
        for stream in streams.values():
            await stream.aclose()
        nursery.cancel_scope.cancel()


async def test_the_proving_pool_is_fair_by_claimed_id_and_the_real_member_wins(
    make_cluster: MakeCluster,
) -> None:
    cluster = make_cluster(4, attrs.evolve(FAST, handshakes_concurrent_max=3))
    async with trio.open_nursery() as nursery:
        t3, _ = await cluster.start(nursery, 3)
        streams: dict[str, trio.SocketStream] = {}
        for name, claimed in (("x1", 0), ("x2", 0), ("y", 1)):
            # Waiting for member 3's HELLO before sending ours orders the arrivals.
            streams[name] = stream = await open_raw(cluster.port(3))
            await receive_framed(stream)
            await stream.send_all(hello(claimed))
        # A claim of id 2 evicts the oldest claim of 0, the id claimed most often.
        streams["z"] = stream = await open_raw(cluster.port(3))
        await receive_framed(stream)
        await stream.send_all(hello(2))
        assert await closed_by_acceptor(streams.pop("x1"), timeout_s=0.5) == b""
        assert t3.statistics().evictions_proof == 1
        # With one claim per id, the real member 0's claim evicts the other claim of 0.
        real = await raw_handshake(cluster.port(3), claimed=0, acceptor=3,
                                   signer=cluster.keys.signers[0], keys=cluster.keys)
        async with real:
            await eventually(lambda: t3.connected() == {0})
            assert await closed_by_acceptor(streams.pop("x2"), timeout_s=0.5) == b""
            for stream in streams.values():  # y and z wait out their handshake timeout
                assert await closed_by_acceptor(stream) == b""
            stats = t3.statistics()
            assert (stats.evictions_proof, stats.handshakes_failed) == (2, 4)
        nursery.cancel_scope.cancel()


# -- a flood of keyless connections -----------------------------------------------------------

FLOOD_CONNECTIONS = 500
RESTARTS = 8
RESTART_BOUND_S = 5.0
# The defaults of the defence, and of the handshake timeout: a dialer waits that long for the
# acceptor's HELLO, and a flooded acceptor (sharing this process with the flood) accepts late.
FLOOD_SETTINGS = attrs.evolve(FAST, handshake_timeout_s=TcpSettings().handshake_timeout_s)


@attrs.define
class Flood:
    """Keyless connections to ``port``, each reconnecting as soon as it is closed, from
    ``sources`` in turn; each sends ``first`` (nothing, or a HELLO) and then nothing more."""

    port: int
    first: bytes
    sources: tuple[str, ...]
    connects: int = 0
    up: int = 0
    all_up: trio.Event = attrs.field(factory=trio.Event)

    async def connection(self, index: int, size: int) -> None:
        source = self.sources[index % len(self.sources)]
        counted = False
        while True:
            try:
                stream = await open_raw(self.port, source, self.first)
            except OSError:  # e.g. out of local ports for a moment: just go again
                await trio.lowlevel.checkpoint()
                continue
            self.connects += 1
            if not counted:
                counted = True
                self.up += 1
                if self.up == size:
                    self.all_up.set()
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await closed_by_acceptor(stream, timeout_s=math.inf)


def allow_files(count: int) -> int:
    """Raise the open-files limit towards ``count`` if allowed; how many flood connections
    fit (each takes a descriptor on both ends), at most FLOOD_CONNECTIONS."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        soft = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return FLOOD_CONNECTIONS if soft == resource.RLIM_INFINITY else min(
        FLOOD_CONNECTIONS, (soft - 256) // 2)


@pytest.mark.parametrize("attack", ["silent", "hello-for-the-member", "many-sources"])
async def test_a_keyless_flood_cannot_keep_a_restarting_member_out(
    attack: str, make_cluster: MakeCluster
) -> None:
    """Hundreds of connections without a key, reconnecting at once when closed, all from the
    member's own address (or from a hundred others): each of eight restarts of member 0 gets
    its connection to member 1 within a few seconds. (Before admission by eviction, with a
    refusing pool of 64, two restarts in eight got through the silent flood.)"""
    size = allow_files(2 * FLOOD_CONNECTIONS + 512)
    assert size >= 300, "too few file descriptors for a flood of several hundred"
    cluster = make_cluster(2, FLOOD_SETTINGS)
    first = hello(0) if attack == "hello-for-the-member" else b""
    sources = tuple(f"127.0.0.{2 + k}" for k in range(100)) if attack == "many-sources" else (
        HOST,)
    async with trio.open_nursery() as nursery:
        t1, _ = await cluster.start(nursery, 1)
        flood = Flood(cluster.port(1), first, sources)
        async with trio.open_nursery() as attackers:
            for k in range(size):
                attackers.start_soon(flood.connection, k, size)
            with trio.fail_after(10):
                await flood.all_up.wait()
            durations = []
            for _ in range(RESTARTS):
                connects = flood.connects
                start = trio.current_time()
                t0, scope = await cluster.start(nursery, 0)
                await eventually(lambda t0=t0: t0.connected() == {1} and 0 in t1.connected(),
                                 timeout_s=RESTART_BOUND_S)
                durations.append(trio.current_time() - start)
                assert flood.connects > connects  # the flood went on meanwhile
                scope.cancel()
                await eventually(lambda: 0 not in t1.connected())
            attackers.cancel_scope.cancel()
        print(f"{attack}: {size} connections, restarts took "
              + ", ".join(f"{d:.2f}" for d in durations) + " s")
        stats = t1.statistics()
        assert stats.reconnects == RESTARTS - 1
        fired = {"silent": stats.evictions_source, "hello-for-the-member": stats.evictions_proof,
                 "many-sources": stats.evictions_hello}[attack]
        assert fired > 0 and stats.handshakes_failed >= fired
        nursery.cancel_scope.cancel()
