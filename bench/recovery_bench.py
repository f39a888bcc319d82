"""Virtual recovery time after a sequencer crash, per cluster size.

Run with ``python -m btob.bench.recovery_bench [--seeds S]``. Each run crashes the first sequencer
at t=0.3 s while a workload of 100 payloads per second is under way, and measures the
virtual time from the crash to the first delivery in the new view (the simulator's
``ViewChangeRecord.recovery_s``). The view-change timeout in force is printed with it: most
of the recovery time is that timeout, which is the price of not suspecting a slow sequencer.
"""

from __future__ import annotations

import argparse
import statistics

from btob import Settings, SimConfig, simulate
from btob.faults import FaultSpec, parse_net

SIZES = (4, 7, 13)


def recovery_times(n: int, seeds: int, timeout_s: float) -> list[float]:
    """Recovery time of each seeded run for ``n`` members (runs that fail are errors)."""
    times = []
    for seed in range(seeds):
        config = SimConfig(
            n=n, seed=seed, messages=120, rate=100.0,
            faults=(FaultSpec(0, "crash", {"at": 0.3}),),
            net=parse_net("delay=0.001-0.02", n),
            settings=Settings(view_change_timeout_s=timeout_s),
        )
        result = simulate(config)
        assert result.ok and result.complete, f"n={n} seed={seed} failed"
        record = result.view_changes[0]
        assert record.recovery_s is not None
        times.append(record.recovery_s)
    return times


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m btob.bench.recovery_bench`` (``btob bench recovery``)."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.recovery_bench",
                                     description=__doc__)
    parser.add_argument("--seeds", type=int, default=10,
                        help="seeded runs per cluster size and timeout; the table shows their "
                             "mean, min and max (default %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print the recovery table; returns the exit status."""
    args = build_parser().parse_args(argv)
    print("sequencer crash at t=0.3 s, 100 payloads/s, latency 1-20 ms, seeds:", args.seeds)
    print(f"{'n':>3} {'timeout s':>9} {'mean s':>7} {'min s':>7} {'max s':>7}")
    for timeout in (1.0, 0.25):
        for n in SIZES:
            times = recovery_times(n, args.seeds, timeout)
            print(f"{n:>3} {timeout:>9.2f} {statistics.mean(times):>7.3f} {min(times):>7.3f} "
                  f"{max(times):>7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
