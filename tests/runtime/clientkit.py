"""A minimal client written from the wire format in ``btob.runtime.clientport``'s docstring, not
from its code: the handshake by hand, signed REQUESTs, length-prefixed frames."""

from __future__ import annotations

import hashlib
import os
import struct

import trio

from btob.core.clientwire import ClientRequest, sign_request
from btob.crypto import KeyRegistry, Signer, SigningKey, Verifier

HOST = "127.0.0.1"


def client_key(name: str) -> SigningKey:
    """A deterministic client key."""
    return SigningKey.from_seed(hashlib.sha256(b"client " + name.encode()).digest())


async def read_exactly(stream: trio.SocketStream, size: int) -> bytes:
    """``size`` bytes, or fewer if the stream ended first."""
    data = b""
    while len(data) < size:
        chunk = await stream.receive_some(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


async def closed_without_a_byte(stream: trio.SocketStream, within_s: float = 5.0) -> bool:
    """True if the member closes ``stream`` without sending anything (a reset counts)."""
    with trio.fail_after(within_s):
        try:
            return await stream.receive_some(1) == b""
        except trio.BrokenResourceError:
            return True


def hello(key: bytes, nonce: bytes) -> bytes:
    """The client's HELLO."""
    return b"btcl" + bytes([1]) + key + nonce


class RawClient:
    """One handshaken connection of the client holding ``key`` to member ``member``."""

    def __init__(self, stream: trio.SocketStream, signer: Signer, member: int) -> None:
        self.stream = stream
        self.signer = signer
        self.member = member
        self.session = 1
        self.seq = 0
        self._buffer = b""

    @classmethod
    async def connect(cls, port: int, key: SigningKey, *, cluster_id: bytes,
                      registry: KeyRegistry, member: int,
                      proof_member: int | None = None,
                      proof_signer: Signer | None = None) -> RawClient:
        """Connect and handshake; the member's answer is checked against ``registry``.

        ``proof_member`` and ``proof_signer`` make a wrong proof (for another member, or
        signed with another key). Raises AssertionError if the member's answer is wrong.
        """
        signer = Signer(key, cluster_id=cluster_id)
        stream = await trio.open_tcp_stream(HOST, port)
        nonce = os.urandom(32)
        await stream.send_all(hello(signer.public_key, nonce))
        answer = await read_exactly(stream, 4 + 1 + 2 + 32 + 64)
        assert len(answer) == 103, f"the member answered {len(answer)} bytes"
        magic, version, member_id, member_nonce, signature = struct.unpack(">4sBH32s64s",
                                                                           answer)
        assert (magic, version, member_id) == (b"btcm", 1, member)
        verifier = Verifier(registry, cluster_id=cluster_id)
        assert verifier.verify(member, "client.handshake.member",
                               nonce + member_nonce + signer.public_key, signature)
        target = member if proof_member is None else proof_member
        proof = (proof_signer or signer).sign(
            "client.handshake", member_nonce + nonce + target.to_bytes(2, "big"))
        await stream.send_all(proof)
        return cls(stream, signer, member)

    def request(self, payload: bytes) -> bytes:
        """The next signed REQUEST frame of this client's session."""
        frame = sign_request(ClientRequest(self.signer.public_key, self.session, self.seq,
                                           payload), self.signer.sign)
        self.seq += 1
        return frame

    async def send(self, frame: bytes) -> None:
        """Send one length-prefixed frame."""
        await self.stream.send_all(struct.pack(">I", len(frame)) + frame)

    async def frame(self) -> bytes | None:
        """The next frame from the member that is not a keepalive; None at end of stream."""
        while True:
            while len(self._buffer) < 4 or \
                    len(self._buffer) < 4 + struct.unpack(">I", self._buffer[:4])[0]:
                try:
                    chunk = await self.stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return None
                if not chunk:
                    return None
                self._buffer += chunk
            (length,) = struct.unpack(">I", self._buffer[:4])
            frame, self._buffer = self._buffer[4:4 + length], self._buffer[4 + length:]
            if frame:
                return frame
