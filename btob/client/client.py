"""The client API: order payloads through a cluster you are not a member of.

:func:`open_client` connects lazily to the members' client ports. :meth:`Client.broadcast`
signs a REQUEST with the next number of the client's session and hands it to members by the
rules of :mod:`btob.core.clientcore` (one member first; one more after each ``retry_after_s``
without a valid receipt, or at once on a refusal, an unreachable member or a bad receipt; then
again to those that could not take it, until ``give_up_after_s``). It returns the first receipt
that proves the request committed (:func:`~btob.core.clientwire.receipt_problem`), so no member
can make the client believe in an order that did not happen. The cluster delivers the request
once however many members it reached. At most ``in_flight_max`` requests wait at a time (more
callers wait for a place: backpressure), which keeps an honest client within the cluster's
``client_window``. This module is the Trio driver of those rules: connections, timers and
waiting callers; the simulator drives the same rules on virtual time.

A session is numbered by the time in microseconds when the client opened, so a restarted
client with the same key starts a session above its earlier ones.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from btob._errors import BtobError, ConfigError
from btob.client.connection import HandshakeFailed, MemberConnection, connect_member
from btob.core.clientcore import ClientCore, ClientOutput, ClientStatistics, Outcome
from btob.core.clientwire import Receipt
from btob.crypto import Signer, SigningKey, Verifier
from btob.runtime.config import ClusterConfig

__all__ = ["Client", "ClientSettings", "ClientStatistics", "RequestFailed", "open_client"]

# Member signatures remembered: receipts of requests committed in one slot share its
# certificate.
_VERIFY_CACHE_ENTRIES = 256
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


class Client:
    """A client of one cluster; made by :func:`open_client`."""

    def __init__(self, config: ClusterConfig, key: SigningKey, settings: ClientSettings,
                 nursery: trio.Nursery) -> None:
        self.config = config
        self.settings = settings
        self._signer = Signer(key, cluster_id=config.cluster_id)
        self._verifier = Verifier(config.registry, cluster_id=config.cluster_id,
                                  cache_entries_max=_VERIFY_CACHE_ENTRIES)
        self._nursery = nursery
        self.public_key = self._signer.public_key
        """The client's public key (its identity in the cluster)."""
        self.session = time.time_ns() // 1000
        """This client's session number."""
        self._frame_bytes_max = max(1 << 20, 4 * config.settings.batch_bytes_max)
        self._core = ClientCore(
            public_key=self.public_key, sign=self._signer.sign, session=self.session,
            n=config.n, quorums=config.quorums, retry_s=settings.retry_after_s,
            give_up_s=settings.give_up_after_s, verify_member=self._verifier.verify,
            frame_bytes_max=self._frame_bytes_max)
        self._slots = trio.Semaphore(_in_flight(config, settings))
        self._finished: dict[int, trio.Event] = {}
        self._outcomes: dict[int, Outcome] = {}
        self._links: dict[int, MemberConnection] = {}
        self._connecting: dict[int, trio.Event] = {}
        self.statistics: ClientStatistics = self._core.statistics
        """Counters of what this client did."""

    # -- API ----------------------------------------------------------------------------------

    async def broadcast(self, payload: bytes) -> Receipt:
        """Order ``payload``; returns the receipt that proves where it was committed.

        Raises :class:`RequestFailed` after ``give_up_after_s`` without a valid receipt.
        """
        outcome = await self._order(payload, wants_result=False)
        assert outcome.receipt is not None
        return outcome.receipt

    async def request(self, payload: bytes) -> bytes:
        """Order ``payload`` as a command for the members' application and return its
        result, once f+1 members sent matching signed replies (so an honest one is among
        them). The client connects to every member first: replies come only over a
        connection.

        Raises :class:`RequestFailed` after ``give_up_after_s`` without f+1 matching replies.
        """
        await self.connect_all()
        outcome = await self._order(payload, wants_result=True)
        assert outcome.result is not None
        return outcome.result

    async def connect_all(self) -> int:
        """Connect to every member not yet connected (in parallel, each within
        ``connect_timeout_s``); returns how many members are connected."""
        async with trio.open_nursery() as nursery:
            for member in range(self.config.n):
                if member not in self._links:
                    nursery.start_soon(self._link, member)
        return len(self._links)

    async def _order(self, payload: bytes, *, wants_result: bool) -> Outcome:
        async with self._slots:
            seq, out = self._core.request(payload, trio.current_time(),
                                          wants_result=wants_result)
            finished = self._finished[seq] = trio.Event()
            try:
                self._carry_out(out)
                await finished.wait()
            finally:
                del self._finished[seq]
                outcome = self._outcomes.pop(seq, None)
                if outcome is None:
                    self._core.abandon(seq)  # cancelled: later answers count as late
            assert outcome is not None
            if outcome.failure is not None:
                raise RequestFailed(outcome.failure)
            return outcome

    def _carry_out(self, out: ClientOutput) -> None:
        for member, seq, frame in out.sends:
            self._nursery.start_soon(self._send, member, seq, frame)
        for at, seq in out.timers:
            self._nursery.start_soon(self._timer, at, seq)
        for outcome in out.finished:
            finished = self._finished.get(outcome.seq)
            if finished is not None:
                self._outcomes[outcome.seq] = outcome
                finished.set()

    async def _timer(self, at: float, seq: int) -> None:
        await trio.sleep_until(at)
        if seq in self._finished:
            self._carry_out(self._core.on_timer(seq, trio.current_time()))

    # -- links --------------------------------------------------------------------------------

    async def _send(self, member: int, seq: int, frame: bytes) -> None:
        link = await self._link(member)
        why = "unreachable"
        if link is not None:
            try:
                await link.send(frame)
                return
            except _LINK_ERRORS:
                why = "connection broke"
                self._links.pop(member, None)
        self._carry_out(self._core.unreachable(member, seq, why, trio.current_time()))

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
        self._carry_out(self._core.on_frame(member, frame, trio.current_time()))

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
