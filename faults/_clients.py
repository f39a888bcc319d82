"""Byzantine clients: simulated clients that break the client rules, by name.

An honest client signs one payload per (session, seq), numbers its requests 0, 1, 2, ...
and keeps at most ``client_window`` of them in flight. A Byzantine client does not:

* ``equivocate``: two payloads under one (session, seq), each sent to another member;
* ``replay``: re-sends honest clients' request frames (those they have receipts for) to
  members at random, later;
* ``flood``: requests beyond its session's window and at far-future seqs, ``k`` a round;
* ``garbage``: malformed frames, requests with a wrong signature (its own key or an honest
  client's), and requests signed by a key the cluster does not admit.

Specs read ``J=BEHAVIOUR[:key=value,...]`` (``--client-fault``), J a client id. A behaviour
acts in rounds, one every ``every`` virtual seconds, ``rounds`` times, then stops; each
draws from a random source seeded by the run's seed and the client id. It only ever sees
frames: what it sends (:attr:`ClientActions.sends`) and what members answer.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Mapping, Sequence

import attrs

from btob._errors import ConfigError, WireError
from btob.core.clientwire import ClientRequest, Notice, decode_client_frame, sign_request
from btob.faults._spec import Behaviour, Param, parse_params

__all__ = [
    "CLIENT_BEHAVIOURS", "ClientActions", "ClientContext", "ClientFault", "ClientFaultSpec",
    "make_client_fault", "parse_client_fault",
]

FAR_FUTURE_SEQ = 1 << 40
"""Where a flood's far-future seqs start."""


def _p(name: str, kind: type[float] | type[int], default: float | int, help: str) -> Param:
    return Param(name, kind, default, help)


_ROUNDS = _p("rounds", int, 30, "rounds it acts in")
_EVERY = _p("every", float, 0.02, "virtual seconds between rounds")
_K = _p("k", int, 3, "frames of each kind per round")

CLIENT_BEHAVIOURS: Mapping[str, Behaviour] = {b.name: b for b in (
    Behaviour("equivocate", True, "two payloads under one (session, seq), to two members",
              (_ROUNDS, _EVERY)),
    Behaviour("replay", True, "re-sends honest clients' request frames (those with "
              "receipts) later, to other members", (_ROUNDS, _EVERY, _K)),
    Behaviour("flood", True, "requests beyond its session's window and at far-future seqs",
              (_ROUNDS, _EVERY, _K)),
    Behaviour("garbage", True, "malformed frames, wrong signatures (its own key or an honest "
              "client's) and a key the cluster does not admit", (_ROUNDS, _EVERY, _K)),
)}
"""Every behaviour ``--client-fault`` accepts, by name."""


@attrs.frozen
class ClientFaultSpec:
    """A behaviour given to simulated client ``client``, with its parameters resolved."""

    client: int
    behaviour: str
    params: Mapping[str, float | int | str]

    def __str__(self) -> str:
        defaults = {p.name: p.default for p in CLIENT_BEHAVIOURS[self.behaviour].params}
        args = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in sorted(self.params.items()) if v != defaults.get(k))
        return f"{self.client}={self.behaviour}" + (f":{args}" if args else "")


def parse_client_fault(text: str, clients: int) -> ClientFaultSpec:
    """Parse ``J=BEHAVIOUR[:key=value,...]`` for a run of ``clients`` clients; a
    :class:`ConfigError` naming the text for any mistake."""
    head, sep, rest = text.partition("=")
    if not sep or not head.strip().isdigit():
        raise ConfigError(f"client fault {text!r}: expected J=BEHAVIOUR[:key=value,...]")
    client = int(head)
    if not 0 <= client < clients:
        raise ConfigError(f"client fault {text!r}: client {client} is outside "
                          f"0..{clients - 1}")
    name, _, args = rest.partition(":")
    behaviour = CLIENT_BEHAVIOURS.get(name.strip())
    if behaviour is None:
        raise ConfigError(f"client fault {text!r}: unknown behaviour {name!r}; known: "
                          f"{', '.join(sorted(CLIENT_BEHAVIOURS))}")
    params = parse_params(f"client fault {text!r}", behaviour.name, behaviour.params, args)
    return ClientFaultSpec(client, behaviour.name, params)


@attrs.define
class ClientActions:
    """What a client does in answer to one event: frames for members and timers to set
    (``(at, token)``: the client's :meth:`ClientFault.on_timer` runs then with ``token``)."""

    sends: list[tuple[int, bytes]] = attrs.field(factory=list)
    timers: list[tuple[float, int]] = attrs.field(factory=list)


@attrs.frozen
class ClientContext:
    """What a Byzantine client may use: its key, the cluster's shape, a seeded random source,
    an outsider's key, the honest clients' keys and the request frames honest clients have
    receipts for so far."""

    client: int
    n: int
    window: int
    public_key: bytes
    sign: Callable[[str, bytes], bytes]
    rng: random.Random
    outsider_key: bytes
    outsider_sign: Callable[[str, bytes], bytes]
    honest_keys: Sequence[bytes]
    honest_frames: Callable[[], Sequence[bytes]]
    session: int = 1


@attrs.define
class ClientStats:
    """What a Byzantine client did and what it got back."""

    sent: int = 0
    notices: int = 0
    receipts: int = 0


class ClientFault:
    """Base Byzantine client: acts in rounds (:meth:`act`) and counts what it hears."""

    def __init__(self, spec: ClientFaultSpec, ctx: ClientContext) -> None:
        self.spec = spec
        self.ctx = ctx
        self.rounds_left = int(self.param("rounds"))
        self.stats = ClientStats()
        self.honest = False

    def param(self, name: str) -> float:
        """A numeric parameter (its default when the spec leaves it out)."""
        value = self.spec.params.get(name)
        if value is None:
            value = {p.name: p.default for p in CLIENT_BEHAVIOURS[self.spec.behaviour].params}[
                name]
        assert isinstance(value, (int, float))
        return float(value)

    @property
    def done(self) -> bool:
        """True once it acted all its rounds."""
        return self.rounds_left <= 0

    def start(self, now: float) -> ClientActions:
        """The first round."""
        return self.on_timer(0, now)

    def on_timer(self, token: int, now: float) -> ClientActions:
        """One round, and the timer of the next."""
        out = ClientActions()
        if self.done:
            return out
        self.rounds_left -= 1
        self.act(out)
        self.stats.sent += len(out.sends)
        if not self.done:
            out.timers.append((now + self.param("every"), 0))
        return out

    def on_frame(self, member: int, frame: bytes, now: float) -> ClientActions:
        """A member's RECEIPT or NOTICE: counted, never believed."""
        if _is_notice(frame):
            self.stats.notices += 1
        else:
            self.stats.receipts += 1
        return ClientActions()

    def act(self, out: ClientActions) -> None:
        """What one round sends."""

    def member(self) -> int:
        """A member at random."""
        return self.ctx.rng.randrange(self.ctx.n)

    def request(self, seq: int, payload: bytes, *, session: int | None = None) -> bytes:
        """A REQUEST frame of its own, validly signed."""
        ctx = self.ctx
        return sign_request(ClientRequest(ctx.public_key, ctx.session if session is None
                                          else session, seq, payload), ctx.sign)

    def payload(self, seq: int, tag: bytes) -> bytes:
        """A payload for its ``seq``-th request (``tag`` tells two stories apart)."""
        return struct.pack(">IQ", self.ctx.client, seq) + tag + self.ctx.rng.randbytes(16)


def _is_notice(frame: bytes) -> bool:
    try:
        return isinstance(decode_client_frame(frame, frame_bytes_max=1 << 24), Notice)
    except WireError:
        return False


class Equivocate(ClientFault):
    """Each round, its next seq twice, with two payloads, to two members."""

    def __init__(self, spec: ClientFaultSpec, ctx: ClientContext) -> None:
        super().__init__(spec, ctx)
        self.next_seq = 0

    def act(self, out: ClientActions) -> None:
        seq, self.next_seq = self.next_seq, self.next_seq + 1
        first = self.member()
        second = (first + 1 + self.ctx.rng.randrange(max(self.ctx.n - 1, 1))) % self.ctx.n
        out.sends.append((first, self.request(seq, self.payload(seq, b"one"))))
        out.sends.append((second, self.request(seq, self.payload(seq, b"two"))))


class Replay(ClientFault):
    """Each round, up to ``k`` honest request frames it has not replayed yet (or, when it
    has replayed them all, old ones again), each to a member at random."""

    def __init__(self, spec: ClientFaultSpec, ctx: ClientContext) -> None:
        super().__init__(spec, ctx)
        self.replayed = 0

    def act(self, out: ClientActions) -> None:
        frames = self.ctx.honest_frames()
        if not frames:
            return
        for _ in range(int(self.param("k"))):
            if self.replayed < len(frames):
                frame = frames[self.replayed]
                self.replayed += 1
            else:
                frame = frames[self.ctx.rng.randrange(len(frames))]
            out.sends.append((self.member(), frame))


class Flood(ClientFault):
    """Each round, ``k`` requests beyond its window and ``k`` at far-future seqs, validly
    signed, to members at random (it never sends seq 0, so none of them is ever due)."""

    def act(self, out: ClientActions) -> None:
        rng, window = self.ctx.rng, self.ctx.window
        for _ in range(int(self.param("k"))):
            seq = window + rng.randrange(10 * window)
            out.sends.append((self.member(), self.request(seq, self.payload(seq, b"flood"))))
            far = FAR_FUTURE_SEQ + rng.randrange(1 << 20)
            out.sends.append((self.member(), self.request(far, self.payload(far, b"far"))))


class Garbage(ClientFault):
    """Each round, ``k`` frames of each kind: random bytes, a request cut short, a request
    whose signature is wrong (under its own key, or claiming an honest client's), and one
    signed by an outsider's key (not admitted when the cluster lists its keys)."""

    def __init__(self, spec: ClientFaultSpec, ctx: ClientContext) -> None:
        super().__init__(spec, ctx)
        self.next_seq = 0

    def act(self, out: ClientActions) -> None:
        ctx, rng = self.ctx, self.ctx.rng
        for _ in range(int(self.param("k"))):
            seq, self.next_seq = self.next_seq, self.next_seq + 1
            out.sends.append((self.member(), rng.randbytes(rng.randrange(1, 200))))
            good = self.request(seq, self.payload(seq, b"cut"))
            out.sends.append((self.member(), good[:rng.randrange(1, len(good))]))
            victim = ctx.honest_keys[rng.randrange(len(ctx.honest_keys))] \
                if ctx.honest_keys and rng.random() < 0.5 else ctx.public_key
            claimed = ClientRequest(victim, ctx.session, seq, self.payload(seq, b"claim"))
            out.sends.append((self.member(), sign_request(
                claimed, lambda kind, body: _flipped(ctx.sign(kind, body), rng))))
            outsider = ClientRequest(ctx.outsider_key, ctx.session, seq,
                                     self.payload(seq, b"outsider"))
            out.sends.append((self.member(), sign_request(outsider, ctx.outsider_sign)))


def _flipped(signature: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(signature))
    return signature[:at] + bytes([signature[at] ^ rng.randrange(1, 256)]) + signature[at + 1:]


_CLASSES: dict[str, type[ClientFault]] = {
    "equivocate": Equivocate, "replay": Replay, "flood": Flood, "garbage": Garbage,
}


def make_client_fault(spec: ClientFaultSpec, ctx: ClientContext) -> ClientFault:
    """The Byzantine client of ``spec``."""
    return _CLASSES[spec.behaviour](spec, ctx)
