"""The client's side of the handshake and the framing, against a real client port and
against peers that are not who cluster.toml says."""

from __future__ import annotations

import hashlib
import struct

import pytest
import trio

from btob.client.connection import HandshakeFailed, MemberConnection, connect_member
from btob.crypto import Signer, SigningKey, Verifier
from btob.testing import open_local_cluster

KEY = SigningKey.from_seed(hashlib.sha256(b"connection test").digest())


async def test_a_client_connects_to_the_member_the_config_names_and_to_no_other() -> None:
    async with open_local_cluster(2, clients=True) as cluster:
        config = cluster.client_config
        signer = Signer(KEY, cluster_id=config.cluster_id)
        verifier = Verifier(config.registry, cluster_id=config.cluster_id)
        address = config.client_address(1)
        assert address is not None
        link = await connect_member(address.host, address.port, 1, signer=signer,
                                    verifier=verifier, frame_bytes_max=1024, timeout_s=5)
        assert link.member == 1
        await link.aclose()
        # the member at that address is member 1: expecting member 0 there fails
        with pytest.raises(HandshakeFailed, match="not member 0"):
            await connect_member(address.host, address.port, 0, signer=signer,
                                 verifier=verifier, frame_bytes_max=1024, timeout_s=5)
        # a verifier of another cluster does not accept the member's proof
        other = Verifier(config.registry, cluster_id=b"another cluster")
        with pytest.raises(HandshakeFailed, match="failed to prove"):
            await connect_member(address.host, address.port, 1, signer=signer,
                                 verifier=other, frame_bytes_max=1024, timeout_s=5)


async def test_an_impostor_that_answers_with_a_bad_proof_is_refused() -> None:
    async with open_local_cluster(1, clients=True) as cluster:
        config = cluster.client_config

        async def impostor(stream: trio.SocketStream) -> None:
            await stream.receive_some(69)
            await stream.send_all(struct.pack(">4sBH32s64s", b"btcm", 1, 0, b"n" * 32,
                                              b"s" * 64))
            await trio.sleep(5)

        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, impostor, 0)
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(HandshakeFailed, match="failed to prove"):
                await connect_member("127.0.0.1", port, 0,
                                     signer=Signer(KEY, cluster_id=config.cluster_id),
                                     verifier=Verifier(config.registry,
                                                       cluster_id=config.cluster_id),
                                     frame_bytes_max=1024, timeout_s=5)
            nursery.cancel_scope.cancel()


async def test_frames_are_read_whole_keepalives_skipped_and_oversize_ends_the_stream() -> None:
    left, right = trio.testing.memory_stream_pair()
    link = MemberConnection(left, 0, frame_bytes_max=8)  # type: ignore[arg-type]
    await right.send_all(struct.pack(">I", 0) + struct.pack(">I", 3) + b"abc")
    assert await link.receive() == b"abc"
    await right.send_all(struct.pack(">I", 2) + b"x")  # a frame cut in two writes
    await right.send_all(b"y")
    assert await link.receive() == b"xy"
    await right.send_all(struct.pack(">I", 9) + b"123456789")
    assert await link.receive() is None  # above the bound
    await link.send(b"out")
    assert await right.receive_some(100) == struct.pack(">I", 3) + b"out"


async def test_the_end_of_the_stream_inside_a_frame_is_the_end() -> None:
    left, right = trio.testing.memory_stream_pair()
    link = MemberConnection(left, 0, frame_bytes_max=64)  # type: ignore[arg-type]
    await right.send_all(struct.pack(">I", 5) + b"ab")
    await right.aclose()
    assert await link.receive() is None
