"""What a member signed that a later message could contradict - and the guard that never lets it.

Theory of operation. Most of what a member signs names an instance that one signer may speak
about only once: a SEND for its counter, an ECHO or READY for (origin, counter), an ORDER or an
ordering vote for (view, slot), a CHECKPOINT for its boundary, a VIEW-CHANGE or NEW-VIEW for
its view. :func:`conflict_key` names that instance. Every signature a member makes goes through
:meth:`SigningJournal.sign`: the first message for a key is signed and recorded as a durable
change (committed before the frame leaves); any later message for the same key gets the
recorded one back, whatever its content. So a member restarted from its durable state - which
may have lost its votes' context and would now vote otherwise - repeats itself instead of
contradicting itself, and retransmissions cost no new signature.

Keys are forgotten once nothing can ask for them again: instances whose batch is ordered
below a stable checkpoint, slots below it, views before the current one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from btob.core.wire import (
    Checkpoint,
    Echo,
    Fetch,
    Message,
    NewView,
    Order,
    OrderEcho,
    OrderReady,
    Ready,
    Request,
    Send,
    Signed,
    ViewChange,
    WireLimits,
    decode_frame,
)

__all__ = ["SIGNED_PREFIX", "ConflictKey", "SigningJournal", "conflict_key"]

ConflictKey = tuple[str, int, int]
"""``(what, a, b)``: the instance a signed message speaks about (see :func:`conflict_key`)."""

SIGNED_PREFIX = "sig/"
"""The prefix of the durable keys under which a member keeps what it signed."""


def conflict_key(sender: int, message: Message) -> ConflictKey | None:
    """The instance ``message`` (signed by ``sender``) may speak about only once, or None for
    kinds that cannot contradict anything (requests for data, status, proofs)."""
    kind = type(message)
    if kind is Send:
        assert isinstance(message, Send)
        return ("send", sender, message.counter)
    if kind is Echo or kind is Ready:
        assert isinstance(message, Echo)
        return ("echo" if kind is Echo else "ready", message.origin, message.counter)
    if kind is Request:
        assert isinstance(message, Request)
        return ("request", sender, message.counter)
    if kind is Order:
        assert isinstance(message, Order)
        return ("order", message.view, message.slot)
    if kind is OrderEcho or kind is OrderReady:
        assert isinstance(message, OrderEcho)
        return ("oecho" if kind is OrderEcho else "oready", message.view, message.slot)
    if kind is Checkpoint:
        assert isinstance(message, Checkpoint)
        return ("checkpoint", message.upto, 0)
    if kind is ViewChange or kind is NewView:
        assert isinstance(message, (ViewChange, NewView))
        return ("viewchange" if kind is ViewChange else "newview", message.view, 0)
    # A forwarded certificate (FINAL, ord.prepared, ord.committed) speaks for its q signers.
    assert kind is Fetch or kind.KIND.startswith(("ctl.", "brb.final", "ord.prepared",
                                                  "ord.committed")), kind
    return None


def _store_key(key: ConflictKey) -> str:
    return f"{SIGNED_PREFIX}{key[0]}/{key[1]}/{key[2]}"


class SigningJournal:
    """The conflict-keyed messages one member signed, and the changes not yet handed out."""

    def __init__(self, member: int, sign: Callable[[str, bytes], bytes]) -> None:
        self.member = member
        self._sign = sign
        self._held: dict[ConflictKey, Signed] = {}
        self._put: dict[str, bytes] = {}
        self._delete: set[str] = set()
        self.repeated = 0
        """Messages answered with the one signed before for their key, not signed anew."""
        self.refused = 0
        """Of those, the ones whose content differed: a contradiction prevented."""

    def sign(self, message: Message) -> Signed:
        """``message`` signed by this member - or the message it signed before for the same
        instance, if there is one."""
        key = conflict_key(self.member, message)
        if key is None:
            return Signed.create(self.member, message, self._sign)
        held = self._held.get(key)
        if held is not None:
            self.repeated += 1
            if held.message != message:
                self.refused += 1
            return held
        signed = Signed.create(self.member, message, self._sign)
        self._held[key] = signed
        name = _store_key(key)
        self._put[name] = signed.to_frame()
        self._delete.discard(name)
        return signed

    def held_for(self, message: Message) -> Signed | None:
        """What this member signed before for ``message``'s instance, if anything."""
        key = conflict_key(self.member, message)
        return None if key is None else self._held.get(key)

    def signed(self, what: str) -> Iterator[Signed]:
        """Every held message whose key is of kind ``what`` (e.g. ``"send"``), by key."""
        for key in sorted(k for k in self._held if k[0] == what):
            yield self._held[key]

    def forget(self, drop: Callable[[ConflictKey], bool]) -> int:
        """Forget every key for which ``drop(key)`` is true; returns how many."""
        gone = [k for k in self._held if drop(k)]
        for key in gone:
            del self._held[key]
            name = _store_key(key)
            self._put.pop(name, None)
            self._delete.add(name)
        return len(gone)

    def load(self, entries: dict[str, bytes], limits: WireLimits) -> None:
        """Take back the messages a restarted member signed before (its durable entries)."""
        for name, frame in entries.items():
            if not name.startswith(SIGNED_PREFIX):
                continue
            signed = decode_frame(frame, limits).parse(limits)
            key = conflict_key(self.member, signed.message)
            assert key is not None and signed.sender == self.member, name
            self._held[key] = signed

    def take_changes(self) -> tuple[dict[str, bytes], set[str]]:
        """Entries to write and to delete since the last call."""
        put, self._put = self._put, {}
        delete, self._delete = self._delete, set()
        return put, delete

    def held(self) -> int:
        """Messages held (a memory-bound probe)."""
        return len(self._held)
