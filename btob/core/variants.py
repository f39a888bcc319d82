"""The sequencer variants as strategies: each is a proposer policy plus a dissemination.

==========  =====================================  =============================================
variant     proposer (:mod:`btob.core.proposers`)  dissemination
==========  =====================================  =============================================
``bb``      :class:`FixedProposer`                 reliable broadcast (``brb``: bracha or echo)
``ub``      :class:`FixedProposer`                 :class:`DirectDissemination` (ORDER carries)
``uub``     :class:`GrantingProposer`              :class:`GrantedDissemination` (slot grants)
``moving``  :class:`MovingProposer`                reliable broadcast (``brb``)
==========  =====================================  =============================================

Everything else - the prepare and commit certificates, the view change, checkpoints, catch-up
and delivery - is the same code for all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from btob._errors import ConfigError
from btob.core.brb import BrachaBroadcast, SignedEchoBroadcast
from btob.core.direct import DirectDissemination, GrantedDissemination
from btob.core.dissemination import BRB_KINDS, Dissemination
from btob.core.effects import Outbox, VerifyFn
from btob.core.proposers import FixedProposer, GrantingProposer, MovingProposer, Proposer
from btob.core.quorum import Quorums
from btob.core.settings import Settings
from btob.core.wire import Send, Signed

__all__ = ["BRB_KINDS", "VARIANTS", "Variant", "check_brb", "variant"]


@attrs.frozen
class Variant:
    """One sequencer variant: who proposes, and how batches are disseminated."""

    name: str
    proposer: type[Proposer]
    direct: type[DirectDissemination] | None
    """The direct dissemination of UB or UUB; None: reliable broadcast (the ``brb`` kind)."""
    summary: str

    def dissemination(self, brb: str, *, member: int, quorums: Quorums, settings: Settings,
                      outbox: Outbox, verify: VerifyFn, leader: Callable[[], int],
                      ordered_low: Callable[[int], int],
                      sign: Callable[[Send], Signed]) -> Dissemination:
        """The dissemination core of one member (``brb`` is ignored by UB and UUB)."""
        if self.direct is not None:
            return self.direct(member=member, quorums=quorums, settings=settings,
                               outbox=outbox, verify=verify, leader=leader,
                               ordered_low=ordered_low, sign=sign)
        check_brb(brb)
        cls = BrachaBroadcast if brb == "bracha" else SignedEchoBroadcast
        return cls(member=member, quorums=quorums, settings=settings, outbox=outbox,
                   verify=verify, leader=leader)


_TABLE = {v.name: v for v in (
    Variant("bb", FixedProposer, None,
            "members reliably broadcast their batches; the sequencer orders references"),
    Variant("ub", FixedProposer, DirectDissemination,
            "members hand batches to the sequencer; its ORDERs carry them"),
    Variant("uub", GrantingProposer, GrantedDissemination,
            "members ask the sequencer for a slot and broadcast the batch with the grant"),
    Variant("moving", MovingProposer, None,
            "the proposer rotates per slot; one slot in flight, passed on like a token"),
)}

VARIANTS = tuple(_TABLE)
"""Names of the sequencer variants (``--variant``)."""


def variant(name: str) -> Variant:
    """The variant called ``name``; :class:`ConfigError` for an unknown one."""
    found = _TABLE.get(name)
    if found is None:
        raise ConfigError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return found


def check_brb(brb: str) -> None:
    """:class:`ConfigError` unless ``brb`` names a reliable broadcast."""
    if brb not in BRB_KINDS:
        raise ConfigError(f"unknown BRB kind {brb!r}; choose one of {', '.join(BRB_KINDS)}")
