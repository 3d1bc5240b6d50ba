"""SpMM ``Y = Â·E`` (one propagation step), providers side by side per size (bench/baselines.py)."""
from __future__ import annotations

import pytest
import torch

from bench import baselines
from bench.measure import base_info, not_run, run_benchmark
from bench.settings import embedding_dim, memory_budget

DTYPE = torch.float32


@pytest.fixture(scope="module")
def inputs(adjacency, device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(adjacency.n_nodes, embedding_dim(), generator=gen).to(device, DTYPE)
    return adjacency, x


@pytest.fixture(scope="module")
def expected(inputs):
    """Â·E in float64 on the CPU (scipy), once per size."""
    adj, x = inputs
    return torch.from_numpy(adj.to("cpu").to_scipy() @ x.double().cpu().numpy())


@pytest.mark.parametrize("provider", baselines.SPMM_PROVIDERS)
def test_spmm(benchmark, provider, size, inputs, expected, device):
    adj, x = inputs
    n, d, elem = adj.n_nodes, x.shape[1], x.element_size()
    info = base_info("spmm", provider, size, adj, d, DTYPE, device)
    if provider == "scipy" and device.type != "cpu":
        pytest.skip("scipy runs on the CPU only")
    if provider == "dense":
        needs = baselines.dense_bytes(n, DTYPE)
        info["repr_bytes"] = needs
        if needs > memory_budget(device):
            pytest.skip(not_run(info, needs, benchmark.name))
    fn, info["repr_bytes"], extra = baselines.spmm_provider(provider, adj, x)
    info.update(extra)

    def check(y):  # every provider computes the same Y
        torch.testing.assert_close(y.double().cpu(), expected, rtol=1e-4, atol=1e-5)

    run_benchmark(benchmark, fn, info, device=device, check=check,
                  model_bytes=baselines.spmm_model_bytes(n, adj.nnz, d, elem))
