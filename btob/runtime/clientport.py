"""A member's client port: authenticated TCP connections from clients, carrying REQUESTs in
and RECEIPTs and NOTICEs out.

Theory of operation
-------------------
Handshake. Fixed-size messages, no length prefix. The client opens with ``HELLO = b"btcl" |
version (1 byte) | client public key (32) | nonce (32 random bytes)``. The member answers
``b"btcm" | version | member id (2 bytes, big-endian) | nonce (32) | signature (64)``, its
signature under kind ``"client.handshake.member"`` of ``client nonce | member nonce | client
key``, so the client knows which member it reached and that the answer is fresh. The client
then sends its 64-byte proof: its signature under kind ``"client.handshake"`` of ``member
nonce | client nonce | member id (2 bytes)``, checked with the key it named. The signers'
domain tags bind both to the protocol version and the cluster id; the two kinds and the
mirrored nonce order keep one side's signature from ever serving as the other's, and the
member id keeps a proof made for one member from opening a connection to another. Like the
member transport (:mod:`btob.runtime.tcp`) this authenticates who is at the other end of the
socket, nothing more: requests carry their own signatures, checked by the member.

Cheap refusals first. Nothing is signed or verified for a connection until its HELLO is in:
a HELLO must arrive within ``hello_timeout_s``; a malformed one, or one naming a key the
cluster does not admit (unless clients are open), closes the connection at once; so does a
HELLO when the authenticated bounds (``client_connections_max`` in all,
``client_connections_per_address_max`` per source address) leave no room for its key.
Connections not yet authenticated are bounded too, in all
(``client_handshakes_concurrent_max``) and per source address
(``client_handshakes_per_address_max``); when a newcomer finds its bound full, the oldest
connection of that bound that has not sent a HELLO is closed to make room - one that merely
holds a socket open loses to one that speaks - and only when every slot is past its HELLO is
the newcomer refused.

Connections. One per client key: a newly authenticated connection of a key replaces the older
one. After the handshake both directions carry frames: a 4-byte big-endian length and that
many bytes, a zero length being a keepalive. A client sends only REQUEST frames of its own key
(:func:`btob.core.clientwire.decode_request`, up to the cluster's ``request_bytes_max``); any
other frame closes the connection (counted). Requests go through one bounded channel to the
member; when it is full, readers stop reading and TCP pushes back on the clients. Each
connection has a bounded outgoing queue: a frame that does not fit, or whose client is not
connected, is dropped and counted (a client retries, or asks another member). A connection that
receives nothing for ``idle_timeout_s``, or whose write stalls that long, is closed; the
member sends keepalives every ``keepalive_interval_s`` so a client can tell it is alive.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from btob._errors import ConfigError, WireError
from btob.core.clients import ClientAdmission
from btob.core.clientwire import (
    CLIENT_HANDSHAKE_KIND,
    CLIENT_HELLO,
    CLIENT_KEY_BYTES,
    HANDSHAKE_NONCE_BYTES,
    HANDSHAKE_VERSION,
    MEMBER_ANSWER,
    MEMBER_HANDSHAKE_KIND,
    client_proof_body,
    decode_request,
    member_proof_body,
)
from btob.crypto import Signer, Verifier
from btob.runtime.config import ClusterConfig
from btob.runtime.framing import (
    SOCKET_ERRORS,
    FrameReader,
    WriterState,
    until_broken,
    watchdog,
    write_loop,
)

__all__ = [
    "CLIENT_HANDSHAKE_KIND",
    "CLIENT_HELLO",
    "MEMBER_ANSWER",
    "MEMBER_HANDSHAKE_KIND",
    "ClientPort",
    "ClientPortSettings",
    "ClientPortStatistics",
    "client_proof_body",
    "member_proof_body",
]

_SIGNATURE_BYTES = 64


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0 \
            or value != value:
        raise ConfigError(f"setting {attribute.name} must be a positive number, got {value!r}")


def _count(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"setting {attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class ClientPortSettings:
    """Bounds and timings of a :class:`ClientPort`: a member's own tuning.

    Counts must be positive integers and times positive, the per-address bounds at most the
    global ones and the keepalive interval below the idle timeout; :class:`ConfigError`
    otherwise.
    """

    client_connections_max: int = attrs.field(default=1024, validator=_count)
    """Authenticated client connections at once; a HELLO past it is refused."""
    client_connections_per_address_max: int = attrs.field(default=64, validator=_count)
    """Authenticated client connections from one source address at once."""
    client_handshakes_concurrent_max: int = attrs.field(default=128, validator=_count)
    """Connections not yet authenticated at once; past it the oldest without a HELLO goes."""
    client_handshakes_per_address_max: int = attrs.field(default=32, validator=_count)
    """Connections not yet authenticated from one source address at once."""
    hello_timeout_s: float = attrs.field(default=0.5, validator=_positive)
    """Time a new connection has to send its HELLO."""
    handshake_timeout_s: float = attrs.field(default=3.0, validator=_positive)
    """Time a client has, after the member's answer, to send its proof."""
    queue_frames_max: int = attrs.field(default=1024, validator=_count)
    """Frames queued for one connection; a frame that does not fit is dropped."""
    requests_queued_max: int = attrs.field(default=1024, validator=_count)
    """Requests waiting for the member, from all clients; past it readers wait."""
    keepalive_interval_s: float = attrs.field(default=2.0, validator=_positive)
    """A keepalive is sent when nothing was sent on a connection for this long."""
    idle_timeout_s: float = attrs.field(default=30.0, validator=_positive)
    """A connection that received nothing for this long, or whose write stalled this long,
    is closed."""

    def __attrs_post_init__(self) -> None:
        if self.client_connections_per_address_max > self.client_connections_max:
            raise ConfigError("client_connections_per_address_max must be at most "
                              "client_connections_max")
        if self.client_handshakes_per_address_max > self.client_handshakes_concurrent_max:
            raise ConfigError("client_handshakes_per_address_max must be at most "
                              "client_handshakes_concurrent_max")
        if self.keepalive_interval_s >= self.idle_timeout_s:
            raise ConfigError("keepalive_interval_s must be below idle_timeout_s")


@attrs.frozen(kw_only=True)
class ClientPortStatistics:
    """A snapshot of a :class:`ClientPort`'s counters (monotonic since construction)."""

    connections_accepted: int
    """TCP connections accepted (authenticated or not)."""
    connections_closed: int
    handshakes_refused_full: int
    """Newcomers closed at once: every handshake slot of their bound was past its HELLO."""
    evicted_without_hello: int
    """Connections closed, before their HELLO, to make room for a newcomer."""
    hello_timeouts: int
    """Connections closed because no HELLO came within ``hello_timeout_s``."""
    not_admitted: int
    """HELLOs naming a key the cluster does not admit (closed before any signature work)."""
    connections_full: int
    """HELLOs refused (before any signature work) because the authenticated bounds were
    full."""
    handshakes_failed: int
    """Connections closed after their HELLO without authenticating: a bad or late proof."""
    bad_frames: int
    """Connections closed for malformed bytes: a bad HELLO or proof size, a bad length, end
    of stream inside a frame, a frame that is not a REQUEST of the connection's key."""
    authenticated: int
    """Handshakes that succeeded."""
    replaced: int
    """Authenticated connections closed because the same key connected again."""
    idle_timeouts: int
    """Authenticated connections closed because nothing arrived, or a write stalled, for
    ``idle_timeout_s``."""
    requests_received: int
    """REQUEST frames handed on to the member."""
    frames_sent: int
    """Frames (not keepalives) written to clients."""
    frames_dropped_queue_full: int
    """Frames for a client whose outgoing queue was full."""
    frames_dropped_not_connected: int
    """Frames for a client key with no connection."""


@attrs.define
class _Counters:
    connections_accepted: int = 0
    connections_closed: int = 0
    handshakes_refused_full: int = 0
    evicted_without_hello: int = 0
    hello_timeouts: int = 0
    not_admitted: int = 0
    connections_full: int = 0
    handshakes_failed: int = 0
    bad_frames: int = 0
    authenticated: int = 0
    replaced: int = 0
    idle_timeouts: int = 0
    requests_received: int = 0
    frames_sent: int = 0
    frames_dropped_queue_full: int = 0
    frames_dropped_not_connected: int = 0


@attrs.define(eq=False)
class _Handshaking:
    """A connection holding a handshake slot."""

    address: str
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    hello: bool = False


@attrs.define(eq=False)
class _Connection:
    """An authenticated connection."""

    client: bytes
    address: str
    outbox_send: trio.MemorySendChannel[bytes]
    outbox_receive: trio.MemoryReceiveChannel[bytes]
    writer: WriterState
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    finished: trio.Event = attrs.field(factory=trio.Event)


class _Refused(Exception):
    """The handshake ends here (already counted)."""


def _source(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:  # already reset by the peer
        return "?"


class ClientPort:
    """Serves the clients of member ``member`` of ``config`` on its client address.

    Construct it, run :meth:`serve` in a nursery (``await nursery.start(port.serve)``), then
    take requests with :meth:`receive` and answer with :meth:`send_nowait`. ``signer`` must
    hold the member's key; ``admission`` (default: the config's) says which client keys may
    connect; ``listen_host`` overrides the host to bind. Attributes: ``port`` (the bound port
    once serving, else None) and ``verifier`` (what checks the clients' proofs).
    Raises :class:`ConfigError` if the member serves no clients or the signer is not its.
    """

    def __init__(
        self,
        *,
        config: ClusterConfig,
        member: int,
        signer: Signer,
        settings: ClientPortSettings | None = None,
        admission: ClientAdmission | None = None,
        listen_host: str | None = None,
    ) -> None:
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < config.n:
            raise ConfigError(f"member {member!r} is not in a cluster of {config.n}")
        address = config.client_address(member)
        if address is None:
            raise ConfigError(f"member {member} has no client_port in the cluster config")
        if signer.cluster_id != config.cluster_id:
            raise ConfigError("signer and config must have the same cluster_id")
        if signer.public_key != config.registry.public_key(member):
            raise ConfigError(f"the signer's key is not member {member}'s registered key")
        self._config = config
        self._member = member
        self._address = address
        self._signer = signer
        self.verifier = Verifier(config.registry, cluster_id=config.cluster_id)
        self._settings = settings if settings is not None else ClientPortSettings()
        self._admission = admission if admission is not None else config.client_admission()
        self._listen_host = listen_host
        self._request_bytes_max = config.settings.request_bytes_max
        self.port: int | None = None
        self._serving = False
        self._counters = _Counters()
        # Handshake slots in the order they were taken: the first without a HELLO is the
        # oldest, the one evicted.
        self._handshaking: dict[_Handshaking, None] = {}
        self._handshaking_by_address: dict[str, int] = {}
        self._connections: dict[bytes, _Connection] = {}
        self._connections_by_address: dict[str, int] = {}
        self._inbox_send, self._inbox_receive = trio.open_memory_channel[tuple[bytes, bytes]](
            self._settings.requests_queued_max)

    # -- the public surface -------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on the member's client address and serve clients, forever.

        Reports the bound port through ``task_status``. Returns only by cancellation, which
        closes every socket. Raises :class:`ConfigError` naming the member and ``host:port``
        if the address cannot be bound, `RuntimeError` if already serving. Client
        misbehaviour is counted, never raised.
        """
        if self._serving:
            raise RuntimeError("this ClientPort is already serving")
        self._serving = True
        try:
            host = self._listen_host if self._listen_host is not None else self._address.host
            try:
                listeners = await trio.open_tcp_listeners(self._address.port, host=host)
            except OSError as exc:  # in use, not ours, unresolvable: the operator's to fix
                reason = exc.strerror or str(exc)
                raise ConfigError(f"member {self._member} cannot serve clients on "
                                  f"{host}:{self._address.port}: {reason}") from None
            try:
                self.port = int(listeners[0].socket.getsockname()[1])
                async with trio.open_nursery() as nursery:
                    await nursery.start(trio.serve_listeners, self._handle_accepted, listeners)
                    task_status.started(self.port)
            finally:
                with trio.CancelScope(shield=True):
                    for listener in listeners:
                        await listener.aclose()
        finally:
            self._serving = False

    async def receive(self) -> tuple[bytes, bytes]:
        """The next ``(client key, REQUEST frame)``; the frame is well formed and names the
        key its connection authenticated, its signature is not checked yet."""
        return await self._inbox_receive.receive()

    def send_nowait(self, client: bytes, frame: bytes) -> bool:
        """Queue ``frame`` for ``client``'s connection; never blocks. False (counted) if the
        client is not connected or its queue is full."""
        connection = self._connections.get(client)
        if connection is None:
            self._counters.frames_dropped_not_connected += 1
            return False
        try:
            connection.outbox_send.send_nowait(bytes(frame))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._counters.frames_dropped_queue_full += 1
            return False
        return True

    def connected(self) -> frozenset[bytes]:
        """The client keys with an authenticated connection open."""
        return frozenset(self._connections)

    def statistics(self) -> ClientPortStatistics:
        """A frozen snapshot of the counters."""
        return ClientPortStatistics(**attrs.asdict(self._counters))

    # -- handshake slots ----------------------------------------------------------------

    def _take_slot(self, address: str) -> _Handshaking | None:
        """A handshake slot for a newcomer from ``address``, evicting the oldest HELLO-less
        connection of a full bound; None if that bound holds none."""
        settings = self._settings
        here_full = self._handshaking_by_address.get(address, 0) >= \
            settings.client_handshakes_per_address_max
        if here_full and not self._evict(lambda slot: slot.address == address):
            return None
        all_full = len(self._handshaking) >= settings.client_handshakes_concurrent_max
        if all_full and not self._evict(lambda slot: True):
            return None
        slot = _Handshaking(address)
        self._handshaking[slot] = None
        self._handshaking_by_address[address] = self._handshaking_by_address.get(address, 0) + 1
        return slot

    def _evict(self, eligible: Callable[[_Handshaking], bool]) -> bool:
        for slot in self._handshaking:
            if not slot.hello and eligible(slot):
                self._release_slot(slot)
                slot.cancel_scope.cancel()
                self._counters.evicted_without_hello += 1
                return True
        return False

    def _release_slot(self, slot: _Handshaking) -> None:
        if slot in self._handshaking:
            del self._handshaking[slot]
            left = self._handshaking_by_address[slot.address] - 1
            if left:
                self._handshaking_by_address[slot.address] = left
            else:
                del self._handshaking_by_address[slot.address]

    def _room_for(self, client: bytes, address: str) -> bool:
        """True if an authenticated connection of ``client`` from ``address`` fits the
        bounds (replacing the key's own connection, if it has one)."""
        settings = self._settings
        old = self._connections.get(client)
        total = len(self._connections) - (old is not None)
        here = self._connections_by_address.get(address, 0) - (
            old is not None and old.address == address)
        return (total < settings.client_connections_max
                and here < settings.client_connections_per_address_max)

    # -- a connection -------------------------------------------------------------------

    async def _handle_accepted(self, stream: trio.SocketStream) -> None:
        self._counters.connections_accepted += 1
        address = _source(stream)
        slot = self._take_slot(address)
        try:
            async with stream:
                if slot is None:
                    self._counters.handshakes_refused_full += 1
                    return
                reader = FrameReader(stream)
                client = None
                with slot.cancel_scope:
                    client = await self._handshake(stream, reader, slot)
                self._release_slot(slot)
                if client is not None:
                    await self._run(client, address, stream, reader)
        finally:
            if slot is not None:
                self._release_slot(slot)
            self._counters.connections_closed += 1

    async def _handshake(self, stream: trio.SocketStream, reader: FrameReader,
                         slot: _Handshaking) -> bytes | None:
        """The authenticated client key, or None (counted)."""
        counters, settings = self._counters, self._settings
        try:
            try:  # one deadline for the whole HELLO: no trickling it in byte by byte
                with trio.fail_after(settings.hello_timeout_s):
                    hello = await reader.exactly(CLIENT_HELLO.size)
            except trio.TooSlowError:
                counters.hello_timeouts += 1
                return None
            if hello is None:
                raise _Refused
            magic, version, client, client_nonce = CLIENT_HELLO.unpack(hello)
            if magic != b"btcl" or version != HANDSHAKE_VERSION:
                raise WireError("HELLO with a bad magic or version")
            slot.hello = True  # it spoke: no longer evicted for a newcomer
            # Both refusals cost nothing: no signature is made or checked for them.
            if not self._admission.admits(client):
                counters.not_admitted += 1
                return None
            if not self._room_for(client, slot.address):
                counters.connections_full += 1
                return None
            member_nonce = secrets.token_bytes(HANDSHAKE_NONCE_BYTES)
            signature = self._signer.sign(MEMBER_HANDSHAKE_KIND, member_proof_body(
                client_nonce=client_nonce, member_nonce=member_nonce, client=client))
            answer = MEMBER_ANSWER.pack(b"btcm", HANDSHAKE_VERSION, self._member, member_nonce,
                                        signature)
            with trio.fail_after(settings.handshake_timeout_s):
                await stream.send_all(answer)
                proof = await reader.exactly(_SIGNATURE_BYTES)
            if proof is None:
                raise _Refused
            body = client_proof_body(member_nonce=member_nonce, client_nonce=client_nonce,
                                     member=self._member)
            if not self.verifier.verify_key(client, CLIENT_HANDSHAKE_KIND, body, proof):
                raise _Refused
        except WireError:
            counters.bad_frames += 1
            return None
        except (_Refused, trio.TooSlowError, *SOCKET_ERRORS):
            counters.handshakes_failed += 1
            return None
        assert len(client) == CLIENT_KEY_BYTES
        counters.authenticated += 1
        return bytes(client)

    async def _run(self, client: bytes, address: str, stream: trio.SocketStream,
                   reader: FrameReader) -> None:
        """Serve an authenticated connection until it ends, replacing the key's older one."""
        while (old := self._connections.get(client)) is not None:  # newest wins
            if not old.cancel_scope.cancel_called:
                self._counters.replaced += 1
                old.cancel_scope.cancel()
            await old.finished.wait()
        if not self._room_for(client, address):  # others took the room while we waited
            self._counters.connections_full += 1
            return
        send, receive = trio.open_memory_channel[bytes](self._settings.queue_frames_max)
        connection = _Connection(client, address, send, receive,
                                 WriterState(last_write=trio.current_time()))
        self._connections[client] = connection
        self._connections_by_address[address] = self._connections_by_address.get(address, 0) + 1
        try:
            with connection.cancel_scope:
                async with trio.open_nursery() as nursery:
                    for loop in (lambda: self._read_loop(connection, reader),
                                 lambda: write_loop(stream, connection.outbox_receive,
                                                    connection.writer, self._sent),
                                 lambda: watchdog(
                                     connection.writer, connection.outbox_send,
                                     keepalive_interval_s=self._settings.keepalive_interval_s,
                                     idle_timeout_s=self._settings.idle_timeout_s,
                                     reader=reader)):
                        nursery.start_soon(self._until_broken, connection, loop)
        finally:
            if self._connections.get(client) is connection:
                del self._connections[client]
            left = self._connections_by_address[address] - 1
            if left:
                self._connections_by_address[address] = left
            else:
                del self._connections_by_address[address]
            send.close()
            connection.finished.set()

    async def _until_broken(self, connection: _Connection,
                            loop: Callable[[], Awaitable[None]]) -> None:
        """Run one side of ``connection``; whatever ends it (counted) ends the others."""
        await until_broken(loop, connection.cancel_scope, self._counters)

    async def _read_loop(self, connection: _Connection, reader: FrameReader) -> None:
        """Hand the client's REQUESTs on until a clean end of stream; raises otherwise."""
        limit = self._request_bytes_max
        while True:  # the connection's watchdog ends it when nothing arrives
            frame = await reader.read_frame(limit)
            if frame is None:
                return
            if not frame:
                continue  # keepalive
            request, _, _ = decode_request(frame, frame_bytes_max=limit)  # WireError: closed
            if request.client != connection.client:
                raise WireError("a request of another client key")
            self._counters.requests_received += 1
            try:
                self._inbox_send.send_nowait((connection.client, frame))
            except trio.WouldBlock:
                await self._inbox_send.send((connection.client, frame))  # backpressure

    def _sent(self, frames: int, payload_bytes: int) -> None:
        self._counters.frames_sent += frames
