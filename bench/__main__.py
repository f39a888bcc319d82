"""``python -m bench``: the crypto micro-benchmark, then the simulator benchmark."""

from bench import crypto_bench, sim_bench

crypto_bench.main([])
print()
raise SystemExit(sim_bench.main([]))
