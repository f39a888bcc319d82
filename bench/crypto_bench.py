"""Micro-benchmark of the crypto layer: sign / verify per backend, and the Verifier cache.

Run with ``python -m btob.bench.crypto_bench [--iterations N]``. Prints the mean microseconds per
operation for a 100-byte and a 4 KiB message on each backend, the time ratio
cryptography / nacl (above 1 means OpenSSL is slower), and the cost of a `Verifier` cache hit
against a full verification.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from collections.abc import Callable

from btob.crypto import BACKEND_NAMES, KeyRegistry, Signer, SigningKey, Verifier, get_backend

MESSAGE_SIZES: tuple[tuple[str, int], ...] = (("100 B", 100), ("4 KiB", 4096))
CLUSTER_ID = b"bench"


def mean_microseconds(operation: Callable[[], object], iterations: int) -> float:
    """Mean wall time of ``operation`` in microseconds, after a short warm-up."""
    for _ in range(min(iterations, 50)):
        operation()
    start = time.perf_counter()
    for _ in range(iterations):
        operation()
    return (time.perf_counter() - start) / iterations * 1e6


def bench_backends(iterations: int) -> dict[tuple[str, str, str], float]:
    """{(backend, operation, size label): mean microseconds}."""
    seed = os.urandom(32)
    results: dict[tuple[str, str, str], float] = {}
    for name in BACKEND_NAMES:
        backend = get_backend(name)
        public_key = backend.public_key(seed)
        for label, size in MESSAGE_SIZES:
            message = os.urandom(size)
            signature = backend.sign(seed, message)
            if not backend.verify(public_key, message, signature):
                raise RuntimeError(f"{name}: self-check failed")
            results[name, "sign", label] = mean_microseconds(
                functools.partial(backend.sign, seed, message), iterations
            )
            results[name, "verify", label] = mean_microseconds(
                functools.partial(backend.verify, public_key, message, signature), iterations
            )
    return results


def bench_cache(iterations: int) -> dict[tuple[str, str], float]:
    """{(case, size label): mean microseconds} for Verifier.verify, default backend."""
    key = SigningKey.generate()
    signer = Signer(key, cluster_id=CLUSTER_ID)
    registry = KeyRegistry((signer.public_key,))
    results: dict[tuple[str, str], float] = {}
    for label, size in MESSAGE_SIZES:
        body = os.urandom(size)
        signature = signer.sign("bench", body)
        uncached = Verifier(registry, cluster_id=CLUSTER_ID, cache_entries_max=0)
        cached = Verifier(registry, cluster_id=CLUSTER_ID)
        if not (
            uncached.verify(0, "bench", body, signature)
            and cached.verify(0, "bench", body, signature)
        ):
            raise RuntimeError("Verifier self-check failed")
        # An equal but distinct body object, as a re-received message would be.
        presented = bytes(bytearray(body))
        results["full verify", label] = mean_microseconds(
            functools.partial(uncached.verify, 0, "bench", presented, signature), iterations
        )
        results["cache hit", label] = mean_microseconds(
            functools.partial(cached.verify, 0, "bench", presented, signature), iterations
        )
        if cached.statistics().verifications != 1:
            raise RuntimeError("cache hits reached the backend")
    return results


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m btob.bench.crypto_bench`` (``btob bench crypto``)."""
    parser = argparse.ArgumentParser(prog="python -m btob.bench.crypto_bench", description=__doc__)
    parser.add_argument(
        "--iterations",
        type=int,
        default=2000,
        help="operations timed per measurement (default 2000)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    iterations: int = args.iterations
    if iterations < 1:
        parser.error("--iterations must be at least 1")

    started = time.perf_counter()
    backends = bench_backends(iterations)
    cache = bench_cache(iterations)
    labels = [label for label, _ in MESSAGE_SIZES]

    print(f"Ed25519 backends, mean microseconds per operation ({iterations} iterations)")
    header = f"{'operation':<18}" + "".join(f"{name:>14}" for name in BACKEND_NAMES)
    print(header + f"{'crypto/nacl':>14}")
    for operation in ("sign", "verify"):
        for label in labels:
            times = [backends[name, operation, label] for name in BACKEND_NAMES]
            ratio = backends["cryptography", operation, label] / backends["nacl", operation, label]
            row = f"{operation + ' ' + label:<18}" + "".join(f"{t:>14.1f}" for t in times)
            print(row + f"{ratio:>13.2f}x")
    print()
    print("Verifier.verify (nacl), mean microseconds per call")
    print(f"{'body':<18}{'full verify':>14}{'cache hit':>14}{'speedup':>14}")
    for label in labels:
        full, hit = cache["full verify", label], cache["cache hit", label]
        print(f"{label:<18}{full:>14.1f}{hit:>14.2f}{full / hit:>13.0f}x")
    print()
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
