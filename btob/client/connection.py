"""One authenticated TCP connection from a client to one member's client port.

Handshake (the member side is :mod:`btob.runtime.clientport`): the client sends ``HELLO =
b"btcl" | version | client public key (32) | nonce (32)``; the member answers ``b"btcm" |
version | member id (2 bytes) | nonce (32) | signature``, its signature under kind
``"client.handshake.member"`` of ``client nonce | member nonce | client key``, which the client
checks against the member's key in ``cluster.toml``; then the client sends its own signature,
under kind ``"client.handshake"``, of ``member nonce | client nonce | member id``. Fresh nonces
on both sides make every proof good for one connection only; the domain tags bind them to the
cluster and the protocol version.

After it, frames are a 4-byte big-endian length and that many bytes; a zero length is a
keepalive. The client sends REQUEST frames; the member sends RECEIPT and NOTICE frames.
"""

from __future__ import annotations

import secrets

import trio

from btob._errors import BtobError, WireError
from btob.core.clientwire import (
    CLIENT_HANDSHAKE_KIND,
    CLIENT_HELLO,
    HANDSHAKE_NONCE_BYTES,
    HANDSHAKE_VERSION,
    MEMBER_ANSWER,
    MEMBER_HANDSHAKE_KIND,
    client_proof_body,
    member_proof_body,
)
from btob.crypto import Signer, Verifier
from btob.runtime.framing import FrameReader, framed

__all__ = ["HandshakeFailed", "MemberConnection", "connect_member"]


class HandshakeFailed(BtobError):
    """The member at an address did not prove it is the member ``cluster.toml`` names."""


class MemberConnection:
    """A handshaken connection to one member: send frames, receive frames."""

    def __init__(self, stream: trio.SocketStream, member: int, frame_bytes_max: int,
                 reader: FrameReader | None = None) -> None:
        self.member = member
        """The member at the other end (proven by its handshake signature)."""
        self._stream = stream
        self._frame_bytes_max = frame_bytes_max
        self._reader = reader or FrameReader(stream)  # the handshake's, with what it buffered
        self._send_lock = trio.Lock()

    async def send(self, frame: bytes) -> None:
        """Send one frame (raises ``trio.BrokenResourceError`` or ``OSError`` if it broke)."""
        async with self._send_lock:
            await self._stream.send_all(framed(frame))

    async def receive(self) -> bytes | None:
        """The next frame (keepalives skipped), or None at the end of the stream or after a
        malformed or oversized one."""
        while True:
            try:
                frame = await self._reader.read_frame(self._frame_bytes_max)
            except WireError:
                return None
            if frame != b"":
                return frame

    async def aclose(self) -> None:
        """Close the connection."""
        await self._stream.aclose()


async def connect_member(host: str, port: int, member: int, *, signer: Signer,
                         verifier: Verifier, frame_bytes_max: int,
                         timeout_s: float) -> MemberConnection:
    """Connect to ``member`` at ``host:port`` and run the handshake within ``timeout_s``.

    Raises :class:`HandshakeFailed`, ``OSError`` or ``trio.TooSlowError``.
    """
    with trio.fail_after(timeout_s):
        stream = await trio.open_tcp_stream(host, port)
        try:
            nonce = secrets.token_bytes(HANDSHAKE_NONCE_BYTES)
            await stream.send_all(CLIENT_HELLO.pack(b"btcl", HANDSHAKE_VERSION,
                                                    signer.public_key, nonce))
            reader = FrameReader(stream)
            answer_bytes = await reader.exactly(MEMBER_ANSWER.size)
            if answer_bytes is None:
                raise HandshakeFailed("the member closed the connection during the handshake")
            magic, version, claimed, member_nonce, proof = MEMBER_ANSWER.unpack(answer_bytes)
            if magic != b"btcm" or version != HANDSHAKE_VERSION or claimed != member:
                raise HandshakeFailed(f"the peer at {host}:{port} is not member {member}")
            answer = member_proof_body(client_nonce=nonce, member_nonce=member_nonce,
                                       client=signer.public_key)
            if not verifier.verify(member, MEMBER_HANDSHAKE_KIND, answer, proof):
                raise HandshakeFailed(f"member {member} at {host}:{port} failed to prove "
                                      f"its key")
            body = client_proof_body(member_nonce=member_nonce, client_nonce=nonce,
                                     member=member)
            await stream.send_all(signer.sign(CLIENT_HANDSHAKE_KIND, body))
        except BaseException:
            await stream.aclose()
            raise
    return MemberConnection(stream, member, frame_bytes_max, reader)
