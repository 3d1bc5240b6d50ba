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
#: ``check_close``'s rtol, atol for float32 per kind of result
SPMM_TOL, LAYER_TOL, GRAD_TOL = (1e-4, 1e-5), (1e-4, 1e-4), (1e-3, 1e-3)


@pytest.fixture(scope="module")
def inputs(adjacency, dtype, device):
    """``(adj, e, w1, w2, b, grad)`` with E as the SpMM's x too."""
    return (adjacency,) + baselines.ngcf_inputs(adjacency.n_nodes, DIM, device, dtype)


@pytest.fixture(scope="module")
def reference(inputs):
    """``[dE, dW1, dW2, db, Z]`` of the layer in float64 on the device, per size and dtype."""
    return baselines.reference_layer(inputs[0], inputs[1:5], inputs[5])


@pytest.fixture(scope="module")
def spmm_reference(inputs):
    """``(Y, dE)`` in float64: ``Â·E`` and the gradient of ``<Â·E, grad>`` to E, ``Âᵀ·grad``.
    Â is symmetric (build_adjacency's normalised bipartite adjacency), so that is ``Â·grad``: two
    plain products, no autograd through a sparse CSR product on the benchmark device."""
    assert inputs[0].symmetric, "the reference uses Âᵀ = Â"
    a = baselines.torch_csr(inputs[0], torch.float64)
    return torch.sparse.mm(a, inputs[1].double()), torch.sparse.mm(a, inputs[5].double())


def case_info(op, provider, size, inputs, benchmark, device) -> dict:
    """The record of a case; a dense provider whose Â would not fit is skipped, recorded as OOM."""
    adj, x = inputs[0], inputs[1]
    info = base_info(op, provider, size, adj, x.shape[1], x.dtype, device)
    if provider == "dense":
        info["repr_bytes"] = needs = baselines.dense_bytes(adj.n_nodes, x.dtype)
        if needs > memory_budget(device):
            pytest.skip(not_run(info, needs, benchmark.name))
    return info


def checker(benchmark, refs, tolerance):
    """``check(out)`` of run_benchmark: ``out`` (a tensor or a list) against ``refs``."""
    return lambda out: check_close(benchmark.extra_info, out if isinstance(out, list) else [out],
                                   refs, *tolerance)


@pytest.mark.parametrize("provider", baselines.SPMM_PROVIDERS)
def test_spmm(benchmark, provider, size, inputs, spmm_reference, device):
    adj, x = inputs[0], inputs[1]
    if provider == "scipy" and (device.type != "cpu" or x.dtype != torch.float32):
        pytest.skip("scipy runs on the CPU in float32 only")
    info = case_info("spmm", provider, size, inputs, benchmark, device)
    fn, info["repr_bytes"], extra = baselines.spmm_provider(provider, adj, x)
    run_benchmark(benchmark, fn, dict(info, **extra), device=device,
                  model_bytes=baselines.spmm_model_bytes(adj, x),
                  check=checker(benchmark, spmm_reference[:1], SPMM_TOL))


@pytest.mark.parametrize("provider", ["ours", "torch_csr"])
def test_spmm_fwd_bwd(benchmark, provider, size, inputs, spmm_reference, device):
    adj, x, grad = inputs[0], inputs[1].clone().requires_grad_(), inputs[5]
    info = case_info("spmm_fwd_bwd", provider, size, inputs, benchmark, device)
    forward, info["repr_bytes"], extra = baselines.spmm_provider(provider, adj, x)

    def fn():
        x.grad = None
        forward().backward(grad)
        return x.grad

    run_benchmark(benchmark, fn, dict(info, **extra), device=device,
                  check=checker(benchmark, spmm_reference[1:], SPMM_TOL))


def make_layer(op, provider, size, inputs, benchmark, device):
    info = case_info(op, provider, size, inputs, benchmark, device)
    layer, info["repr_bytes"], extra = baselines.ngcf_provider(provider, inputs[0], inputs[1].dtype)
    return layer, dict(info, **extra)


@pytest.mark.parametrize("provider", baselines.NGCF_PROVIDERS)
def test_ngcf_layer_fwd(benchmark, provider, size, inputs, reference, device):
    layer, info = make_layer("ngcf_layer_fwd", provider, size, inputs, benchmark, device)

    def fn():
        with torch.no_grad():
            return layer(*inputs[1:5])

    run_benchmark(benchmark, fn, info, device=device,
                  check=checker(benchmark, reference[4:], LAYER_TOL))


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
                  check=checker(benchmark, reference[:4], GRAD_TOL))


def sweep_case(op, threshold, size, inputs, benchmark, device):
    """``(long_threshold, info)`` of a threshold sweep's case (ours, float32)."""
    adj = inputs[0]
    info = dict(case_info(op, f"T={threshold}", size, inputs, benchmark, device),
                repr_bytes=adj.nbytes, max_degree=int(adj.rowptr.diff().max()))
    return NO_SPLIT if threshold == "off" else int(threshold), info


if THRESHOLDS:  # the kernel-default sweeps, only when asked for (the device run)
    @pytest.mark.float32_only
    @pytest.mark.parametrize("threshold", THRESHOLDS)
    def test_spmm_threshold(benchmark, threshold, size, inputs, spmm_reference, device):
        adj, x = inputs[0], inputs[1]
        t, info = sweep_case("spmm_threshold", threshold, size, inputs, benchmark, device)
        run_benchmark(benchmark, lambda: baselines.ours_spmm(adj, x, long_threshold=t), info,
                      device=device, model_bytes=baselines.spmm_model_bytes(adj, x),
                      check=checker(benchmark, spmm_reference[:1], SPMM_TOL))

    @pytest.mark.float32_only
    @pytest.mark.parametrize("threshold", THRESHOLDS)
    def test_ngcf_threshold(benchmark, threshold, size, inputs, reference, device):
        t, info = sweep_case("ngcf_threshold", threshold, size, inputs, benchmark, device)
        layer = baselines.ngcf_provider("ours_fused", inputs[0])[0]
        run_benchmark(benchmark, layer_fwd_bwd(layer, inputs, long_threshold=t), info,
                      device=device, check=checker(benchmark, reference[:4], GRAD_TOL))
