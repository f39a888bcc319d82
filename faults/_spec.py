"""Fault specifications: ``ID=BEHAVIOUR[:key=value,...]`` parsed into checked values."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from btob._errors import ConfigError

__all__ = ["BEHAVIOURS", "Behaviour", "FaultSpec", "Param", "parse_fault", "parse_params"]


@attrs.frozen
class Param:
    """One parameter of a behaviour: its name, type, default (None: required) and meaning."""

    name: str
    kind: type[float] | type[int] | type[str]
    default: float | int | str | None
    help: str


@attrs.frozen
class Behaviour:
    """A named fault behaviour: whether it makes its member Byzantine, and its parameters."""

    name: str
    byzantine: bool
    summary: str
    params: tuple[Param, ...]
    swarm: bool = True
    """Whether the swarm mode may draw it (off for behaviours that need a specific role)."""


def _p(name: str, kind: type[float] | type[int] | type[str], default: float | int | str,
       help: str) -> Param:
    return Param(name, kind, default, help)


_AT = _p("at", float, 0.0, "virtual time (seconds) at which it starts")
_P = _p("p", float, 1.0, "probability of acting on each occasion")
_K = _p("k", int, 3, "messages injected per tick")

BEHAVIOURS: Mapping[str, Behaviour] = {b.name: b for b in (
    # -- process faults: a member that stops, pauses, slows or loses messages ----------------
    Behaviour("crash", False, "stops for good (at a time, after k sends, or at a protocol step)",
              (_AT, _p("after", int, 0, "crash once it has sent this many frames (0: off)"),
               _p("step", str, "", "crash when about to send this kind, e.g. vc.viewchange"))),
    Behaviour("pause", False, "stops processing for a while, then resumes with its queue",
              (_AT, _p("for", float, 1.0, "seconds paused"))),
    Behaviour("slow", False, "takes this long to process every event (a slow CPU)",
              (_p("delay", float, 0.002, "seconds per event; a member slower than the "
                  "messages it receives falls behind for good"),)),
    Behaviour("omission", True, "drops messages it should send and/or receive (faulty: not "
              "judged as honest)",
              (_p("p", float, 0.3, "probability of dropping each message"),
               _p("dir", str, "both", "send, recv or both"),
               _p("to", str, "all", "peers affected, e.g. 1+2, or all"),
               _p("kinds", str, "", "kind prefix affected, e.g. ord or brb.send; empty: all"))),
    # -- Byzantine: validly signed lies with the member's real key --------------------------
    Behaviour("silent", True, "connected and receiving, but it never sends a message", ()),
    Behaviour("equivocate", True, "as BRB origin, different batches to different members "
              "(under the signed-echo BRB each half also gets a FINAL of its own ECHOs, short "
              "of q); as sequencer, different ORDERs for one slot", (_P,)),
    Behaviour("vote-equivocate", True, "conflicting ECHO/READY votes to different members", (_P,)),
    Behaviour("forge", True, "bad signatures, and messages claiming another member's identity",
              (_K,)),
    Behaviour("replay", True, "resends old messages, and messages signed for another cluster",
              (_K,)),
    Behaviour("garbage", True, "malformed, truncated and oversized frames", (_K,)),
    Behaviour("mutate", True, "ByzzFuzz small-scope mutation: +-1 on view, slot or counter, an "
              "earlier payload swapped in, re-signed; from `at`, for `for` seconds (a round)",
              (_p("p", float, 0.3, "probability per message"), _AT,
               _p("for", float, 0.0, "seconds it lasts (0: to the end)"))),
    Behaviour("censor", True, "as sequencer, never orders the chosen origin's batches",
              (_p("origin", int, 1, "the origin censored"),)),
    Behaviour("double-book", True, "as sequencer, names each ORDER's batches again in its next "
              "ORDER (one batch in two slots in flight)", (_P,)),
    Behaviour("stall", True, "as sequencer, holds every ORDER just under the view-change timeout "
              "(Aardvark's slow primary)",
              (_p("fraction", float, 0.9, "share of the base timeout each ORDER waits"),)),
    Behaviour("flood", True, "valid-looking messages for far-future slots and views, and "
              "oversized batches", (_K,)),
    Behaviour("out-of-bounds", True, "validly signed messages that each break one structural "
              "rule: a non-member origin, a SEND beyond the window, kinds the dissemination "
              "does not take, an ORDER naming one batch twice, a body that does not decode as its "
              "kind", (_K,)),
    Behaviour("bad-viewchange", True, "validly signed VIEW-CHANGEs and NEW-VIEWs built from "
              "parts that do not hold: a junk prepared certificate, no VIEW-CHANGEs, a view "
              "beyond the window", (_K,)),
    Behaviour("bad-catchup", True, "validly signed catch-up answers that are wrong: slot "
              "proofs with repeated or unnamed batches or a junk certificate, segments off "
              "the boundaries, whose chain does not hold or that nobody needs yet", (_K,)),
    Behaviour("bad-transfer", True, "validly signed state-transfer traffic out of place: "
              "chunks nobody asked for, requests for snapshots not held or beyond the serving "
              "budget, offers nobody needs or under a junk certificate, chunks sent twice or "
              "miscounted", (_K,)),
    Behaviour("bad-checkpoint", True, "validly signed CHECKPOINTs at the real boundaries "
              "with a wrong chain digest and/or state root, in place of its real ones",
              (_p("lie", str, "any", "digest, state, both, or any (one of them per "
                  "boundary)"),
               _p("to", str, "all", "peers lied to, e.g. 1+2, or all (the others get the "
                  "real vote)"))),
    Behaviour("lie-viewchange", True, "VIEW-CHANGEs that omit its prepared certificates, "
              "NEW-VIEWs that drop prepared slots", ()),
    Behaviour("usurp", True, "proposes slots that are other members' (ahead of them, in "
              "the current view and the coming one), each naming a batch that never exists; "
              "none in its own turns", ()),
    Behaviour("view-push", True, "valid VIEW-CHANGEs, one after another, for the views it "
              "leads (and never their NEW-VIEW), to pull members out of working views", ()),
    Behaviour("withhold-certs", True, "as collector (linear votes), forwards its prepared and "
              "commit certificates to the members `to` names only",
              (_p("to", str, "", "peers that still get them, e.g. 1+2; empty: none"),)),
    Behaviour("bad-certs", True, "validly signed collector certificates that do not hold: "
              "short, of another value, a voter repeated, a batch named twice, a junk vote",
              (_K,)),
    Behaviour("twins", True, "two instances share its key, each talking to half the members",
              (), swarm=False),
    Behaviour("drop-forwards", True, "UB sequencer: ignores the batches members hand to it",
              ()),
    Behaviour("skip-turn", True, "moving sequencer: never proposes in its turns", ()),
    Behaviour("double-grant", True, "UUB sequencer: grants each slot a second time, to the "
              "origin of the previous grant", ()),
    Behaviour("hoard-grants", True, "UUB origin: asks for slots and never uses its grants", ()),
    # -- state transfer: a server of snapshot chunks that lies or keeps quiet -----------------
    Behaviour("bad-chunks", True, "serves snapshot chunks whose data (or proof, or root) is "
              "corrupted, validly re-signed", (_p("p", float, 1.0, "probability per chunk"),)),
    Behaviour("stale-snapshot", True, "serves chunks of an older snapshot it kept (its first "
              "one, relabelled with another checkpoint)",
              (_p("p", float, 1.0, "probability per chunk"),)),
    Behaviour("silent-transfer", True, "never answers a chunk request (drops every outgoing "
              "ctl.chunk)", ()),
    # -- toward clients: members that fail the clients that ask them ------------------------
    # (not drawn by swarms: without clients in the run they do nothing)
    Behaviour("drop-requests", True, "takes no client request (so relays none) and sends "
              "clients no receipt or notice", (), swarm=False),
    Behaviour("forge-receipts", True, "sends clients receipts that prove nothing in place of "
              "the real ones: a broken commit vote, audit path or slot, or another request's "
              "receipt", (_P,), swarm=False),
    Behaviour("withhold-receipts", True, "takes and relays client requests but never sends "
              "their receipts", (_P,), swarm=False),
)}
"""Every behaviour ``--fault`` accepts, by name."""


@attrs.frozen
class FaultSpec:
    """A behaviour injected into one member, with its parameters resolved."""

    member: int
    behaviour: str
    params: Mapping[str, float | int | str]

    @property
    def byzantine(self) -> bool:
        """True if the behaviour departs from the protocol (the member is not honest)."""
        known = BEHAVIOURS.get(self.behaviour)
        return True if known is None else known.byzantine  # else: a coalition's member

    def __str__(self) -> str:
        args = ",".join(
            f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
            for k, v in sorted(self.params.items())
            if v != _defaults(self.behaviour).get(k)
        )
        return f"{self.member}={self.behaviour}" + (f":{args}" if args else "")


def _defaults(behaviour: str) -> dict[str, float | int | str | None]:
    known = BEHAVIOURS.get(behaviour)
    return {} if known is None else {p.name: p.default for p in known.params}


def parse_params(where: str, name: str, params: tuple[Param, ...],
                 args: str) -> dict[str, float | int | str]:
    """``key=value,...`` for a behaviour or strategy ``name`` taking ``params``, each value
    of its parameter's type and >= 0, the missing ones at their defaults; a
    :class:`ConfigError` starting with ``where`` for any mistake."""
    known = {p.name: p for p in params}
    parsed_params: dict[str, float | int | str] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        param = known.get(key)
        if not eq or param is None:
            raise ConfigError(
                f"{where}: bad parameter {item!r}; {name} takes {', '.join(known) or 'none'}"
            )
        try:
            parsed = param.kind(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a {param.kind.__name__}") from None
        if isinstance(parsed, (int, float)) and not parsed >= 0:
            raise ConfigError(f"{where}: {key} must be >= 0")
        parsed_params[key] = parsed
    for param in params:
        if param.name not in parsed_params:
            if param.default is None:
                raise ConfigError(f"{where}: missing parameter {param.name}")
            parsed_params[param.name] = param.default
    return parsed_params


def parse_fault(text: str, n: int) -> FaultSpec:
    """Parse ``ID=BEHAVIOUR[:key=value,...]`` for a cluster of ``n`` members.

    Raises :class:`ConfigError` with the offending text for any mistake.
    """
    member_text, sep, rest = text.partition("=")
    if not sep or not member_text.strip().isdigit():
        raise ConfigError(f"fault {text!r}: expected ID=BEHAVIOUR[:key=value,...]")
    member = int(member_text)
    if not 0 <= member < n:
        raise ConfigError(f"fault {text!r}: member {member} is outside 0..{n - 1}")
    name, _, args = rest.partition(":")
    behaviour = BEHAVIOURS.get(name.strip())
    if behaviour is None:
        raise ConfigError(
            f"fault {text!r}: unknown behaviour {name!r}; known: {', '.join(sorted(BEHAVIOURS))}"
        )
    params = parse_params(f"fault {text!r}", behaviour.name, behaviour.params, args)
    return FaultSpec(member, behaviour.name, params)
