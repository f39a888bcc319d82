"""Which of an honest member's checks the fault behaviours exercise, measured by running them.

Theory of operation: each check counts the inputs it refuses under its reason
(:data:`btob.core.checks.CHECKS`). For every variant and reliable broadcast, one fault-free
simulation says which checks fire without any fault (late votes, stale checkpoints: the
protocol's own redundancy); then each behaviour of the catalogue runs at the sequencer
(member 0) and at another member (member 1), and a check that honest members counted there,
and not in the fault-free run of the same configuration, is exercised by that behaviour. The
measure is empirical: a behaviour covers a check only if it actually made an honest member
refuse something under it, not because it was meant to.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from btob.core.checks import CHECKS
from btob.core.variants import BRB_KINDS, VARIANTS
from btob.faults import BEHAVIOURS, parse_fault
from btob.sim.simulator import SimConfig, SimResult, simulate

__all__ = ["CheckCoverage", "measure_coverage"]


@attrs.frozen
class CheckCoverage:
    """One check: what it refuses, the behaviours whose runs made an honest member refuse
    something under it, and whether fault-free runs do too."""

    check: str
    refuses: str
    behaviours: tuple[str, ...]
    without_faults: bool


def measure_coverage(*, variants: Sequence[str] = VARIANTS,
                     brbs: Sequence[str] = BRB_KINDS, placements: Sequence[int] = (0, 1),
                     seed: int = 1, messages: int = 40,
                     progress: Callable[[int, int], None] | None = None,
                     ) -> tuple[CheckCoverage, ...]:
    """Run the fault-free baseline and every behaviour at each placement, per variant and
    reliable broadcast (n=4, ``messages`` payloads, ``seed``), and say for every check of
    :data:`~btob.core.checks.CHECKS` which behaviours exercised it. ``progress(done, total)``
    is called after each run."""
    configs = [(v, b) for v in variants for b in brbs]
    total = len(configs) * (1 + len(BEHAVIOURS) * len(placements))
    done = 0
    by: dict[str, set[str]] = {check: set() for check in CHECKS}
    baseline_seen: set[str] = set()

    def honest_drops(faulty: int | None, result: SimResult) -> set[str]:
        return {reason for i, stats in enumerate(result.statistics)
                if i != faulty for reason, count in stats.dropped.items() if count}

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    for variant, brb in configs:
        base = SimConfig(n=4, seed=seed, messages=messages, variant=variant, brb=brb)
        clean = honest_drops(None, simulate(base))
        baseline_seen |= clean
        tick()
        for name in BEHAVIOURS:
            for member in placements:
                spec = parse_fault(f"{member}={name}", base.n)
                result = simulate(attrs.evolve(base, faults=(spec,)))
                for reason in honest_drops(member, result) - clean:
                    by.setdefault(reason, set()).add(name)
                tick()
    return tuple(CheckCoverage(check, CHECKS.get(check, "(not in the table of checks)"),
                               tuple(sorted(names)), check in baseline_seen)
                 for check, names in sorted(by.items()))
