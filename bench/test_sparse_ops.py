"""SpMM ``Y = Â·E`` and one NGCF layer, providers side by side per size and dtype
(bench/baselines.py; dtypes: GNN_BENCH_DTYPES, default float32).

  spmm                 every SpMM provider
  spmm_fwd_bwd         SpMM forward + backward to E (ours, torch_csr)
  ngcf_layer_fwd       the layer under torch.no_grad() (inference / evaluation propagation)
  ngcf_layer_fwd_bwd   forward + backward to E, W1, W2, b under a fixed random upstream gradient
                       (with GNN_BENCH_RECOMPUTE_S=1 also ours_fused recomputing S in its backward)
  spmm_threshold, ngcf_threshold   ours, float32, at each long-row threshold T of
                       GNN_BENCH_THRESHOLDS (none by default): the sweeps that set the default T

Every result is checked against the float64 composition on the same (rounded) inputs, and its
relative error ``‖out − ref‖ / ‖ref‖`` goes into extra_info as ``rel_err``.
"""
from __future__ import annotations

import pytest
import torch

from bench import baselines
from bench.measure import (DIM, RECOMPUTE_S, THRESHOLDS, base_info, check_close, memory_budget,
                           not_run, run_benchmark)

NO_SPLIT = 1 << 30  # a threshold no row reaches: long-row splitting off
NGCF_FWD_BWD = baselines.NGCF_PROVIDERS + ([baselines.RECOMPUTED] if RECOMPUTE_S else [])


def within_budget(info, adj, dtype, benchmark, device) -> None:
    """Skip (and record as OOM) a dense provider whose Â would not fit."""
    if info["provider"] == "dense":
        info["repr_bytes"] = needs = baselines.dense_bytes(adj.n_nodes, dtype)
        if needs > memory_budget(device):
            pytest.skip(not_run(info, needs, benchmark.name))


@pytest.fixture(scope="module")
def inputs(adjacency, dtype, device):
    """``(adj, e, w1, w2, b, grad)`` with E as the SpMM's x too."""
    return (adjacency,) + baselines.ngcf_inputs(adjacency.n_nodes, DIM, device, dtype)


@pytest.fixture(scope="module")
def reference(inputs, device):
    """``[de, dw1, dw2, db, out]`` of the layer in float64 on the device, per size and dtype."""
    return baselines.reference_layer(inputs[0], inputs[1:5], inputs[5], torch.float64, device)


@pytest.fixture(scope="module")
def spmm_reference(inputs):
    """``(Y, dE)`` in float64: ``Â·E`` and the gradient of ``<Â·E, grad>`` to E."""
    x = inputs[1].double().requires_grad_()
    y = torch.sparse.mm(baselines.torch_csr(inputs[0], torch.float64), x)
    y.backward(inputs[5].double())
    return y.detach(), x.grad


def spmm_info(op, provider, size, inputs, benchmark, device) -> dict:
    adj, x = inputs[0], inputs[1]
    info = base_info(op, provider, size, adj, x.shape[1], x.dtype, device)
    within_budget(info, adj, x.dtype, benchmark, device)
    return info


@pytest.mark.parametrize("provider", baselines.SPMM_PROVIDERS)
def test_spmm(benchmark, provider, size, inputs, spmm_reference, device):
    adj, x = inputs[0], inputs[1]
    if provider == "scipy" and (device.type != "cpu" or x.dtype != torch.float32):
        pytest.skip("scipy runs on the CPU in float32 only")
    info = spmm_info("spmm", provider, size, inputs, benchmark, device)
    fn, info["repr_bytes"], extra = baselines.spmm_provider(provider, adj, x)
    model_bytes = baselines.spmm_model_bytes(adj.n_nodes, adj.nnz, x.shape[1], x.element_size())
    run_benchmark(benchmark, fn, dict(info, **extra), device=device, model_bytes=model_bytes,
                  check=lambda y: check_close(benchmark.extra_info, [y], spmm_reference[:1],
                                              rtol=1e-4, atol=1e-5))


@pytest.mark.parametrize("provider", ["ours", "torch_csr"])
def test_spmm_fwd_bwd(benchmark, provider, size, inputs, spmm_reference, device):
    adj, x, grad = inputs[0], inputs[1].clone().requires_grad_(), inputs[5]
    info = spmm_info("spmm_fwd_bwd", provider, size, inputs, benchmark, device)
    forward, info["repr_bytes"], extra = baselines.spmm_provider(provider, adj, x)

    def fn():
        x.grad = None
        forward().backward(grad)
        return x.grad

    run_benchmark(benchmark, fn, dict(info, **extra), device=device,
                  check=lambda dx: check_close(benchmark.extra_info, [dx], spmm_reference[1:],
                                               rtol=1e-4, atol=1e-5))


def make_layer(op, provider, size, inputs, benchmark, device):
    adj, dtype = inputs[0], inputs[1].dtype
    info = base_info(op, provider, size, adj, inputs[1].shape[1], dtype, device)
    within_budget(info, adj, dtype, benchmark, device)
    layer, info["repr_bytes"], extra = baselines.ngcf_provider(provider, adj, dtype)
    return layer, dict(info, **extra)


@pytest.mark.parametrize("provider", baselines.NGCF_PROVIDERS)
def test_ngcf_layer_fwd(benchmark, provider, size, inputs, reference, device):
    layer, info = make_layer("ngcf_layer_fwd", provider, size, inputs, benchmark, device)

    def fn():
        with torch.no_grad():
            return layer(*inputs[1:5])

    run_benchmark(benchmark, fn, info, device=device, check=lambda z: check_close(
        benchmark.extra_info, [z], reference[4:], rtol=1e-4, atol=1e-4))


def layer_fwd_bwd(layer, inputs, **options):
    """``fn() -> [dE, dW1, dW2, db]``: forward and backward of ``layer`` (fresh gradients)."""
    params = [t.clone().requires_grad_() for t in inputs[1:5]]

    def fn():
        for p in params:
            p.grad = None
        layer(*params, **options).backward(inputs[5])
        return [p.grad for p in params]

    return fn


@pytest.mark.parametrize("provider", NGCF_FWD_BWD)
def test_ngcf_layer_fwd_bwd(benchmark, provider, size, inputs, reference, device):
    layer, info = make_layer("ngcf_layer_fwd_bwd", provider, size, inputs, benchmark, device)
    run_benchmark(benchmark, layer_fwd_bwd(layer, inputs), info, device=device,
                  check=lambda grads: check_close(benchmark.extra_info, grads, reference[:4],
                                                  rtol=1e-3, atol=1e-3))


def threshold_info(op, threshold, size, inputs, device) -> dict:
    adj = inputs[0]
    return dict(base_info(op, f"T={threshold}", size, adj, inputs[1].shape[1], inputs[1].dtype,
                          device), repr_bytes=adj.nbytes, max_degree=int(adj.rowptr.diff().max()))


if THRESHOLDS:  # the kernel-default sweeps, only when asked for (the device run)
    @pytest.mark.float32_only
    @pytest.mark.parametrize("threshold", THRESHOLDS)
    def test_spmm_threshold(benchmark, threshold, size, inputs, spmm_reference, device):
        adj, x = inputs[0], inputs[1]
        t = NO_SPLIT if threshold == "off" else int(threshold)
        model_bytes = baselines.spmm_model_bytes(adj.n_nodes, adj.nnz, x.shape[1],
                                                 x.element_size())
        run_benchmark(benchmark, lambda: baselines.ours_spmm(adj, x, long_threshold=t),
                      threshold_info("spmm_threshold", threshold, size, inputs, device),
                      device=device, model_bytes=model_bytes,
                      check=lambda y: check_close(benchmark.extra_info, [y], spmm_reference[:1],
                                                  rtol=1e-4, atol=1e-5))

    @pytest.mark.float32_only
    @pytest.mark.parametrize("threshold", THRESHOLDS)
    def test_ngcf_threshold(benchmark, threshold, size, inputs, reference, device):
        layer = baselines.ngcf_provider("ours_fused", inputs[0])[0]
        t = NO_SPLIT if threshold == "off" else int(threshold)
        run_benchmark(benchmark, layer_fwd_bwd(layer, inputs, long_threshold=t),
                      threshold_info("ngcf_threshold", threshold, size, inputs, device),
                      device=device, check=lambda grads: check_close(
                          benchmark.extra_info, grads, reference[:4], rtol=1e-3, atol=1e-3))
