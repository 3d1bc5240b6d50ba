"""The benchmarks, one system (docs/BENCHMARKS.md has the map of its modules).

``pytest bench/``: the suite (test_*.py; conftest, measure, graphs, baselines); ``python -m
bench.report``: every table (+ plot: the one figure); ``python3 -m bench.device_run``: the GPU
run (kernels, epochs); ``python -m bench.cpu_targets``; ``python -m bench.kernel_static``: the
static kernel report; bench/tools/: one-off profiling tools. Their own tests: tests/bench/.
"""
