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

Only a member's own votes count (a vote it forwards is someone else's signature), and only
honest members' frames (a faulty member's lies are its own business; twins run under a faulty
key).
Nothing here verifies signatures: honest members' own frames carry real ones.
"""

from __future__ import annotations

from btob._errors import WireError
from btob.core.wire import Echo, Final, OrderEcho, OrderReady, Ready, decode_frame

__all__ = ["VoteMonitor"]

_VOTES = frozenset({Echo.CODE, Ready.CODE, OrderEcho.CODE, OrderReady.CODE})
"""Wire codes of the votes: small frames, cheap to parse (a SEND is not even decoded)."""
_AGREEING = frozenset({Ready.CODE, OrderReady.CODE})
"""Codes whose honest votes must agree across members (the READYs)."""


class VoteMonitor:
    """Watches honest members' own votes as they leave and lists each broken invariant."""

    def __init__(self) -> None:
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
            if raw.code == Final.CODE:
                self._final(source, raw.parse().message)
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
