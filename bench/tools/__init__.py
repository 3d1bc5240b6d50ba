"""Profiling tools for one-off investigations, apart from the benchmark suite (docs/BENCHMARKS.md):
step_profile (+ step_bytes: byte model and ceilings) and partition_report."""
