"""The benchmarks (docs/BENCHMARKS.md): one system, run as ``pytest bench/`` or ``python -m bench.*``.

Helpers: settings (sizes and knobs from the environment), graphs (every graph, from
``gnn.load_dataset`` + ``gnn.build_adjacency`` or the power-law generator in powerlaw), baselines
(the providers: ours, torch.sparse, dense, gather-scatter, scipy), measure (timing, CUDA peak
memory, CPU peak RSS). Runs: the pytest suite (test_*.py), kernels, epochs (with pyg_lightgcn),
memory_profile, cpu_targets, parse_speed; device_run (+ stages, tiny_data) runs the GPU ones in
one command; report (+ report_plot, report_device) turns results into the docs' tables.
"""
