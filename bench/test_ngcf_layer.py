"""One NGCF layer, ``LeakyReLU((S + E) W1 + (S ⊙ E) W2 + b)`` with ``S = Â E`` (docs/DESIGN.md §2).

Two operations, each per size with the providers of bench/baselines.py side by side:
  ngcf_layer_fwd       forward under torch.no_grad() (inference / evaluation propagation)
  ngcf_layer_fwd_bwd   forward + backward to E, W1, W2, b under a fixed random upstream gradient
"""
from __future__ import annotations

import pytest
import torch

from bench import baselines
from bench.measure import base_info, not_run, run_benchmark
from bench.settings import embedding_dim, memory_budget

DTYPE = torch.float32


@pytest.fixture(scope="module")
def layer_inputs(adjacency, device):
    return (adjacency,) + baselines.ngcf_inputs(adjacency.n_nodes, embedding_dim(), device, DTYPE)


@pytest.fixture(scope="module")
def expected_output(layer_inputs):
    adj, e, w1, w2, b, _ = layer_inputs
    a = baselines.torch_csr(adj.to("cpu"), torch.float64)
    e, w1, w2, b = (t.double().cpu() for t in (e, w1, w2, b))
    return baselines.composed_layer(torch.sparse.mm(a, e), e, w1, w2, b)


@pytest.fixture(scope="module")
def expected_grads(layer_inputs):
    adj, e, w1, w2, b, grad = layer_inputs
    return baselines.reference_layer_grads(adj, (e, w1, w2, b), grad)


def make_layer(provider, adj, benchmark, info, device):
    """The provider's ``layer(e, w1, w2, b)``, filling ``info`` (skips a dense Â over budget)."""
    if provider == "dense":
        needs = baselines.dense_bytes(adj.n_nodes, DTYPE)
        info["repr_bytes"] = needs
        if needs > memory_budget(device):
            pytest.skip(not_run(info, needs, benchmark.name))
    layer, info["repr_bytes"], extra = baselines.ngcf_provider(provider, adj, DTYPE)
    info.update(extra)
    return layer


@pytest.mark.parametrize("provider", baselines.NGCF_PROVIDERS)
def test_ngcf_layer_fwd(benchmark, provider, size, layer_inputs, expected_output, device):
    adj, e, w1, w2, b, _ = layer_inputs
    info = base_info("ngcf_layer_fwd", provider, size, adj, e.shape[1], DTYPE, device)
    layer = make_layer(provider, adj, benchmark, info, device)

    def fn():
        with torch.no_grad():
            return layer(e, w1, w2, b)

    def check(z):
        torch.testing.assert_close(z.double().cpu(), expected_output, rtol=1e-4, atol=1e-4)

    run_benchmark(benchmark, fn, info, device=device, check=check)


@pytest.mark.parametrize("provider", baselines.NGCF_PROVIDERS)
def test_ngcf_layer_fwd_bwd(benchmark, provider, size, layer_inputs, expected_grads, device):
    adj, e0, w10, w20, b0, grad = layer_inputs
    info = base_info("ngcf_layer_fwd_bwd", provider, size, adj, e0.shape[1], DTYPE, device)
    layer = make_layer(provider, adj, benchmark, info, device)
    params = [t.clone().requires_grad_() for t in (e0, w10, w20, b0)]

    def fn():
        for p in params:
            p.grad = None
        layer(*params).backward(grad)

    def check(_):  # the gradients of the first (warm-up) call
        for p, g in zip(params, expected_grads):
            torch.testing.assert_close(p.grad.double().cpu(), g, rtol=1e-3, atol=1e-3)

    run_benchmark(benchmark, fn, info, device=device, check=check)
