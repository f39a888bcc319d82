"""The client API: order payloads through a cluster you are not a member of.

:func:`open_client` connects lazily to the members' client ports. :meth:`Client.broadcast`
signs a REQUEST with the next number of the client's session, sends it to one member and, each
time ``retry_after_s`` passes without a valid receipt (a member may be slow, crashed or
Byzantine and drop it), to one more, and then again to those that could not take it
(unreachable or refusing) until ``give_up_after_s``; it returns the first receipt that proves
the request committed (:func:`~btob.core.clientwire.receipt_problem`), so no member can make
the client believe in an order that did not happen. The cluster delivers the request once
however many members it reached. At most ``in_flight_max`` requests wait at a time (more
callers wait for a place: backpressure), which keeps an honest client within the cluster's
``client_window``.

A session is numbered by the time in microseconds when the client opened, so a restarted
client with the same key starts a session above its earlier ones.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from btob._errors import BtobError, ConfigError, WireError
from btob.client.connection import HandshakeFailed, MemberConnection, connect_member
from btob.core.clientwire import (
    REPLY_KIND,
    ClientRequest,
    Notice,
    Receipt,
    SignedReply,
    decode_client_frame,
    receipt_problem,
    sign_request,
)
from btob.crypto import Signer, SigningKey, Verifier
from btob.runtime.config import ClusterConfig

__all__ = ["Client", "ClientSettings", "ClientStatistics", "RequestFailed", "open_client"]

# What a broken or refused connection raises; each ends one member's link, never the client.
_LINK_ERRORS = (OSError, trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
                HandshakeFailed)


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ConfigError(f"client setting {attribute.name} must be positive, got {value!r}")


class RequestFailed(BtobError):
    """No member returned a valid receipt within ``ClientSettings.give_up_after_s``; the
    message lists what each member answered. The request may still be ordered later."""


@attrs.frozen(kw_only=True)
class ClientSettings:
    """A client's timeouts and bounds."""

    retry_after_s: float = attrs.field(default=1.0, validator=_positive)
    """How long to wait for a receipt before sending the request to one more member."""
    give_up_after_s: float = attrs.field(default=30.0, validator=_positive)
    """How long :meth:`Client.broadcast` tries in all before it raises RequestFailed."""
    connect_timeout_s: float = attrs.field(default=3.0, validator=_positive)
    """Time allowed for a TCP connect and its handshake."""
    in_flight_max: int | None = None
    """Requests waiting at a time (None: the cluster's ``client_window``; more is refused)."""


@attrs.define
class ClientStatistics:
    """What a client did, for tests and operators."""

    requests: int = 0
    """Requests broadcast."""
    sends: int = 0
    """REQUEST frames sent (one per member tried)."""
    receipts_valid: int = 0
    """Receipts that proved their request committed."""
    receipts_invalid: int = 0
    """Receipts refused (a forgery, or for another request): each names a lying member."""
    replies: int = 0
    """Validly signed REPLY frames."""
    replies_invalid: int = 0
    """REPLY frames with a bad signature (each names a lying member)."""
    notices: int = 0
    """NOTICE frames (a member did not take a request)."""
    connect_failures: int = 0
    """Connections or handshakes that failed."""


class _Waiter:
    def __init__(self, frame: bytes, *, wants_result: bool) -> None:
        self.frame = frame
        self.wants_result = wants_result
        self.wake = trio.Event()  # done, or an answer that says: try another member
        self.receipt: Receipt | None = None
        self.result: bytes | None = None
        self.replied: dict[int, bytes] = {}  # member -> its (first) signed result
        self.answers: dict[int, str] = {}
        self.unserved: set[int] = set()  # members that could not take it: to try again

    @property
    def done(self) -> bool:
        return (self.result if self.wants_result else self.receipt) is not None


class Client:
    """A client of one cluster; made by :func:`open_client`."""

    def __init__(self, config: ClusterConfig, key: SigningKey, settings: ClientSettings,
                 nursery: trio.Nursery) -> None:
        self.config = config
        self.settings = settings
        self._signer = Signer(key, cluster_id=config.cluster_id)
        self._verifier = Verifier(config.registry, cluster_id=config.cluster_id,
                                  cache_entries_max=0)
        self._nursery = nursery
        self.public_key = self._signer.public_key
        """The client's public key (its identity in the cluster)."""
        self.session = time.time_ns() // 1000
        """This client's session number."""
        self._next_seq = 0
        self._slots = trio.Semaphore(_in_flight(config, settings))
        self._waiters: dict[int, _Waiter] = {}
        self._links: dict[int, MemberConnection] = {}
        self._connecting: dict[int, trio.Event] = {}
        self._frame_bytes_max = max(1 << 20, 4 * config.settings.batch_bytes_max)
        # Each client starts at its own member, so that many clients spread over the cluster.
        self._first = int.from_bytes(hashlib.sha256(self.public_key).digest()[:4], "big") \
            % config.n
        self.statistics = ClientStatistics()
        """Counters of what this client did."""

    # -- API ----------------------------------------------------------------------------------

    async def broadcast(self, payload: bytes) -> Receipt:
        """Order ``payload``; returns the receipt that proves where it was committed.

        Raises :class:`RequestFailed` after ``give_up_after_s`` without a valid receipt.
        """
        waiter = await self._order(payload, wants_result=False)
        assert waiter.receipt is not None
        return waiter.receipt

    async def request(self, payload: bytes) -> bytes:
        """Order ``payload`` as a command for the members' application and return its
        result, once f+1 members sent matching signed replies (so an honest one is among
        them). The client connects to every member first: replies come only over a
        connection.

        Raises :class:`RequestFailed` after ``give_up_after_s`` without f+1 matching replies.
        """
        await self.connect_all()
        waiter = await self._order(payload, wants_result=True)
        assert waiter.result is not None
        return waiter.result

    async def connect_all(self) -> int:
        """Connect to every member not yet connected (in parallel, each within
        ``connect_timeout_s``); returns how many members are connected."""
        async with trio.open_nursery() as nursery:
            for member in range(self.config.n):
                if member not in self._links:
                    nursery.start_soon(self._link, member)
        return len(self._links)

    async def _order(self, payload: bytes, *, wants_result: bool) -> _Waiter:
        async with self._slots:
            seq = self._next_seq
            self._next_seq += 1
            frame = sign_request(ClientRequest(self.public_key, self.session, seq,
                                               bytes(payload)), self._signer.sign)
            waiter = self._waiters[seq] = _Waiter(frame, wants_result=wants_result)
            self.statistics.requests += 1
            try:
                await self._until_done(seq, waiter)
                return waiter
            finally:
                del self._waiters[seq]

    async def _until_done(self, seq: int, waiter: _Waiter) -> None:
        n = self.config.n
        settings = self.settings
        with trio.move_on_after(settings.give_up_after_s):
            for attempt in range(n):
                member = (self._first + seq + attempt) % n
                self._nursery.start_soon(self._send, member, waiter)
                # A refusal, an unreachable member or a bad receipt moves on at once.
                with trio.move_on_after(settings.retry_after_s):
                    await waiter.wake.wait()
                if waiter.done:
                    return
                waiter.wake = trio.Event()
            # Every member has been tried. Members that could not take the request (down,
            # still starting, restarting, full) are sent it again every retry_after_s until
            # the deadline; a receipt or reply from any member ends the wait. Sending a
            # request twice is harmless: members deliver it at most once.
            while True:
                for member in sorted(waiter.unserved):
                    self._nursery.start_soon(self._send, member, waiter)
                waiter.unserved.clear()
                with trio.move_on_after(settings.retry_after_s):
                    while not waiter.done:
                        await waiter.wake.wait()
                        waiter.wake = trio.Event()
                if waiter.done:
                    return
        answers = "; ".join(f"member {m}: {a}" for m, a in sorted(waiter.answers.items()))
        what = "f+1 matching replies" if waiter.wants_result else "valid receipt"
        raise RequestFailed(f"request {self.session}.{seq}: no {what} within "
                            f"{settings.give_up_after_s} s ({answers or 'no answers'})")

    # -- links --------------------------------------------------------------------------------

    async def _send(self, member: int, waiter: _Waiter) -> None:
        link = await self._link(member)
        if link is None:
            waiter.answers[member] = "unreachable"
            waiter.unserved.add(member)
            waiter.wake.set()
            return
        try:
            await link.send(waiter.frame)
            self.statistics.sends += 1
        except _LINK_ERRORS:
            waiter.answers[member] = "connection broke"
            waiter.unserved.add(member)
            self._links.pop(member, None)
            waiter.wake.set()

    async def _link(self, member: int) -> MemberConnection | None:
        link = self._links.get(member)
        if link is not None:
            return link
        pending = self._connecting.get(member)
        if pending is not None:
            await pending.wait()
            return self._links.get(member)
        address = self.config.client_address(member)
        if address is None:
            return None  # this member serves no clients
        done = self._connecting[member] = trio.Event()
        try:
            link = await connect_member(
                address.host, address.port, member, signer=self._signer, verifier=self._verifier,
                frame_bytes_max=self._frame_bytes_max,
                timeout_s=self.settings.connect_timeout_s)
        except _LINK_ERRORS:
            self.statistics.connect_failures += 1
            return None
        finally:
            del self._connecting[member]
            done.set()
        self._links[member] = link
        self._nursery.start_soon(self._read, link)
        return link

    async def _read(self, link: MemberConnection) -> None:
        try:
            while True:
                frame = await link.receive()
                if frame is None:
                    break
                self._on_frame(link.member, frame)
        except _LINK_ERRORS:
            pass
        finally:
            if self._links.get(link.member) is link:
                del self._links[link.member]
            with trio.CancelScope(shield=True):
                await link.aclose()

    def _on_frame(self, member: int, frame: bytes) -> None:
        try:
            message = decode_client_frame(frame, frame_bytes_max=self._frame_bytes_max)
        except WireError:
            self.statistics.receipts_invalid += 1
            return
        if isinstance(message, SignedReply):
            self._on_reply(member, message)
            return
        if isinstance(message, Notice):
            self.statistics.notices += 1
            waiter = self._waiters.get(message.seq) if message.session == self.session else None
            if waiter is not None:
                waiter.answers[member] = f"refused: {message.reason}"
                waiter.unserved.add(member)
                waiter.wake.set()
            return
        waiter = None
        for candidate in self._waiters.values():
            if candidate.frame == message.request:
                waiter = candidate
                break
        if waiter is None or waiter.receipt is not None:
            return  # a late receipt of a request already proven, or of none of ours
        if waiter.wants_result:
            waiter.receipt = message  # unverified: only the replies decide a request
            return
        problem = receipt_problem(message, quorums=self.config.quorums,
                                  verify_member=self._verifier.verify,
                                  verify_client=self._verifier.verify_key,
                                  frame_bytes_max=self._frame_bytes_max)
        if problem is not None:
            self.statistics.receipts_invalid += 1
            waiter.answers[member] = f"invalid receipt: {problem}"
            waiter.wake.set()
            return
        self.statistics.receipts_valid += 1
        waiter.receipt = message
        waiter.wake.set()

    def _on_reply(self, member: int, signed: SignedReply) -> None:
        reply = signed.reply
        waiter = self._waiters.get(reply.seq)
        if (waiter is None or not waiter.wants_result or waiter.result is not None
                or reply.client != self.public_key or reply.session != self.session
                or signed.member != member or member in waiter.replied):
            return
        if not self._verifier.verify(member, REPLY_KIND, signed.body, signed.signature):
            self.statistics.replies_invalid += 1
            waiter.answers[member] = "a reply with a bad signature"
            return
        self.statistics.replies += 1
        waiter.replied[member] = reply.result
        if sum(1 for r in waiter.replied.values() if r == reply.result) \
                >= self.config.quorums.f + 1:
            waiter.result = reply.result
            waiter.wake.set()
        elif len(waiter.replied) >= self.config.quorums.f + 1:
            waiter.wake.set()  # replies disagree: a liar among them; ask one more member

    async def aclose(self) -> None:
        """Close every connection."""
        for link in list(self._links.values()):
            with trio.CancelScope(shield=True):
                await link.aclose()
        self._links.clear()


def _in_flight(config: ClusterConfig, settings: ClientSettings) -> int:
    window = config.settings.client_window
    in_flight = settings.in_flight_max or window
    if in_flight > window:
        raise ConfigError(f"in_flight_max {in_flight} exceeds the cluster's client_window "
                          f"{window}")
    return in_flight


@asynccontextmanager
async def open_client(config: ClusterConfig, key: SigningKey,
                      settings: ClientSettings | None = None) -> AsyncIterator[Client]:
    """A :class:`Client` of the cluster ``config`` describes, signing with ``key``, for the
    duration of the ``async with`` block. Raises :class:`~btob.ConfigError` for settings the
    cluster does not allow."""
    settings = settings or ClientSettings()
    _in_flight(config, settings)  # before any task starts, so the error comes as itself
    async with trio.open_nursery() as nursery:
        client = Client(config, key, settings, nursery)
        try:
            yield client
        finally:
            await client.aclose()
            nursery.cancel_scope.cancel()
