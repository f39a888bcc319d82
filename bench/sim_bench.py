"""Simulated deliveries per CPU-second: how fast the pure protocol cores run.

Run with ``python -m btob.bench.sim_bench [--messages M] [--repeat R]``. For each configuration it
simulates one fault-free run and divides the deliveries made by all members by the process
CPU time the run took (``time.process_time``); it also prints messages, signatures made and
verified per delivered payload. The first row (n=4, Bracha) is the baseline the others are
compared with, measured in the same process.
"""

from __future__ import annotations

import argparse
import time

from btob import SimConfig, simulate
from btob.core.settings import VOTE_MODES

CONFIGS: tuple[tuple[int, str], ...] = ((4, "bracha"), (4, "echo"), (7, "bracha"), (10, "bracha"))


def measure(n: int, brb: str, messages: int, repeat: int,
            variant: str = "bb", votes: str = "all") -> dict[str, float]:
    """Best-of-``repeat`` CPU cost of one run, and its per-payload counters."""
    best = float("inf")
    result = None
    for _ in range(repeat):
        start = time.process_time()
        result = simulate(SimConfig(n=n, seed=1, messages=messages, brb=brb, rate=20_000.0,
                                    variant=variant, votes=votes))
        best = min(best, time.process_time() - start)
        assert result.ok and result.complete
    assert result is not None
    deliveries = sum(s.deliveries for s in result.statistics)
    return {
        "deliveries_per_cpu_s": deliveries / best,
        "cpu_s": best,
        "msgs_per_payload": result.messages_sent / messages,
        "sigs_per_payload": result.signatures_made / messages,
        "verifies_per_payload": result.signatures_verified / messages,
    }


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m btob.bench.sim_bench`` (``btob bench sim``)."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.sim_bench", description=__doc__)
    parser.add_argument("--messages", type=int, default=2000,
                        help="payloads of 100 B per simulated run (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per configuration; the fastest counts (default %(default)s)")
    parser.add_argument("--variant", default="bb", choices=("bb", "ub", "uub", "moving"),
                        help="sequencer variant of every run (default %(default)s)")
    parser.add_argument("--votes", default="all", choices=VOTE_MODES,
                        help="how ordering votes travel in every run: all (to every member) "
                             "or linear (to the slot's proposer, which forwards certificates); "
                             "default %(default)s")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print one table; returns the exit status."""
    args = build_parser().parse_args(argv)
    rows = [(n, brb, measure(n, brb, args.messages, args.repeat, args.variant, args.votes))
            for n, brb in CONFIGS]
    base = rows[0][2]["deliveries_per_cpu_s"]
    print(f"simulated runs, {args.messages} payloads of 100 B, fault-free, best of "
          f"{args.repeat}, variant {args.variant}, votes {args.votes}")
    print(f"{'n':>3} {'brb':<7} {'deliveries/cpu-s':>17} {'vs n=4':>7} {'cpu s':>7} "
          f"{'msgs/p':>7} {'sigs/p':>7} {'verif/p':>8}")
    for n, brb, m in rows:
        print(f"{n:>3} {brb:<7} {m['deliveries_per_cpu_s']:>17,.0f} "
              f"{m['deliveries_per_cpu_s'] / base:>6.2f}x {m['cpu_s']:>7.2f} "
              f"{m['msgs_per_payload']:>7.2f} {m['sigs_per_payload']:>7.2f} "
              f"{m['verifies_per_payload']:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
