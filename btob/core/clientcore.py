"""The client's rules, sans-IO: which member a request goes to, when it fails over, which
receipt or replies finish it, and when it is given up.

One :class:`ClientCore` serves the Trio client (:class:`btob.client.client.Client`, on real
time and sockets) and the simulator's honest clients (:class:`btob.sim.clients.SimClient`,
on virtual time), so the rules the sweeps check are the rules the shipped client runs. The
driver feeds it events (a new request, a frame from a member, a due timer, a member it could
not reach) and carries out the :class:`ClientOutput` each returns.

The rules, for request ``seq`` of the session:

- It goes first to member ``(first + seq) % n``, where ``first`` is drawn from the client's
  key, so that many clients spread over the cluster.
- Each ``retry_s`` without an answer that finishes it, it goes to the next member in turn. A
  member that refuses it (a NOTICE), cannot be reached, or returns a receipt that does not
  prove it, moves it on to the next member at once while some member is still untried; after
  that the timer paces it.
- Once every member has been tried, each ``retry_s`` it goes again to the members that could
  not take it (unreachable, refusing) and to the next member in turn. Sending a request twice
  is harmless: members deliver it at most once.
- A broadcast finishes with the first receipt that proves the very request frame the client
  signed (:func:`~btob.core.clientwire.receipt_problem`); no member can make it believe in an
  order that did not happen. A request for a result finishes once f+1 members sent matching,
  validly signed replies (an honest one is among them); replies that disagree ask one more
  member at once.
- ``give_up_s`` after it was signed without that, it is given up, with what each member
  answered. The cluster may still deliver it: only a receipt proves either way.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import attrs

from btob._errors import WireError
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
from btob.core.quorum import Quorums

__all__ = ["ClientCore", "ClientOutput", "ClientStatistics", "Outcome"]

# Finished requests remembered (by their frame's digest: a frame may be large) to tell a late
# receipt from a stray one.
_FINISHED_REMEMBERED = 4096


@attrs.define
class ClientStatistics:
    """What a client did (the effects of members' faults show here)."""

    requests: int = 0
    """Requests signed."""
    sends: int = 0
    """REQUEST frames handed to the driver to send (one per member tried)."""
    failovers: int = 0
    """Sends to one more member after a timeout, a NOTICE, an unreachable member, a bad
    receipt or disagreeing replies."""
    receipts_valid: int = 0
    """Receipts that proved their request (each request accepts one)."""
    receipts_late: int = 0
    """Further receipts of requests already finished."""
    receipts_invalid: int = 0
    """Receipts refused: malformed, proving nothing, or for a request it never sent."""
    replies: int = 0
    """Validly signed REPLY frames."""
    replies_invalid: int = 0
    """REPLY frames with a bad signature (each names a lying member)."""
    notices: int = 0
    """NOTICE frames (a member did not take a request)."""
    gave_up: int = 0
    """Requests given up after ``give_up_s`` without a receipt or f+1 matching replies."""
    connect_failures: int = 0
    """Connections or handshakes that failed (counted by a driver with connections)."""


@attrs.frozen
class Outcome:
    """How a request finished: with its proof, its result, or given up (``failure`` says
    what each member answered)."""

    seq: int
    frame: bytes
    """The request frame the client signed."""
    receipt: Receipt | None = None
    """The receipt that proves it (a broadcast), or an unverified one (a request for a
    result: only the replies decide it)."""
    member: int = -1
    """The member whose receipt proved it (-1 for a result or a failure)."""
    result: bytes | None = None
    """The result f+1 members agreed on (a request for a result)."""
    failure: str | None = None
    """Why it was given up; None if it finished."""


@attrs.define
class ClientOutput:
    """What the driver does after one event: send ``(member, seq, frame)``, call
    :meth:`ClientCore.on_timer` with ``seq`` at ``at`` for each ``(at, seq)``, and hand each
    finished :class:`Outcome` to whoever waits for it."""

    sends: list[tuple[int, int, bytes]] = attrs.field(factory=list)
    timers: list[tuple[float, int]] = attrs.field(factory=list)
    finished: list[Outcome] = attrs.field(factory=list)


@attrs.define
class _Request:
    seq: int
    frame: bytes
    signed_at: float
    wants_result: bool
    attempts: int = 0
    retry_at: float = 0.0
    answers: dict[int, str] = attrs.field(factory=dict)
    unserved: set[int] = attrs.field(factory=set)
    replied: dict[int, bytes] = attrs.field(factory=dict)
    receipt: Receipt | None = None


class ClientCore:
    """One client session's requests (see the module docstring)."""

    def __init__(self, *, public_key: bytes, sign: Callable[[str, bytes], bytes],
                 session: int, n: int, quorums: Quorums, retry_s: float, give_up_s: float,
                 verify_member: Callable[[int, str, bytes, bytes], bool],
                 frame_bytes_max: int) -> None:
        self.public_key = public_key
        """The client's key (its identity in the cluster)."""
        self.session = session
        """The session its requests are numbered in."""
        self._sign = sign
        self._n = n
        self._quorums = quorums
        self._retry_s = retry_s
        self._give_up_s = give_up_s
        self._verify_member = verify_member
        self._frame_bytes_max = frame_bytes_max
        self._first = int.from_bytes(hashlib.sha256(public_key).digest()[:4], "big") % n
        self._next_seq = 0
        self._waiting: dict[int, _Request] = {}
        self._by_frame: dict[bytes, int] = {}
        self._finished: OrderedDict[bytes, None] = OrderedDict()
        self.statistics = ClientStatistics()
        """Counters of what the client did."""

    @property
    def waiting(self) -> int:
        """Requests neither finished nor given up."""
        return len(self._waiting)

    @property
    def next_seq(self) -> int:
        """The number the next request takes."""
        return self._next_seq

    # -- events -------------------------------------------------------------------------------

    def request(self, payload: bytes, now: float, *,
                wants_result: bool = False) -> tuple[int, ClientOutput]:
        """Sign the session's next request of ``payload`` and send it to its first member;
        returns its seq. ``wants_result``: finish on f+1 matching replies, not a receipt."""
        seq = self._next_seq
        self._next_seq += 1
        frame = sign_request(ClientRequest(self.public_key, self.session, seq, bytes(payload)),
                             self._sign)
        self.statistics.requests += 1
        request = self._waiting[seq] = _Request(seq, frame, now, wants_result)
        self._by_frame[frame] = seq
        out = ClientOutput()
        self._send_next(request, now, out)
        return seq, out

    def on_timer(self, seq: int, now: float) -> ClientOutput:
        """A timer of request ``seq`` is due: give it up, or send it on (unless it finished
        or a later timer replaced this one)."""
        out = ClientOutput()
        request = self._waiting.get(seq)
        if request is None:
            return out
        if now >= request.signed_at + self._give_up_s:
            self._give_up(request, out)
        elif now >= request.retry_at:
            self.statistics.failovers += 1
            self._send_next(request, now, out)
        return out

    def unreachable(self, member: int, seq: int, why: str, now: float) -> ClientOutput:
        """The driver could not hand request ``seq`` to ``member`` (``why``: unreachable, the
        connection broke): try it again later, and the next member now."""
        out = ClientOutput()
        request = self._waiting.get(seq)
        if request is not None:
            request.answers[member] = why
            request.unserved.add(member)
            self._fail_over_now(request, now, out)
        return out

    def on_frame(self, member: int, frame: bytes, now: float) -> ClientOutput:
        """A RECEIPT, NOTICE or REPLY frame from ``member``."""
        out = ClientOutput()
        try:
            message = decode_client_frame(frame, frame_bytes_max=self._frame_bytes_max)
        except WireError:
            self.statistics.receipts_invalid += 1
            return out
        if isinstance(message, Notice):
            self.statistics.notices += 1
            request = self._waiting.get(message.seq) if message.session == self.session \
                else None
            if request is not None:
                request.answers[member] = f"refused: {message.reason}"
                request.unserved.add(member)
                self._fail_over_now(request, now, out)
        elif isinstance(message, SignedReply):
            self._on_reply(member, message, now, out)
        else:
            self._on_receipt(member, message, now, out)
        return out

    def abandon(self, seq: int) -> None:
        """Forget request ``seq`` (its caller went away); later answers count as late."""
        request = self._waiting.get(seq)
        if request is not None:
            self._finish(request)

    # -- rules --------------------------------------------------------------------------------

    def _send_next(self, request: _Request, now: float, out: ClientOutput) -> None:
        """Send to the next member in turn, and, once every member was tried, again to those
        that could not take it; then wait ``retry_s`` (or until the deadline, if sooner)."""
        members = [(self._first + request.seq + request.attempts) % self._n]
        if request.attempts >= self._n:
            members += sorted(request.unserved - set(members))
            request.unserved.clear()
        request.attempts += 1
        for member in members:
            out.sends.append((member, request.seq, request.frame))
            self.statistics.sends += 1
        request.retry_at = now + self._retry_s
        out.timers.append((min(request.retry_at, request.signed_at + self._give_up_s),
                           request.seq))

    def _fail_over_now(self, request: _Request, now: float, out: ClientOutput) -> None:
        """An answer that says: try another member. At once while one is untried; after
        that the timer paces the request."""
        if request.attempts < self._n:
            self.statistics.failovers += 1
            self._send_next(request, now, out)

    def _on_receipt(self, member: int, receipt: Receipt, now: float,
                    out: ClientOutput) -> None:
        seq = self._by_frame.get(receipt.request)
        if seq is None:
            if hashlib.sha256(receipt.request).digest() in self._finished:
                self.statistics.receipts_late += 1
            else:
                self.statistics.receipts_invalid += 1  # for a request it never sent
            return
        request = self._waiting[seq]
        if request.wants_result:
            request.receipt = receipt  # unverified: only the replies decide such a request
            return
        # The request in the receipt is byte for byte the frame this client signed, so its
        # own signature needs no check; everything the members signed does.
        problem = receipt_problem(receipt, quorums=self._quorums,
                                  verify_member=self._verify_member,
                                  verify_client=self._own_signature,
                                  frame_bytes_max=self._frame_bytes_max)
        if problem is not None:
            self.statistics.receipts_invalid += 1
            request.answers[member] = f"invalid receipt: {problem}"
            self._fail_over_now(request, now, out)
            return
        self.statistics.receipts_valid += 1
        self._finish(request)
        out.finished.append(Outcome(seq, request.frame, receipt=receipt, member=member))

    def _own_signature(self, key: bytes, kind: str, body: bytes, signature: bytes) -> bool:
        return key == self.public_key

    def _on_reply(self, member: int, signed: SignedReply, now: float,
                  out: ClientOutput) -> None:
        reply = signed.reply
        request = self._waiting.get(reply.seq)
        if (request is None or not request.wants_result or reply.client != self.public_key
                or reply.session != self.session or signed.member != member
                or member in request.replied):
            return
        if not self._verify_member(member, REPLY_KIND, signed.body, signed.signature):
            self.statistics.replies_invalid += 1
            request.answers[member] = "a reply with a bad signature"
            return
        self.statistics.replies += 1
        request.replied[member] = reply.result
        f = self._quorums.f
        if sum(1 for r in request.replied.values() if r == reply.result) >= f + 1:
            self._finish(request)
            out.finished.append(Outcome(request.seq, request.frame, receipt=request.receipt,
                                        result=reply.result))
        elif len(request.replied) >= f + 1:
            request.answers[member] = "a reply that disagrees with others"
            self._fail_over_now(request, now, out)  # a liar among them: ask one more member

    def _give_up(self, request: _Request, out: ClientOutput) -> None:
        self.statistics.gave_up += 1
        self._finish(request)
        answers = "; ".join(f"member {m}: {a}" for m, a in sorted(request.answers.items()))
        what = "f+1 matching replies" if request.wants_result else "valid receipt"
        out.finished.append(Outcome(request.seq, request.frame, failure=(
            f"request {self.session}.{request.seq}: no {what} within {self._give_up_s} s "
            f"({answers or 'no answers'})")))

    def _finish(self, request: _Request) -> None:
        del self._waiting[request.seq]
        del self._by_frame[request.frame]
        self._finished[hashlib.sha256(request.frame).digest()] = None
        if len(self._finished) > _FINISHED_REMEMBERED:
            self._finished.popitem(last=False)
