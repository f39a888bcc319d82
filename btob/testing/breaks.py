"""Deliberately broken members, to prove that an adversarial suite can fail.

Each break violates exactly one protocol rule, by injection through :class:`~btob.Member`'s
``quorums``, ``verify`` and ``ordering`` arguments, or as a subclass that persists too little
or too late (the durability rules) - the production code has no switch for any of them.
:func:`broken` returns a member factory that :func:`btob.simulate`, ``btob.sim.sweep.sweep``
and the test helpers accept::

    result = btob.simulate(config, member_factory=broken("quorum-one-short"))

A sweep that passes with a broken factory has a blind spot for that rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from btob._errors import ConfigError
from btob.core.clients import ClientLog
from btob.core.clientwire import ClientRequest
from btob.core.durable import DurableChanges
from btob.core.journal import SIGNED_PREFIX
from btob.core.member import Member
from btob.core.ordering import CommittedSlot, Ordering, _quorum_digest, _Slot
from btob.core.quorum import Quorums
from btob.core.wire import OrderEcho, OrderReady, Signed

__all__ = ["BREAKS", "CLIENT_BREAKS", "DeliverBeforeCommit", "DuplicateClientLog",
           "ForgetSigned", "OldViewVotes", "PersistLate", "ReadyAmplification",
           "UnorderedClientLog", "broken"]


class DeliverBeforeCommit(Ordering):
    """Treats a slot as committed as soon as this member echoes its proposal (no prepare,
    no commit certificate): an equivocating sequencer then splits honest members."""

    def _consider(self, slot: int, state: _Slot, now: float) -> None:
        super()._consider(slot, state, now)
        if state.echoed is not None and state.proposal is not None:
            self._committed.setdefault(slot, CommittedSlot(self.view, slot,
                                                           state.proposal.refs, ()))


class ReadyAmplification(Ordering):
    """Sends an ordering READY on f+1 READYs without holding a prepared certificate (what
    Bracha's BRB may do, and ordering must not: the view change relies on every honest READY
    standing for a prepared certificate)."""

    def _progress(self, slot: int, state: _Slot, now: float) -> None:
        if not state.ready_sent and _quorum_digest(state.echoes, self.quorums.quorum) is None:
            amplified = _quorum_digest(state.readies, self.quorums.one_honest)
            if amplified is not None:
                state.ready_sent = True
                self.outbox.send(None, OrderReady(self.view, slot, amplified))
        super()._progress(slot, state, now)


class OldViewVotes(Ordering):
    """Counts ORDERs and votes of an older view as if they were of the current one (votes
    count only in their own view: an old quorum proves nothing about the new proposal)."""

    def on_message(self, signed: Signed, now: float) -> None:
        message = signed.message
        if isinstance(message, OrderEcho) and message.view < self.view:
            signed = attrs.evolve(signed, message=attrs.evolve(message, view=self.view))
        super().on_message(signed, now)


class ForgetSigned(Member):
    """Persists too little: never commits the messages it signed (its journal), so after a
    restart it may sign anew what it signed before, and it forgets its own broadcasts."""

    def take_durable(self) -> DurableChanges:
        changes = super().take_durable()
        return attrs.evolve(changes, put=tuple((k, v) for k, v in changes.put
                                               if not k.startswith(SIGNED_PREFIX)))


class PersistLate(Member):
    """Persists too late: hands out each step's durable changes one step after its frames
    left, so a crash in between loses what it had already said or acknowledged."""

    _late = DurableChanges.EMPTY

    def take_durable(self) -> DurableChanges:
        now, self._late = self._late, super().take_durable()
        return now


class DuplicateClientLog(ClientLog):
    """Delivers a client's request again when it is committed again (no at-most-once)."""

    def offer(self, frame: bytes, slot: int = 0) -> list[ClientRequest]:
        request = self.parse(frame)
        if request is not None:
            known = self.next_seq(request.client)
            if known is not None and (request.session, request.seq) < known:
                return [request]
        return super().offer(frame, slot)


class UnorderedClientLog(ClientLog):
    """Delivers a client's request as soon as it is committed, ahead of the earlier ones of
    its session (no FIFO: nothing is held back), and never again later."""

    def offer(self, frame: bytes, slot: int = 0) -> list[ClientRequest]:
        request = self.parse(frame)
        if request is None:
            return []
        known = self.next_seq(request.client)
        if known is None or known[0] != request.session or request.seq <= known[1]:
            return super().offer(frame, slot)
        seen = self.__dict__.setdefault("_ahead", set())
        if (request.client, request.session, request.seq) in seen:
            return []
        seen.add((request.client, request.session, request.seq))
        return [request]


def _with_client_log(log: type[ClientLog]) -> Callable[..., Member]:
    """A factory of members whose client rules are ``log``'s."""

    def make(**kwargs: Any) -> Member:
        member = Member(**kwargs)
        rules = member._log.clients  # the break is in the member's own rules
        if rules is not None:
            rules.__class__ = log
        return member

    return make


def _always_valid(member: int, kind: str, body: bytes, signature: bytes) -> bool:
    return True


def _quorum_one_short(**kwargs: Any) -> Member:
    quorums = Quorums.for_cluster(kwargs["registry"].n, kwargs.get("f"))
    return Member(**kwargs, quorums=attrs.evolve(quorums, quorum=quorums.quorum - 1))


BREAKS: dict[str, Callable[..., Member]] = {
    "quorum-one-short": _quorum_one_short,
    "skip-signature-checks": lambda **kwargs: Member(**kwargs, verify=_always_valid),
    "deliver-before-commit": lambda **kwargs: Member(**kwargs, ordering=DeliverBeforeCommit),
    "ready-amplification": lambda **kwargs: Member(**kwargs, ordering=ReadyAmplification),
    "old-view-votes": lambda **kwargs: Member(**kwargs, ordering=OldViewVotes),
    "forget-signed": ForgetSigned,
    "persist-late": PersistLate,
}
"""Every deliberate break by name: a factory taking :class:`~btob.Member`'s arguments."""

CLIENT_BREAKS: dict[str, Callable[..., Member]] = {
    "client-duplicates": _with_client_log(DuplicateClientLog),
    "client-unordered": _with_client_log(UnorderedClientLog),
}
"""Breaks of the client delivery rules (:mod:`btob.core.clients`), found only by runs with
clients: a member that delivers a request twice, or ahead of its session's order."""


def broken(name: str) -> Callable[..., Member]:
    """The member factory of break ``name`` (one of :data:`BREAKS` or
    :data:`CLIENT_BREAKS`)."""
    factory = BREAKS.get(name) or CLIENT_BREAKS.get(name)
    if factory is None:
        raise ConfigError(f"unknown break {name!r}; choose one of "
                          f"{', '.join([*BREAKS, *CLIENT_BREAKS])}")
    return factory
