"""The benchmarks, one system (docs/BENCHMARKS.md has the map of its modules).

``pytest bench/``: the suite (test_*.py; conftest, measure, graphs, baselines); ``python -m
bench.report``: every table (+ plot: the one figure); ``python3 -m bench.device_run``: the GPU
run (the suite's SpMM and NGCF layer on CUDA, epochs, a learning curve); ``python -m
bench.cpu_targets``. Their own tests: tests/bench/. The static kernel report and one-off
investigations are not benchmarks: tools/ (outside bench/).
"""
