"""Which of an honest member's checks the fault behaviours exercise, measured by running them.

Theory of operation: each check counts the inputs it refuses under its reason
(:data:`btob.core.checks.CHECKS`). For every variant and reliable broadcast, one fault-free
simulation says which checks fire without any fault (late votes, stale checkpoints: the
protocol's own redundancy); then each behaviour of the catalogue runs at the sequencer
(member 0) and at another member (member 1), and a check that honest members counted there,
and not in the fault-free run of the same configuration, is exercised by that behaviour. The
measure is empirical: a behaviour covers a check only if it actually made an honest member
refuse something under it, not because it was meant to.

Some checks only fire while a member catches up by state transfer, which a short fault-free
run never needs. So for the first variant, with each reliable broadcast, a second scenario
has a laggard: an honest member that crashes early and stays down while its peers compact
their log past it (:data:`LAGGARD_SETTINGS` keep a few slots only), so it comes back by
fetching a snapshot in chunks. Its fault-free run is a baseline of its own, and the
behaviours that act on state transfer (:data:`LAGGARD_BEHAVIOURS`) run against it too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from btob.core.checks import CHECKS
from btob.core.settings import Settings
from btob.core.variants import BRB_KINDS, VARIANTS
from btob.faults import BEHAVIOURS, parse_fault
from btob.sim.simulator import Restart, SimConfig, SimResult, simulate

__all__ = ["LAGGARD_BEHAVIOURS", "LAGGARD_SETTINGS", "CheckCoverage", "measure_coverage"]

LAGGARD_BEHAVIOURS = ("bad-chunks", "bad-transfer", "silent-transfer", "stale-snapshot")
"""The behaviours that act on state transfer, run against the laggard as well."""

LAGGARD_SETTINGS = Settings(checkpoint_interval=4, log_retention_slots=8, slot_window=8,
                            catchup_slots_max=8, snapshot_chunk_bytes=16,
                            transfer_serve_bytes_per_s=4096)
"""Peers keep 8 slots, so a member down for a tenth of a second comes back by state transfer,
of a snapshot in 16-byte chunks (every peer serves some); each peer serves 256 chunks a
second, ample for an honest fetcher and too few for a burst of requests."""

_LAGGARD_MESSAGES, _LAGGARD_RATE = 50, 1000.0


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
    lagging = [(v, b) for v, b in configs if v == variants[0]]
    total = len(configs) * (1 + len(BEHAVIOURS) * len(placements)) + \
        len(lagging) * (1 + len(LAGGARD_BEHAVIOURS) * len(placements))
    # The laggard is honest, so it is a member no behaviour is placed at.
    laggard = max(m for m in range(4) if m not in placements)
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

    def scenario(base: SimConfig, names: Sequence[str]) -> None:
        nonlocal baseline_seen
        clean = honest_drops(None, simulate(base))
        baseline_seen |= clean
        tick()
        for name in names:
            for member in placements:
                spec = parse_fault(f"{member}={name}", base.n)
                result = simulate(attrs.evolve(base, faults=(spec,)))
                for reason in honest_drops(member, result) - clean:
                    by.setdefault(reason, set()).add(name)
                tick()

    for variant, brb in configs:
        base = SimConfig(n=4, seed=seed, messages=messages, variant=variant, brb=brb)
        scenario(base, list(BEHAVIOURS))
        if (variant, brb) in lagging:
            # Down from its 20th input for 0.1 s: long enough for its peers to compact past it.
            scenario(attrs.evolve(base, messages=_LAGGARD_MESSAGES, rate=_LAGGARD_RATE,
                                  settings=LAGGARD_SETTINGS,
                                  restarts=(Restart(laggard, 20, 0.1, committed=True),)),
                     LAGGARD_BEHAVIOURS)
    return tuple(CheckCoverage(check, CHECKS.get(check, "(not in the table of checks)"),
                               tuple(sorted(names)), check in baseline_seen)
                 for check, names in sorted(by.items()))
