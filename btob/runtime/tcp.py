"""The TCP transport: one authenticated TCP connection per pair of members, carrying frames.

Theory of operation
-------------------
Topology. Exactly one connection per pair: member ``i`` dials every ``j > i`` and accepts from
every ``j < i``. A dialer reconnects with exponential backoff for as long as
:meth:`TcpTransport.serve` runs; an accepted connection from a peer that already has one
replaces the old one (a restarted peer simply dials again).

Wire. Every message is a 4-byte big-endian length followed by that many bytes. A zero-length
frame is a keepalive and is never delivered. Anything that is not well-formed (a length above
the bound, end of stream inside a frame, a malformed handshake message) closes that one
connection and is counted; peer bytes can never raise out of ``serve``.

Handshake. Right after the TCP connect both sides send ``HELLO = b"btcp" | version (1 byte) |
member id (2 bytes, big-endian) | nonce (32 random bytes)``. Each side checks the claimed id
(in range, not itself, the dialed member on a dialed connection, a smaller id on an accepted
one) before any signature work, and closes at once on a wrong one. Then each sends ``PROOF``:
its 64-byte signature, under kind ``"tcp.handshake"``, of::

    peer_nonce | own_nonce | dialer id (2 bytes) | acceptor id (2 bytes)

and verifies the peer's proof over the mirrored body with the peer's registered key. The
dialer sends its proof as soon as it has the acceptor's HELLO; the acceptor sends its own only
after the dialer's has verified, so a stranger who connects never makes a member sign. The
signer's domain tag binds the proof to the protocol version and the cluster id, so a member of
another cluster fails here. Fresh nonces on both sides stop replay of an old proof; the nonce
order says which role signed and the ids say who talked to whom, so a proof made for one
connection is useless on any other. The transport authenticates only *who is at the other end
of the socket*: it neither encrypts nor MACs the frames that follow; frames carry their own
signatures, checked by the layer above.

Admission. Anyone can open TCP connections to a member, so the accepted connections that have
not authenticated are bounded, and the bound must not become a way to keep honest members
out: a pool that refuses newcomers once full is held by whoever reconnects fastest, and a
stranger can reconnect in a loop. So a full pool never refuses; it evicts, and chooses whom so
that a flood evicts its own connections first. An accepted connection first waits for its
HELLO, at most ``hello_timeout_s``: an honest dialer sent its HELLO right after connecting, so
it needs next to no time here, whatever the round trip, while a silent stranger is gone
quickly. At most ``hellos_pending_per_source_max`` of these come from one source (an IPv4
address or an IPv6 /64: one holder of a /64 has all of it), and at most
``hellos_pending_max`` in all; a newcomer beyond the first bound evicts its own source's
oldest, beyond the second the oldest of the source holding the most. A valid HELLO moves the
connection to the second pool, proving, bounded by ``handshakes_concurrent_max``, where it
stays about one round trip (the dialer needs the acceptor's nonce to sign). Anyone can claim
any id in a HELLO but only the real member can prove it, so this pool is fair by claimed id:
a newcomer evicts the oldest connection claiming the id claimed most often (then from the
source claiming it most often). Strangers claiming other ids thus never evict a member's
handshake; strangers claiming the member's own id must bring, within its one round trip,
more new connections than this pool holds, and since the source comes first in the first
pool and second in this one, an honest member at its own address loses only to a stranger
with more addresses than a pool has slots. A small fixed number of slots per claimed id
would instead let such a stranger evict the member after that many connections. Evicting
costs the same as refusing (one accept, one close), and no signature is ever made or checked
for a connection before its HELLO passed, nor made before its PROOF did. What remains is
bandwidth and CPU for accepts and for checking the proofs strangers send; that bounds how
fast they can churn, not whether an honest member gets in.

Queues and memory. Each peer has one bounded outgoing queue that outlives its connections, so
frames queued while a peer is down are sent once it is back (up to the bound; beyond it
``send_nowait`` drops and counts). Delivery is at most once: frames a writer had taken from the
queue when its connection broke are lost, and the protocol above retransmits. Received frames
go through one bounded channel; when it is full the reader of that connection stops reading,
so TCP flow control pushes back on that peer only. A reader's buffer is bounded by
``frame_bytes_max`` plus one receive chunk; unauthenticated connections are bounded as
described under Admission, each by ``handshake_timeout_s`` in time and by a handshake message
(at most 64 bytes) plus one receive chunk in memory.

Liveness. A writer sends a keepalive after ``keepalive_interval_s`` without sending; a
connection is closed after ``idle_timeout_s`` without receiving a byte, or when one write
stalls that long (a peer that stopped reading), so a stuck peer holds nothing forever and
never blocks the other peers. One watchdog per connection checks both every half keepalive
interval (no timer per frame), so a close comes at most that much after its timeout.
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import secrets
import struct
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import attrs
import trio

from btob._errors import ConfigError, WireError
from btob.crypto import Signer, Verifier
from btob.runtime.config import ClusterConfig
from btob.runtime.framing import (
    SOCKET_ERRORS,
    FrameReader,
    WriterState,
    framed,
    until_broken,
    watchdog,
    write_loop,
)

__all__ = ["HANDSHAKE_KIND", "TcpSettings", "TcpTransport", "TransportStatistics"]

HANDSHAKE_KIND = "tcp.handshake"
"""The signature kind of a handshake proof (bound to the cluster id by the domain tag)."""

_HELLO_MAGIC = b"btcp"
_HELLO_VERSION = 1
_NONCE_BYTES = 32
_HELLO = struct.Struct(">4sBH32s")
_SIGNATURE_BYTES = 64
_MEMBER_ID_MAX = 0xFFFF

_K = TypeVar("_K")


def _positive(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"setting {attribute.name} must be a positive number, got {value!r}")


def _positive_int(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"setting {attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen(kw_only=True)
class TcpSettings:
    """Bounds and timings of a :class:`TcpTransport`.

    Every field must be positive (the four bounds on counts whole numbers), the backoff
    maximum at least its initial value, the keepalive interval below the idle timeout;
    :class:`ConfigError` otherwise.
    """

    queue_frames_max: int = attrs.field(default=4096, validator=_positive)
    """Frames queued per peer for sending, and frames waiting in the receive channel."""
    stale_backlog_s: float = attrs.field(default=1.0, validator=_positive)
    """Frames queued for a peer that has been without a connection for longer than this are
    dropped when it connects again, not sent: they are stale, and the protocol's catch-up
    (or state transfer) and retransmission bring it what it still needs. A shorter break
    keeps them."""
    connect_backoff_initial_s: float = attrs.field(default=0.05, validator=_positive)
    """First wait before a dialer tries again; reset after every successful handshake."""
    connect_backoff_max_s: float = attrs.field(default=2.0, validator=_positive)
    """Cap on the dialer's doubling wait between attempts."""
    keepalive_interval_s: float = attrs.field(default=1.0, validator=_positive)
    """A keepalive is sent when nothing was sent on a connection for this long."""
    idle_timeout_s: float = attrs.field(default=5.0, validator=_positive)
    """A connection that received nothing for this long, or whose write stalled this long,
    is closed."""
    handshake_timeout_s: float = attrs.field(default=3.0, validator=_positive)
    """Time allowed for a TCP connect, and separately for a whole handshake."""
    hello_timeout_s: float = attrs.field(default=0.5, validator=_positive)
    """Time an accepted connection has, from its accept, to deliver its whole HELLO (capped
    by ``handshake_timeout_s``). A dialer sends its HELLO right after connecting, so an
    honest one needs next to no time here, whatever the round trip."""
    hellos_pending_max: int = attrs.field(default=64, validator=_positive_int)
    """Accepted connections allowed to be waiting for their HELLO at once. A newcomer beyond
    it evicts the oldest of those from the source holding the most of them."""
    hellos_pending_per_source_max: int = attrs.field(default=8, validator=_positive_int)
    """Accepted connections from one source (an IPv4 address, an IPv6 /64) allowed to be
    waiting for their HELLO at once; a newcomer beyond it evicts that source's oldest."""
    handshakes_concurrent_max: int = attrs.field(default=64, validator=_positive_int)
    """Accepted connections allowed to be past a valid HELLO and proving their identity at
    once. A newcomer beyond it evicts the oldest of those claiming the member id claimed
    most often (then from the source claiming it most often)."""

    def __attrs_post_init__(self) -> None:
        if self.connect_backoff_max_s < self.connect_backoff_initial_s:
            raise ConfigError("connect_backoff_max_s must be at least connect_backoff_initial_s")
        if self.keepalive_interval_s >= self.idle_timeout_s:
            raise ConfigError("keepalive_interval_s must be below idle_timeout_s")


@attrs.frozen(kw_only=True)
class TransportStatistics:
    """A snapshot of a :class:`TcpTransport`'s counters (all monotonic since construction).

    ``frames_*``/``bytes_*`` count data frames and their payload bytes only (no length
    prefixes, keepalives or handshakes); a frame is *sent* once written to a socket.
    """

    frames_sent: int
    bytes_sent: int
    frames_received: int
    bytes_received: int
    frames_dropped_queue_full: int
    """``send_nowait`` calls refused because that peer's queue held ``queue_frames_max``."""
    frames_dropped_oversize: int
    """``send_nowait`` calls refused because the frame exceeded ``frame_bytes_max``."""
    frames_dropped_stale: int
    """Queued frames dropped unsent when their peer connected again after more than
    ``stale_backlog_s`` without a connection."""
    connections_opened: int
    """TCP connections dialed or accepted (authenticated or not)."""
    connections_closed: int
    handshakes_failed: int
    """Connections closed before authenticating: bad or late proof, wrong id, malformed,
    evicted (each of the counters below is also counted here)."""
    hello_timeouts: int
    """Accepted connections closed because their HELLO was not complete within
    ``hello_timeout_s``."""
    hellos_refused: int
    """Accepted connections closed on a well-formed HELLO claiming an id this member never
    accepts (out of range, itself, not below it), before any signature work."""
    evictions_source: int
    """Accepted connections waiting for their HELLO, closed because a newer one came from the
    same source while it had ``hellos_pending_per_source_max`` of them."""
    evictions_hello: int
    """Accepted connections waiting for their HELLO, closed to make room for a newer one while
    ``hellos_pending_max`` were waiting."""
    evictions_proof: int
    """Accepted connections past their HELLO, closed to make room for a newer one while
    ``handshakes_concurrent_max`` were proving."""
    bad_frames: int
    """Connections closed for malformed bytes: bad length, end inside a frame, bad HELLO."""
    idle_timeouts: int
    """Connections closed because nothing arrived, or a write stalled, for idle_timeout_s."""
    reconnects: int
    """Authenticated connections to a peer that had been connected before."""


@attrs.define
class _Counters:
    frames_sent: int = 0
    bytes_sent: int = 0
    frames_received: int = 0
    bytes_received: int = 0
    frames_dropped_queue_full: int = 0
    frames_dropped_oversize: int = 0
    frames_dropped_stale: int = 0
    connections_opened: int = 0
    connections_closed: int = 0
    handshakes_failed: int = 0
    hello_timeouts: int = 0
    hellos_refused: int = 0
    evictions_source: int = 0
    evictions_hello: int = 0
    evictions_proof: int = 0
    bad_frames: int = 0
    idle_timeouts: int = 0
    reconnects: int = 0


class _HandshakeRefused(Exception):
    """A well-formed handshake that does not authenticate (wrong id, bad proof, early EOF)."""


class _HelloRefused(_HandshakeRefused):
    """A well-formed HELLO claiming an id this side never talks to on this connection."""


@attrs.define(eq=False)
class _Pending:
    """An accepted connection that has not authenticated yet: where it came from, the id its
    HELLO claimed (None before the HELLO), and the scope that evicts it."""

    source: str
    claimed: int | None = None
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)


class _Admission:
    """The accepted connections that have not authenticated, in two bounded pools.

    Waiting for a HELLO (keyed by source), then proving an identity (keyed by claimed id),
    each in arrival order, so the first entry of a group is its oldest. A newcomer to a full
    pool is never refused: it evicts the oldest entry of the largest group, so whoever floods
    a pool evicts its own connections first (see the module docstring).
    """

    def __init__(self, settings: TcpSettings, counters: _Counters) -> None:
        self._settings = settings
        self._counters = counters
        self._hello: list[_Pending] = []
        self._proof: list[_Pending] = []
        self._per_source: collections.Counter[str] = collections.Counter()
        self._per_claim: collections.Counter[int] = collections.Counter()
        self._per_claim_source: collections.Counter[tuple[int, str]] = collections.Counter()

    def admit(self, source: str) -> _Pending:
        """A newly accepted connection from ``source``, now waiting for its HELLO."""
        settings = self._settings
        if self._per_source[source] >= settings.hellos_pending_per_source_max:
            victim = next(p for p in self._hello if p.source == source)
            self._evict(victim)
            self._counters.evictions_source += 1
        elif len(self._hello) >= settings.hellos_pending_max:
            # max() keeps the first of equals: the oldest of the largest source.
            victim = max(self._hello, key=lambda p: self._per_source[p.source])
            self._evict(victim)
            self._counters.evictions_hello += 1
        pending = _Pending(source)
        self._hello.append(pending)
        self._per_source[source] += 1
        return pending

    def proving(self, pending: _Pending, claimed: int) -> None:
        """``pending`` sent a valid HELLO claiming ``claimed``: it now waits for its PROOF."""
        self.release(pending)
        if len(self._proof) >= self._settings.handshakes_concurrent_max:
            per_claim, per_claim_source = self._per_claim, self._per_claim_source
            per_claim[claimed] += 1  # the newcomer counts when choosing, but is never chosen
            per_claim_source[claimed, pending.source] += 1

            def weight(p: _Pending) -> tuple[int, int]:
                claim = cast(int, p.claimed)  # every entry of this pool has claimed an id
                return per_claim[claim], per_claim_source[claim, p.source]

            victim = max(self._proof, key=weight)  # the first of equals is the oldest
            _decrement(per_claim, claimed)
            _decrement(per_claim_source, (claimed, pending.source))
            self._evict(victim)
            self._counters.evictions_proof += 1
        pending.claimed = claimed
        self._proof.append(pending)
        self._per_claim[claimed] += 1
        self._per_claim_source[claimed, pending.source] += 1

    def release(self, pending: _Pending) -> None:
        """``pending`` leaves its pool (authenticated, failed or evicted); idempotent."""
        if pending.claimed is None:
            if pending in self._hello:
                self._hello.remove(pending)
                _decrement(self._per_source, pending.source)
        elif pending in self._proof:
            self._proof.remove(pending)
            _decrement(self._per_claim, pending.claimed)
            _decrement(self._per_claim_source, (pending.claimed, pending.source))

    def _evict(self, victim: _Pending) -> None:
        self.release(victim)
        victim.cancel_scope.cancel()
        self._counters.handshakes_failed += 1


def _decrement(counter: collections.Counter[_K], key: _K) -> None:
    """One less ``key``, forgetting it at zero: strangers come from ever new sources."""
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]


@attrs.define(eq=False)
class _Connection:
    peer: int
    cancel_scope: trio.CancelScope = attrs.field(factory=trio.CancelScope)
    finished: trio.Event = attrs.field(factory=trio.Event)


@attrs.define(eq=False)
class _Peer:
    outbox_send: trio.MemorySendChannel[bytes]
    outbox_receive: trio.MemoryReceiveChannel[bytes]
    connection: _Connection | None = None
    ever_connected: bool = False
    down_since: float | None = None  # when it last had no connection (None: it has one)


def _source_of(stream: trio.SocketStream) -> str:
    """Who an accepted connection counts as: its IPv4 address, or its IPv6 /64 (one holder of
    a /64 has all of its addresses). Raises `OSError` if the socket is already gone."""
    host = str(stream.socket.getpeername()[0])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address), 64), strict=False))
    return str(address)


def _proof_body(*, signer_nonce: bytes, other_nonce: bytes, dialer: int, acceptor: int) -> bytes:
    """What one side signs: the other's nonce, its own nonce, then dialer and acceptor ids."""
    return b"".join(
        (other_nonce, signer_nonce, dialer.to_bytes(2, "big"), acceptor.to_bytes(2, "big"))
    )


class TcpTransport:
    """Connects ``member`` to every other member of ``config`` over TCP, carrying opaque frames.

    Construct it, run :meth:`serve` in a nursery (``await nursery.start(transport.serve)``),
    then :meth:`send_nowait` and :meth:`receive`. ``signer`` must hold ``member``'s key and
    ``signer``, ``verifier`` and ``config`` must agree on the cluster id and keys; ``listen_host``
    overrides the host of ``config.addresses[member]`` for binding (e.g. ``"0.0.0.0"``).
    Raises :class:`ConfigError` if they disagree or ``member`` is not in the cluster.
    Attribute ``port``: the bound listening port once :meth:`serve` has started, else None.
    """

    def __init__(
        self,
        *,
        config: ClusterConfig,
        member: int,
        signer: Signer,
        verifier: Verifier,
        settings: TcpSettings | None = None,
        listen_host: str | None = None,
    ) -> None:
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < config.n:
            raise ConfigError(f"member {member!r} is not in a cluster of {config.n}")
        if config.n - 1 > _MEMBER_ID_MAX:
            raise ConfigError(f"the TCP transport supports at most {_MEMBER_ID_MAX + 1} members")
        if signer.cluster_id != config.cluster_id or verifier.cluster_id != config.cluster_id:
            raise ConfigError("signer, verifier and config must have the same cluster_id")
        if signer.public_key != config.registry.public_key(member):
            raise ConfigError(f"the signer's key is not member {member}'s registered key")
        if verifier.registry.public_keys != config.registry.public_keys:
            raise ConfigError("the verifier's registry is not the config's registry")
        self._config = config
        self._member = member
        self._signer = signer
        self._verifier = verifier
        self._settings = settings if settings is not None else TcpSettings()
        self._frame_bytes_max = config.settings.frame_bytes_max
        """The cluster's one frame bound (``Settings.frame_bytes_max``): frames above it are
        neither sent nor accepted."""
        if self._frame_bytes_max > 0xFFFFFFFF:
            raise ConfigError("frame_bytes_max must fit the 4-byte length prefix")
        self._listen_host = listen_host
        self.port: int | None = None
        self._counters = _Counters()
        self._serving = False
        self._admission = _Admission(self._settings, self._counters)
        self._peers: dict[int, _Peer] = {}
        for peer in range(config.n):
            if peer != member:
                send, receive = trio.open_memory_channel[bytes](self._settings.queue_frames_max)
                self._peers[peer] = _Peer(outbox_send=send, outbox_receive=receive)
        self._inbox_send, self._inbox_receive = trio.open_memory_channel[tuple[int, bytes]](
            self._settings.queue_frames_max
        )

    # -- the public surface -------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on ``config.addresses[member]`` and keep a connection to every peer, forever.

        Reports the bound port through ``task_status`` (also stored in ``port``; with port 0
        in the config the OS picks one, taken from the first listener if the host resolves to
        several). Returns only by cancellation, which closes every socket; no task outlives
        it. Raises :class:`ConfigError` naming the member and ``host:port`` if the address
        cannot be bound (in use, not this host's, unresolvable) and `RuntimeError` if this
        transport is already serving. Peer misbehaviour is counted, never raised.
        """
        if self._serving:
            raise RuntimeError("this TcpTransport is already serving")
        self._serving = True
        try:
            address = self._config.addresses[self._member]
            host = self._listen_host if self._listen_host is not None else address.host
            try:
                listeners = await trio.open_tcp_listeners(address.port, host=host)
            except OSError as exc:  # in use, not ours, unresolvable: the operator's to fix
                reason = exc.strerror or str(exc)
                raise ConfigError(
                    f"member {self._member} cannot listen on {host}:{address.port}: {reason}"
                ) from None
            try:
                self.port = int(listeners[0].socket.getsockname()[1])
                for state in self._peers.values():  # away since the start until connected
                    if state.connection is None:
                        state.down_since = trio.current_time()
                async with trio.open_nursery() as nursery:
                    await nursery.start(trio.serve_listeners, self._handle_accepted, listeners)
                    for peer in range(self._member + 1, self._config.n):
                        nursery.start_soon(self._dial_forever, peer)
                    task_status.started(self.port)
            finally:
                with trio.CancelScope(shield=True):
                    for listener in listeners:
                        await listener.aclose()
        finally:
            self._serving = False

    def send_nowait(self, dest: int, frame: bytes) -> bool:
        """Queue ``frame`` for ``dest``; never blocks.

        True if queued (it is written once a connection to ``dest`` is up; delivery is at
        most once). False, dropping the frame, if ``dest`` is this member or not a member, if
        ``frame`` is longer than ``frame_bytes_max`` (counted) or if ``dest``'s queue already
        holds ``queue_frames_max`` frames (counted).
        """
        peer = self._peers.get(dest) if type(dest) is int else None
        if peer is None:
            return False
        if len(frame) > self._frame_bytes_max:
            self._counters.frames_dropped_oversize += 1
            return False
        try:
            peer.outbox_send.send_nowait(bytes(frame))
        except trio.WouldBlock:
            self._counters.frames_dropped_queue_full += 1
            return False
        return True

    async def receive(self) -> tuple[int, bytes]:
        """The next ``(source member, frame)`` from any authenticated peer; waits for one.

        Frames of one peer arrive in the order it sent them. Up to ``queue_frames_max`` frames
        wait here; beyond that readers stop reading their sockets until this is called.
        """
        return await self._inbox_receive.receive()

    def statistics(self) -> TransportStatistics:
        """A frozen snapshot of the counters."""
        c = self._counters
        return TransportStatistics(
            frames_sent=c.frames_sent,
            bytes_sent=c.bytes_sent,
            frames_received=c.frames_received,
            bytes_received=c.bytes_received,
            frames_dropped_queue_full=c.frames_dropped_queue_full,
            frames_dropped_oversize=c.frames_dropped_oversize,
            frames_dropped_stale=c.frames_dropped_stale,
            connections_opened=c.connections_opened,
            connections_closed=c.connections_closed,
            handshakes_failed=c.handshakes_failed,
            hello_timeouts=c.hello_timeouts,
            hellos_refused=c.hellos_refused,
            evictions_source=c.evictions_source,
            evictions_hello=c.evictions_hello,
            evictions_proof=c.evictions_proof,
            bad_frames=c.bad_frames,
            idle_timeouts=c.idle_timeouts,
            reconnects=c.reconnects,
        )

    def connected(self) -> frozenset[int]:
        """The peers with an authenticated connection that is currently open."""
        return frozenset(i for i, peer in self._peers.items() if peer.connection is not None)

    # -- connection setup ---------------------------------------------------------------

    async def _dial_forever(self, peer: int) -> None:
        address = self._config.addresses[peer]
        settings = self._settings
        backoff = settings.connect_backoff_initial_s
        while True:
            stream: trio.SocketStream | None = None
            with trio.move_on_after(settings.handshake_timeout_s):
                with contextlib.suppress(OSError):
                    stream = await trio.open_tcp_stream(address.host, address.port)
            if stream is not None:
                self._counters.connections_opened += 1
                try:
                    async with stream:
                        reader = FrameReader(stream)
                        if await self._handshake(stream, reader, expected=peer) is not None:
                            backoff = settings.connect_backoff_initial_s
                            await self._run_connection(peer, stream, reader)
                finally:
                    self._counters.connections_closed += 1
            await trio.sleep(backoff)
            backoff = min(2 * backoff, settings.connect_backoff_max_s)

    async def _handle_accepted(self, stream: trio.SocketStream) -> None:
        self._counters.connections_opened += 1
        try:
            async with stream:
                try:
                    source = _source_of(stream)
                except OSError:  # gone before we looked
                    self._counters.handshakes_failed += 1
                    return
                pending = self._admission.admit(source)
                reader = FrameReader(stream)
                peer = None
                try:
                    with pending.cancel_scope:  # cancelled (and counted) by an eviction
                        peer = await self._handshake(stream, reader, expected=None,
                                                     pending=pending)
                finally:
                    self._admission.release(pending)
                if peer is not None:
                    await self._run_connection(peer, stream, reader)
        finally:
            self._counters.connections_closed += 1

    async def _handshake(
        self, stream: trio.SocketStream, reader: FrameReader, *, expected: int | None,
        pending: _Pending | None = None,
    ) -> int | None:
        """The authenticated peer id, or None (counted) if the handshake failed.

        ``expected`` is the dialed peer, or None on an accepted connection, which then has
        its ``pending`` entry in the admission pools. The dialer proves first; the acceptor
        signs only once the dialer's proof checked out, so a stranger gets no signature.
        """
        settings = self._settings
        own_nonce = secrets.token_bytes(_NONCE_BYTES)
        hello = _HELLO.pack(_HELLO_MAGIC, _HELLO_VERSION, self._member, own_nonce)
        start = trio.current_time()
        deadline = start + settings.handshake_timeout_s
        # Only a stranger is slow with its first bytes: an honest dialer sends its HELLO right
        # after connecting. (A dialer waits longer: a busy acceptor may accept late.)
        hello_deadline = deadline if pending is None else min(
            deadline, start + settings.hello_timeout_s)
        try:
            try:
                with trio.fail_at(hello_deadline):
                    await stream.send_all(framed(hello))
                    message = await reader.read_frame(_HELLO.size)
            except trio.TooSlowError:
                if pending is not None:
                    self._counters.hello_timeouts += 1
                raise
            peer, peer_nonce = self._parse_hello(message, expected, own_nonce)
            dialer, acceptor = (self._member, peer) if pending is None else (peer, self._member)
            proof = _proof_body(signer_nonce=own_nonce, other_nonce=peer_nonce,
                                dialer=dialer, acceptor=acceptor)
            peer_proof = _proof_body(signer_nonce=peer_nonce, other_nonce=own_nonce,
                                     dialer=dialer, acceptor=acceptor)
            with trio.fail_at(deadline):
                if pending is None:
                    await stream.send_all(framed(self._signer.sign(HANDSHAKE_KIND, proof)))
                    await self._check_proof(reader, peer, peer_proof)
                else:
                    self._admission.proving(pending, peer)
                    await self._check_proof(reader, peer, peer_proof)
                    self._admission.release(pending)  # authenticated: no longer evictable
                    await stream.send_all(framed(self._signer.sign(HANDSHAKE_KIND, proof)))
        except _HelloRefused:
            if pending is not None:
                self._counters.hellos_refused += 1
            self._counters.handshakes_failed += 1
            return None
        except WireError:
            self._counters.bad_frames += 1
            self._counters.handshakes_failed += 1
            return None
        except (_HandshakeRefused, trio.TooSlowError, *SOCKET_ERRORS):
            self._counters.handshakes_failed += 1
            return None
        return peer

    def _parse_hello(
        self, message: bytes | None, expected: int | None, own_nonce: bytes
    ) -> tuple[int, bytes]:
        """The peer's claimed id and nonce from its HELLO, checked before any signature work.

        Raises `WireError` if malformed, `_HelloRefused` for an id we never accept here and
        `_HandshakeRefused` at end of stream or for an echo of our own nonce.
        """
        if message is None:
            raise _HandshakeRefused("end of stream before HELLO")
        if len(message) != _HELLO.size:
            raise WireError(f"HELLO of {len(message)} bytes")
        magic, version, peer, peer_nonce = _HELLO.unpack(message)
        if magic != _HELLO_MAGIC or version != _HELLO_VERSION:
            raise WireError("HELLO with a bad magic or version")
        if not self._acceptable_peer(peer, expected):
            raise _HelloRefused(f"peer claims id {peer}")
        if peer_nonce == own_nonce:
            raise _HandshakeRefused("peer echoed our nonce")
        return int(peer), bytes(peer_nonce)

    async def _check_proof(self, reader: FrameReader, peer: int, body: bytes) -> None:
        """Read the peer's PROOF and verify it over ``body``; raises if it does not hold."""
        message = await reader.read_frame(_SIGNATURE_BYTES)
        if message is None:
            raise _HandshakeRefused("end of stream before PROOF")
        if len(message) != _SIGNATURE_BYTES:
            raise WireError(f"PROOF of {len(message)} bytes")
        if not self._verifier.verify(peer, HANDSHAKE_KIND, body, message):
            raise _HandshakeRefused(f"bad proof from claimed member {peer}")

    def _acceptable_peer(self, peer: int, expected: int | None) -> bool:
        if expected is not None:
            return peer == expected
        return 0 <= peer < self._member

    # -- an authenticated connection ----------------------------------------------------

    async def _run_connection(
        self, peer: int, stream: trio.SocketStream, reader: FrameReader
    ) -> None:
        """Serve an authenticated connection until it breaks, replacing any older one."""
        state = self._peers[peer]
        while state.connection is not None:  # at most one connection per peer: newest wins
            old = state.connection
            old.cancel_scope.cancel()
            await old.finished.wait()
        connection = _Connection(peer)
        state.connection = connection
        if state.ever_connected:
            self._counters.reconnects += 1
        state.ever_connected = True
        if state.down_since is not None and \
                trio.current_time() - state.down_since > self._settings.stale_backlog_s:
            self._drop_backlog(state)
        state.down_since = None
        try:
            with connection.cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        self._until_broken, connection, lambda: self._read_loop(peer, reader)
                    )
                    writer = WriterState(last_write=trio.current_time())
                    nursery.start_soon(
                        self._until_broken, connection,
                        lambda: write_loop(stream, state.outbox_receive, writer, self._sent),
                    )
                    settings = self._settings
                    nursery.start_soon(
                        self._until_broken, connection,
                        lambda: watchdog(writer, state.outbox_send,
                                         keepalive_interval_s=settings.keepalive_interval_s,
                                         idle_timeout_s=settings.idle_timeout_s,
                                         reader=reader),
                    )
        finally:
            if state.connection is connection:
                state.connection = None
                state.down_since = trio.current_time()
            connection.finished.set()

    def _drop_backlog(self, state: _Peer) -> None:
        """Drop what was queued for a peer while it was away too long (see
        ``stale_backlog_s``)."""
        while True:
            try:
                state.outbox_receive.receive_nowait()
            except trio.WouldBlock:
                return
            self._counters.frames_dropped_stale += 1

    async def _until_broken(
        self, connection: _Connection, loop: Callable[[], Awaitable[None]]
    ) -> None:
        """Run one side of ``connection``; whatever ends it (counted) ends the other side."""
        await until_broken(loop, connection.cancel_scope, self._counters)

    async def _read_loop(self, peer: int, reader: FrameReader) -> None:
        """Deliver ``peer``'s frames until a clean end of stream; raises on anything else."""
        while True:  # the connection's watchdog ends it when nothing arrives
            frame = await reader.read_frame(self._frame_bytes_max)
            if frame is None:
                return
            if not frame:
                continue  # keepalive
            self._counters.frames_received += 1
            self._counters.bytes_received += len(frame)
            try:
                self._inbox_send.send_nowait((peer, frame))
            except trio.WouldBlock:
                await self._inbox_send.send((peer, frame))  # backpressure on this peer

    def _sent(self, frames: int, payload_bytes: int) -> None:
        self._counters.frames_sent += frames
        self._counters.bytes_sent += payload_bytes

