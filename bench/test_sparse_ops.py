"""SpMM ``Y = Â·E`` and one NGCF layer, providers side by side per size (bench/baselines.py).

  spmm                 every SpMM provider, checked against scipy in float64
  ngcf_layer_fwd       the layer under torch.no_grad() (inference / evaluation propagation)
  ngcf_layer_fwd_bwd   forward + backward to E, W1, W2, b under a fixed random upstream gradient
"""
from __future__ import annotations

import pytest
import torch

from bench import baselines
from bench.measure import DIM, base_info, memory_budget, not_run, run_benchmark

DTYPE = torch.float32


def within_budget(info, adj, benchmark, device) -> None:
    """Skip (and record as OOM) a dense provider whose Â would not fit."""
    if info["provider"] == "dense":
        info["repr_bytes"] = needs = baselines.dense_bytes(adj.n_nodes, DTYPE)
        if needs > memory_budget(device):
            pytest.skip(not_run(info, needs, benchmark.name))


@pytest.fixture(scope="module")
def inputs(adjacency, device):
    """``(adj, e, w1, w2, b, grad)`` with E as the SpMM's x too."""
    return (adjacency,) + baselines.ngcf_inputs(adjacency.n_nodes, DIM, device, DTYPE)


@pytest.fixture(scope="module")
def reference(inputs):
    """``[de, dw1, dw2, db, out]`` of the layer in float64 on the CPU, once per size."""
    return baselines.reference_layer(inputs[0], inputs[1:5], inputs[5])


@pytest.fixture(scope="module")
def spmm_reference(inputs):
    return torch.from_numpy(inputs[0].to("cpu").to_scipy() @ inputs[1].double().cpu().numpy())


@pytest.mark.parametrize("provider", baselines.SPMM_PROVIDERS)
def test_spmm(benchmark, provider, size, inputs, spmm_reference, device):
    adj, x = inputs[0], inputs[1]
    info = base_info("spmm", provider, size, adj, x.shape[1], DTYPE, device)
    if provider == "scipy" and device.type != "cpu":
        pytest.skip("scipy runs on the CPU only")
    within_budget(info, adj, benchmark, device)
    fn, info["repr_bytes"], extra = baselines.spmm_provider(provider, adj, x)
    model_bytes = baselines.spmm_model_bytes(adj.n_nodes, adj.nnz, x.shape[1], x.element_size())

    def check(y):  # every provider computes the same Y
        torch.testing.assert_close(y.double().cpu(), spmm_reference, rtol=1e-4, atol=1e-5)

    run_benchmark(benchmark, fn, dict(info, **extra), device=device, model_bytes=model_bytes,
                  check=check)


def make_layer(op, provider, size, inputs, benchmark, device):
    adj = inputs[0]
    info = base_info(op, provider, size, adj, inputs[1].shape[1], DTYPE, device)
    within_budget(info, adj, benchmark, device)
    layer, info["repr_bytes"], extra = baselines.ngcf_provider(provider, adj, DTYPE)
    return layer, dict(info, **extra)


@pytest.mark.parametrize("provider", baselines.NGCF_PROVIDERS)
def test_ngcf_layer_fwd(benchmark, provider, size, inputs, reference, device):
    layer, info = make_layer("ngcf_layer_fwd", provider, size, inputs, benchmark, device)

    def fn():
        with torch.no_grad():
            return layer(*inputs[1:5])

    run_benchmark(benchmark, fn, info, device=device, check=lambda z: torch.testing.assert_close(
        z.double().cpu(), reference[4], rtol=1e-4, atol=1e-4))


@pytest.mark.parametrize("provider", baselines.NGCF_PROVIDERS)
def test_ngcf_layer_fwd_bwd(benchmark, provider, size, inputs, reference, device):
    layer, info = make_layer("ngcf_layer_fwd_bwd", provider, size, inputs, benchmark, device)
    params = [t.clone().requires_grad_() for t in inputs[1:5]]

    def fn():
        for p in params:
            p.grad = None
        layer(*params).backward(inputs[5])

    def check(_):  # the gradients of the first (warm-up) call
        for p, g in zip(params, reference):
            torch.testing.assert_close(p.grad.double().cpu(), g, rtol=1e-3, atol=1e-3)

    run_benchmark(benchmark, fn, info, device=device, check=check)
