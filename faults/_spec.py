"""Fault specifications: ``ID=BEHAVIOUR[:key=value,...]`` parsed into checked values."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from crypto._errors import ConfigError

__all__ = ["BEHAVIOURS", "Behaviour", "FaultSpec", "Param", "parse_fault"]


@attrs.frozen
class Param:
    """One parameter of a behaviour: its name, type, default (None: required) and meaning."""

    name: str
    kind: type[float] | type[int]
    default: float | int | None
    help: str


@attrs.frozen
class Behaviour:
    """A named fault behaviour: whether it makes its member Byzantine, and its parameters."""

    name: str
    byzantine: bool
    summary: str
    params: tuple[Param, ...]


BEHAVIOURS: Mapping[str, Behaviour] = {
    "crash": Behaviour(
        "crash",
        byzantine=False,
        summary="the member stops for good: it sends, receives and delivers nothing more",
        params=(Param("at", float, 0.0, "virtual time (seconds) at which it stops"),),
    ),
    "silent": Behaviour(
        "silent",
        byzantine=True,
        summary="connected and receiving, but it never sends a message",
        params=(),
    ),
}
"""Every behaviour ``--fault`` accepts, by name."""


@attrs.frozen
class FaultSpec:
    """A behaviour injected into one member, with its parameters resolved."""

    member: int
    behaviour: str
    params: Mapping[str, float | int]

    @property
    def byzantine(self) -> bool:
        """True if the behaviour departs from the protocol (the member is not honest)."""
        return BEHAVIOURS[self.behaviour].byzantine

    def __str__(self) -> str:
        args = ",".join(f"{k}={v:g}" for k, v in sorted(self.params.items()))
        return f"{self.member}={self.behaviour}" + (f":{args}" if args else "")


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
    known = {p.name: p for p in behaviour.params}
    params: dict[str, float | int] = {}
    for item in filter(None, (a.strip() for a in args.split(","))):
        key, eq, value = item.partition("=")
        param = known.get(key)
        if not eq or param is None:
            raise ConfigError(
                f"fault {text!r}: bad parameter {item!r}; {behaviour.name} takes "
                f"{', '.join(known) or 'none'}"
            )
        try:
            parsed = param.kind(value)
        except ValueError:
            raise ConfigError(f"fault {text!r}: {key} must be a {param.kind.__name__}") from None
        if parsed < 0:
            raise ConfigError(f"fault {text!r}: {key} must be >= 0")
        params[key] = parsed
    for param in behaviour.params:
        if param.name not in params:
            if param.default is None:
                raise ConfigError(f"fault {text!r}: missing parameter {param.name}")
            params[param.name] = param.default
    return FaultSpec(member, behaviour.name, params)
