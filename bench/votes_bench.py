"""All-to-all against linear vote collection, in the simulator (``btob bench votes``).

For n = 4, 7, 10, 16, both reliable broadcasts and both vote modes (``Settings.votes``), one
fault-free BB run with the same workload: messages and bytes per payload, virtual latency
from submission to delivery (p50, p99), and how the busiest member's sends compare with the
average (under linear votes the collector, the sequencer, does more than the others). The
last column is all-to-all's messages per payload over this row's, for the same n and BRB.
"""

from __future__ import annotations

import argparse
import statistics

from btob import Settings, SimConfig, simulate
from btob.core.dissemination import BRB_KINDS
from btob.core.settings import VOTE_MODES

SIZES = (4, 7, 10, 16)


def measure(n: int, brb: str, votes: str, messages: int, rate: float,
            variant: str = "bb") -> dict[str, float]:
    """One run's figures (it must pass the checker and complete)."""
    result = simulate(SimConfig(n=n, seed=1, messages=messages, rate=rate, variant=variant,
                                brb=brb, settings=Settings(votes=votes)))
    assert result.ok and result.complete, (n, brb, votes)
    sent = [s.messages_sent for s in result.statistics]
    latencies = sorted(result.latencies)
    return {
        "msgs_per_payload": sum(sent) / messages,
        "bytes_per_payload": sum(s.bytes_sent for s in result.statistics) / messages,
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "busiest_msgs": max(sent) / statistics.mean(sent),
        "view_changes": float(len(result.view_changes)),
    }


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``btob bench votes``."""
    parser = argparse.ArgumentParser(prog="btob bench votes", description=__doc__)
    parser.add_argument("--messages", type=int, default=300,
                        help="payloads of 100 B per simulated run (default %(default)s)")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="payloads per virtual second, cluster-wide (default %(default)s)")
    parser.add_argument("--variant", default="bb", help="sequencer variant (default bb)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print the table (markdown); returns the exit status."""
    args = build_parser().parse_args(argv)
    print(f"{args.variant}, {args.messages} payloads of 100 B at {args.rate:g}/s, fault-free, "
          f"links 1-5 ms")
    print()
    print("| n | brb | votes | msgs/payload | bytes/payload | latency p50 ms | p99 ms | "
          "busiest/avg msgs | all/this msgs |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        for brb in BRB_KINDS:
            rows = {votes: measure(n, brb, votes, args.messages, args.rate, args.variant)
                    for votes in VOTE_MODES}
            for votes, m in rows.items():
                ratio = rows["all"]["msgs_per_payload"] / m["msgs_per_payload"]
                print(f"| {n} | {brb} | {votes} | {m['msgs_per_payload']:.1f} | "
                      f"{m['bytes_per_payload']:,.0f} | {m['latency_p50_ms']:.1f} | "
                      f"{m['latency_p99_ms']:.1f} | {m['busiest_msgs']:.2f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
