"""Systematic exploration: every small scenario of a bounded family, beside random seeds.

Theory of operation. Random mixes sample a huge space thinly; Twins (Diem) and ByzzFuzz
found real bugs by enumerating a *small* space completely: which member is faulty and how,
and how the network splits the members in each of a few rounds. :func:`explore_mixes` lists
that family for a cluster of ``n`` members as ordinary :class:`~btob.faults.Mix` values, so
the sweep runs, judges and shrinks them like any mix:

* the faulty member: each member in turn (the first sequencer is member 0, the leaders of
  later views follow it, so the place of the fault in the proposer schedule varies too);
* its behaviour: one of :data:`BEHAVIOURS` - a twin (two honest cores with its key), an
  equivocating sequencer or origin, conflicting votes, ByzzFuzz small-scope mutations of
  every message it sends in one round, lying view changes, or a crash at the start of a
  round (the round is the first in which the network changes, or the first);
* the network, round by round: in each of ``rounds`` rounds of ``round_s`` virtual seconds,
  no partition, one member cut off, or (n = 4) one of the three splits into two pairs.
  After the last round the network is whole.

The family has ``n * len(BEHAVIOURS) * len(partitions) ** rounds`` scenarios (1,536 for
n = 4 and two rounds); mixes are named after the behaviour, so the sweep's table has one row
per behaviour.
"""

from __future__ import annotations

import itertools

from btob.faults._mix import Mix

__all__ = ["BEHAVIOURS", "EXPLORE", "explore_mixes", "partitions"]

EXPLORE = "explore"
"""The mix source that stands for the whole enumeration (``btob sweep --explore``)."""

BEHAVIOURS = ("twins", "equivocate:p=1", "vote-equivocate:p=1",
              "mutate:p=1,at={round},for={round_s}", "lie-viewchange", "crash:at={round}")
"""The faulty member's behaviours; ``{round}`` is the start of the round in which the
network changes (see :func:`explore_mixes`), ``{round_s}`` a round's length."""


def partitions(n: int) -> list[str]:
    """The network's states in one round, as ``--net partition`` groups ('' = whole)."""
    everyone = range(n)
    states = [""]
    states += ["|".join([str(i), "+".join(str(j) for j in everyone if j != i)])
               for i in everyone]
    if n == 4:
        states += ["0+1|2+3", "0+2|1+3", "0+3|1+2"]
    return states


def explore_mixes(n: int, *, rounds: int = 2, round_s: float = 0.03) -> list[Mix]:
    """Every scenario of the family (see the module docstring) for ``n`` members, in a fixed
    order: faulty member, then behaviour, then the partitions of each round."""
    if rounds < 1 or round_s <= 0:
        raise ValueError("need at least one round of positive length")
    states = partitions(n)
    mixes: list[Mix] = []
    for member in range(n):
        for behaviour in BEHAVIOURS:
            for layout in itertools.product(states, repeat=rounds):
                net = ",".join(
                    f"partition={r * round_s:g}-{(r + 1) * round_s:g}:{groups}"
                    for r, groups in enumerate(layout) if groups)
                # A crash takes the first round whose network state differs from the last
                # one's - each layout gives one crash time, and the family stays a product.
                changed = next((r for r in range(1, rounds) if layout[r] != layout[r - 1]), 0)
                fault = f"{member}=" + behaviour.format(round=f"{changed * round_s:g}",
                                                        round_s=f"{round_s:g}")
                mixes.append(Mix(f"explore {behaviour.split(':')[0]}", (fault,), net))
    return mixes
