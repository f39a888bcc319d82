"""What each sequencer variant costs, in the simulator (``python -m btob.bench.variants_bench``).

For BB, UB, UUB and the moving sequencer at n = 4, 7, 10, one fault-free run with the same
workload: simulated throughput (deliveries at all members per CPU-second of this process),
virtual latency from submission to delivery (p50, p99), messages and bytes per payload, and
how the busiest member's work (messages sent, signatures verified) compares with the average.
"""

from __future__ import annotations

import argparse
import statistics
import time

from btob import SimConfig, simulate
from btob.core.settings import VOTE_MODES
from btob.core.variants import VARIANTS

SIZES = (4, 7, 10)


def measure(variant: str, n: int, messages: int, rate: float,
            votes: str = "all") -> dict[str, float]:
    """One run's figures."""
    start = time.process_time()
    result = simulate(SimConfig(n=n, seed=1, messages=messages, rate=rate, variant=variant,
                                votes=votes))
    cpu = time.process_time() - start
    assert result.ok and result.complete, (variant, n)
    stats = result.statistics
    sent = [s.messages_sent for s in stats]
    verified = [s.signatures_verified for s in stats]
    latencies = sorted(result.latencies)
    return {
        "deliveries_per_cpu_s": sum(s.deliveries for s in stats) / cpu,
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "msgs_per_payload": sum(sent) / messages,
        "bytes_per_payload": sum(s.bytes_sent for s in stats) / messages,
        "busiest_msgs": max(sent) / statistics.mean(sent),
        "busiest_verifies": max(verified) / statistics.mean(verified),
    }


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m btob.bench.variants_bench`` (``btob bench variants``)."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.variants_bench",
                                     description=__doc__)
    parser.add_argument("--messages", type=int, default=600,
                        help="payloads of 100 B per simulated run (default %(default)s)")
    parser.add_argument("--rate", type=float, default=600.0,
                        help="payloads per virtual second, cluster-wide (default %(default)s)")
    parser.add_argument("--votes", default="all", choices=VOTE_MODES,
                        help="how ordering votes travel in every run: all (to every member) "
                             "or linear (to the slot's proposer, which forwards certificates); "
                             "default %(default)s")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Print the table (markdown); returns the exit status."""
    args = build_parser().parse_args(argv)
    print(f"{args.messages} payloads of 100 B at {args.rate:g}/s, fault-free, links 1-5 ms, "
          f"votes {args.votes}")
    print()
    print("| variant | n | deliveries/CPU-s | latency p50 ms | p99 ms | msgs/payload | "
          "bytes/payload | busiest/avg msgs | busiest/avg verifies |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in SIZES:
        for variant in VARIANTS:
            m = measure(variant, n, args.messages, args.rate, args.votes)
            print(f"| {variant} | {n} | {m['deliveries_per_cpu_s']:,.0f} | "
                  f"{m['latency_p50_ms']:.1f} | {m['latency_p99_ms']:.1f} | "
                  f"{m['msgs_per_payload']:.1f} | {m['bytes_per_payload']:,.0f} | "
                  f"{m['busiest_msgs']:.2f} | {m['busiest_verifies']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
