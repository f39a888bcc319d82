"""Benchmarks of btob: the matrix harness (``btob bench``) and its micro-benchmarks."""

MICRO_BENCHES = {"crypto": "crypto_bench", "sim": "sim_bench", "variants": "variants_bench",
                 "recovery": "recovery_bench", "tcp": "tcp_bench",
                 "durability": "durability_bench", "clients": "client_bench",
                 "votes": "votes_bench"}
"""``btob bench NAME ...`` runs the module ``bench.<MICRO_BENCHES[NAME]>`` instead of a matrix."""
