"""Benchmark suite (pytest-benchmark) and the power-law graph generator; see docs/BENCHMARKS.md."""
