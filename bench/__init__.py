"""btob benchmarks."""
