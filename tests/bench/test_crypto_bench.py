"""The crypto micro-benchmark, with tiny numbers: every backend and case is measured."""

from __future__ import annotations

import pytest

from btob.bench import crypto_bench
from btob.crypto import BACKEND_NAMES


def test_mean_microseconds_times_the_operation_after_a_warm_up() -> None:
    calls = []
    mean = crypto_bench.mean_microseconds(lambda: calls.append(1), 7)
    assert len(calls) == 7 + 7  # a warm-up of up to 50 calls, then the timed ones
    assert mean >= 0
    calls.clear()
    crypto_bench.mean_microseconds(lambda: calls.append(1), 60)
    assert len(calls) == 50 + 60


def test_every_backend_operation_and_size_is_measured() -> None:
    labels = [label for label, _ in crypto_bench.MESSAGE_SIZES]
    backends = crypto_bench.bench_backends(2)
    assert set(backends) == {(b, op, label) for b in BACKEND_NAMES
                             for op in ("sign", "verify") for label in labels}
    assert all(t > 0 for t in backends.values())
    cache = crypto_bench.bench_cache(2)
    assert set(cache) == {(case, label) for case in ("full verify", "cache hit")
                          for label in labels}


def test_the_benchmark_prints_its_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert crypto_bench.main(["--iterations", "2"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in BACKEND_NAMES)
    assert "verify 4 KiB" in out and "cache hit" in out and "speedup" in out


def test_at_least_one_iteration_is_needed() -> None:
    with pytest.raises(SystemExit) as exc:
        crypto_bench.main(["--iterations", "0"])
    assert exc.value.code == 2
