"""Invariants on what honest members sign, checked in the simulator as their frames leave.

The checker judges deliveries, and a rule can break long before a delivery shows it: with a
READY threshold too low, an equivocating origin gets honest READYs for two values, and if
neither value then reaches its delivery quorum nobody delivers anything wrong - the run
passes, with the protocol one step from disagreement. These invariants follow from the
protocol's lemmas, so a correct member under any fault never breaks them:

- *An honest member signs one vote per instance.* Its BRB ECHO and READY for (origin,
  counter) and its ordering ECHO and READY for (view, slot) each name one digest, however
  often it resends them and across its restarts (the journal keeps what it signed).
- *Honest READYs agree.* A Bracha READY needs an ECHO quorum or f+1 READYs (one of them
  honest), and two ECHO quorums share an honest member, which echoes once: every honest
  READY of one instance names the same digest. An ordering READY needs a prepared
  certificate, and one view prepares at most one value per slot, for the same reason.
- *Honest members reliably deliver one batch per instance.* Under the signed-echo BRB an
  honest member passes a FINAL on to everyone as it delivers it; a FINAL needs q ECHOs, and
  two ECHO quorums share an honest member, so all honest members pass on the same batch for
  one (origin, counter), whoever signed it.

- *Honest members pass on only certificates that hold.* Every certificate in an honest
  member's frame - the FINAL it sends or forwards, the stable checkpoint and prepared
  certificates in its VIEW-CHANGE (and in those its NEW-VIEW carries), the commit
  certificate of its SLOT proof, the checkpoint certificate of its LOG SEGMENT, and those it
  commits to its disk (its snapshot's stable checkpoint, its delivered slots') - has q
  distinct signers, each signature valid for exactly that certificate's body and kind. An
  honest member builds certificates from votes it verified and takes others' only after
  verifying them, so this fails only when one of its rules (a threshold, the verify cache,
  what a vote is counted for) let a bad vote in - even when nothing wrong is delivered. Nor
  may a signature in them pass for the kind whose body has the same layout (an ECHO's for
  a READY's): the domain tag binds each signature to its kind.

- *No honest member is convicted.* Evidence is two conflicting messages validly signed by
  one member, and an honest member never signs two (unless it restarted from an empty
  disk, which forgot them): evidence against an honest member that another honest member
  holds at the end of a run means a forgery passed for a signature.

Only a member's own votes count (a vote it forwards is someone else's signature), and only
honest members' frames (a faulty member's lies are its own business; twins run under a faulty
key). Votes need no signature check: honest members' own frames carry real ones.
Certificates are checked on their own terms, by q computed here and a verifier without a
cache, not by the members' code under test; each distinct frame is checked once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from btob._errors import WireError
from btob.core.durable import DurableChanges
from btob.core.wire import (
    Checkpoint,
    CheckpointCert,
    Echo,
    Final,
    LogSegment,
    NewView,
    OrderCommitted,
    OrderEcho,
    OrderPrepared,
    OrderReady,
    PreparedCert,
    Ready,
    SlotProof,
    ViewChange,
    Vote,
    decode_frame,
    slot_digest,
)

__all__ = ["VoteMonitor"]

Verify = Callable[[int, str, bytes, bytes], bool]
"""(member, kind, body, signature) -> valid: the monitor's own signature check."""

_VOTES = frozenset({Echo.CODE, Ready.CODE, OrderEcho.CODE, OrderReady.CODE})
"""Wire codes of the votes: small frames, cheap to parse (a SEND is not even decoded)."""
_AGREEING = frozenset({Ready.CODE, OrderReady.CODE})
"""Codes whose honest votes must agree across members (the READYs)."""
_SIBLING_KINDS = {Echo.KIND: Ready.KIND, Ready.KIND: Echo.KIND,
                  OrderEcho.KIND: OrderReady.KIND, OrderReady.KIND: OrderEcho.KIND}
"""Kinds whose bodies have the same layout: a signature for one must never pass for the
other (the domain tag names the kind)."""
_CERTIFIED = frozenset({Final.CODE, ViewChange.CODE, NewView.CODE, SlotProof.CODE,
                        LogSegment.CODE, OrderPrepared.CODE, OrderCommitted.CODE})
"""Codes of the frames that carry certificates."""


class VoteMonitor:
    """Watches honest members' own votes as they leave and lists each broken invariant."""

    def __init__(self, *, n: int = 0, quorum: int = 0, verify: Verify | None = None) -> None:
        """With ``verify`` (and the cluster's ``n`` and ``quorum``), certificates in honest
        frames are checked too; without it only votes are."""
        self.n, self.quorum, self.verify = n, quorum, verify
        self._checked: set[bytes] = set()  # digests of the certificate frames checked
        self._verified: dict[tuple[int, str, bytes, bytes], bool] = {}
        self.violations: list[str] = []
        """One line per broken invariant, in the order they were seen."""
        self._signed: dict[tuple[int, int, tuple[int, int]], bytes] = {}
        self._agreed: dict[tuple[int, tuple[int, int]], tuple[int, bytes]] = {}
        self._delivered: dict[tuple[int, int], tuple[int, bytes]] = {}
        self._last: bytes | None = None

    def observe(self, source: int, frame: bytes) -> None:
        """Look at a frame honest member ``source`` sends (each frame object once)."""
        if frame is self._last:
            return  # a broadcast hands one frame object to every destination
        self._last = frame
        try:
            raw = decode_frame(frame)
            if raw.code in _CERTIFIED:
                key = hashlib.blake2b(frame, digest_size=16).digest()
                fresh = self.verify is not None and key not in self._checked
                if not fresh and raw.code != Final.CODE:
                    return
                message = raw.parse().message
                if fresh:
                    self._checked.add(key)
                    self._certificates(source, message)
                if raw.code == Final.CODE:
                    self._final(source, message)
                return
            if raw.code not in _VOTES or raw.sender != source:
                return
            message = raw.parse().message
        except WireError:
            return  # not the monitor's business: the receivers count what does not decode
        if isinstance(message, OrderEcho):
            instance = (message.view, message.slot)
        else:
            assert isinstance(message, Echo)
            instance = (message.origin, message.counter)
        kind = message.KIND
        mine = self._signed.setdefault((source, raw.code, instance), message.digest)
        if mine != message.digest:
            self.violations.append(
                f"honest member {source} signed two {kind} votes for {instance}: "
                f"{mine.hex()[:12]} and {message.digest.hex()[:12]}")
        elif raw.code in _AGREEING:  # (a member's own second vote is reported once, above)
            first, digest = self._agreed.setdefault((raw.code, instance),
                                                    (source, message.digest))
            if digest != message.digest:
                self.violations.append(
                    f"honest members {first} and {source} sent {kind} for {instance} with "
                    f"different digests: {digest.hex()[:12]} and {message.digest.hex()[:12]}")

    def _final(self, source: int, message: object) -> None:
        assert isinstance(message, Final)
        instance = (message.origin, message.counter)
        digest = message.batch.digest()
        first, held = self._delivered.setdefault(instance, (source, digest))
        if held != digest:
            self.violations.append(
                f"honest members {first} and {source} delivered different batches for "
                f"{instance}: {held.hex()[:12]} and {digest.hex()[:12]}")

    def convicted(self, holder: int, members: Iterable[int]) -> None:
        """Honest ``holder`` ended the run holding evidence against honest ``members``:
        each is a broken invariant (a verifier, or a rule of what conflicts, let a forgery
        or a non-conflict pass as proof)."""
        for member in members:
            self.violations.append(f"honest member {holder} holds evidence against honest "
                                   f"member {member}")

    # -- certificates ---------------------------------------------------------------------

    def observe_durable(self, member: int, changes: DurableChanges) -> None:
        """Look at what honest ``member`` commits to its disk: the stable checkpoint of its
        snapshot and the commit certificates of its delivered slots must hold too (a slot
        settled by a verified checkpoint keeps no certificate of its own)."""
        if self.verify is None:
            return
        if changes.snapshot is not None:
            self._checkpoint(member, "snapshot", changes.snapshot.cert, kept=True)
        for record in changes.slots:
            if record.certificate:
                body = OrderReady(record.view, record.slot,
                                  slot_digest(record.slot, record.refs)).to_body()
                self._cert(member, f"delivered slot {record.slot}", record.certificate,
                           OrderReady.KIND, body, kept=True)

    def _certificates(self, source: int, message: object) -> None:
        """Check every certificate ``message`` (from honest ``source``) carries."""
        if isinstance(message, Final):
            body = Echo(message.origin, message.counter, message.batch.digest()).to_body()
            self._cert(source, f"FINAL ({message.origin}, {message.counter})",
                       message.certificate, Echo.KIND, body)
        elif isinstance(message, SlotProof):
            body = OrderReady(message.view, message.slot,
                              slot_digest(message.slot, message.refs)).to_body()
            self._cert(source, f"SLOT proof of {message.slot}", message.certificate,
                       OrderReady.KIND, body)
        elif isinstance(message, LogSegment):
            self._checkpoint(source, "LOG SEGMENT", message.cert)
        elif isinstance(message, OrderPrepared):
            self._prepared(source, "ORDER-PREPARED", PreparedCert(
                message.view, message.slot, message.refs, message.votes))
        elif isinstance(message, OrderCommitted):
            body = OrderReady(message.view, message.slot, message.digest).to_body()
            self._cert(source, f"ORDER-COMMITTED ({message.view}, {message.slot})",
                       message.votes, OrderReady.KIND, body)
        elif isinstance(message, ViewChange):
            self._view_change(source, "VIEW-CHANGE", message)
        elif isinstance(message, NewView):
            signers = set()
            for frame in message.view_changes:
                try:
                    signed = decode_frame(frame).parse()
                except WireError:
                    self._broken(source, f"NEW-VIEW {message.view}", "a frame that does not "
                                 "decode")
                    continue
                change = signed.message
                if not isinstance(change, ViewChange) or change.view != message.view or \
                        not self._valid(signed.sender, ViewChange.KIND, signed.body,
                                        signed.signature):
                    self._broken(source, f"NEW-VIEW {message.view}",
                                 f"a bad VIEW-CHANGE of member {signed.sender}")
                    continue
                signers.add(signed.sender)
                self._view_change(source, f"NEW-VIEW {message.view}", change)
            if len(signers) < self.quorum:
                self._broken(source, f"NEW-VIEW {message.view}",
                             f"{len(signers)} VIEW-CHANGEs, fewer than q={self.quorum}")

    def _view_change(self, source: int, where: str, change: ViewChange) -> None:
        if change.checkpoint is not None:
            self._checkpoint(source, where, change.checkpoint)
        for cert in change.prepared:
            self._prepared(source, where, cert)

    def _checkpoint(self, source: int, where: str, cert: CheckpointCert, *,
                    kept: bool = False) -> None:
        body = Checkpoint(cert.upto, cert.digest, cert.state).to_body()
        self._cert(source, f"{where}: checkpoint at {cert.upto}", cert.votes,
                   Checkpoint.KIND, body, kept=kept)

    def _prepared(self, source: int, where: str, cert: PreparedCert) -> None:
        body = OrderEcho(cert.view, cert.slot, slot_digest(cert.slot, cert.refs)).to_body()
        self._cert(source, f"{where}: prepared ({cert.view}, {cert.slot})", cert.votes,
                   OrderEcho.KIND, body)

    def _cert(self, source: int, what: str, votes: Iterable[Vote], kind: str,
              body: bytes, *, kept: bool = False) -> None:
        signers: set[int] = set()
        for vote in votes:
            if vote.member in signers or not 0 <= vote.member < self.n:
                self._broken(source, what, f"a repeated or foreign signer {vote.member}",
                             kept=kept)
                return
            if not self._valid(vote.member, kind, body, vote.signature):
                self._broken(source, what, f"member {vote.member}'s signature is not for it",
                             kept=kept)
                return
            sibling = _SIBLING_KINDS.get(kind)
            if sibling is not None and self._valid(vote.member, sibling, body, vote.signature):
                self._broken(source, what, f"member {vote.member}'s signature is valid as a "
                             f"{sibling} too: signatures are not bound to their kind",
                             kept=kept)
                return
            signers.add(vote.member)
        if len(signers) < self.quorum:
            self._broken(source, what, f"{len(signers)} signers, fewer than q={self.quorum}",
                         kept=kept)

    def _valid(self, member: int, kind: str, body: bytes, signature: bytes) -> bool:
        """The monitor's own check, remembered either way: one commit certificate reaches
        every member's disk and many frames (the key holds the body, so an answer is for
        exactly these bytes)."""
        assert self.verify is not None
        key = (member, kind, body, signature)
        valid = self._verified.get(key)
        if valid is None:
            valid = self._verified[key] = self.verify(member, kind, body, signature)
        return valid

    def _broken(self, source: int, what: str, why: str, *, kept: bool = False) -> None:
        verb = "kept on its disk" if kept else "passed on"
        self.violations.append(f"honest member {source} {verb} a certificate that does not "
                               f"hold: {what}: {why}")
