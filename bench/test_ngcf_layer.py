"""One NGCF layer, ``LeakyReLU((S + E) W1 + (S ⊙ E) W2 + b)`` with ``S = Â E`` (DESIGN.md §2).

Two operations, each per size with providers side by side:
  ngcf_layer_fwd       forward under torch.no_grad() (inference / evaluation propagation)
  ngcf_layer_fwd_bwd   forward + backward to E, W1, W2, b under a fixed random upstream gradient

Providers:
  ours_fused        gnn.kernels.ngcf_layer (one pass over row blocks on CUDA; reference on CPU)
  ours_spmm+torch   gnn.kernels.csr_spmm for S, then the torch composition (isolates the fusion gain)
  torch_unfused     torch.sparse.mm (CSR) for S, then the torch composition
  dense             a dense Â for S, then the torch composition (where Â fits; else OOM record)
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.conftest import (base_info, embedding_dim, graph, memory_budget, not_run,
                            optional, run_benchmark)
from bench.test_spmm import csr_bytes, dense_adjacency, torch_csr

PROVIDERS = ["ours_fused", "ours_spmm+torch", "torch_unfused", "dense"]
DTYPE = torch.float32
SLOPE = 0.2


def composed_layer(s, e, w1, w2, b):
    """The unfused layer given S = Â E: two GEMMs, an add, a product, LeakyReLU."""
    return F.leaky_relu((s + e) @ w1 + (s * e) @ w2 + b, SLOPE)


@pytest.fixture(scope="module")
def layer_inputs(size, device):
    adj = graph(size, device)
    d = embedding_dim()
    gen = torch.Generator().manual_seed(0)
    bound = (6.0 / (2 * d)) ** 0.5  # Xavier-uniform for a d×d weight
    e = torch.randn(adj.n_nodes, d, generator=gen) * 0.1
    w1 = (torch.rand(d, d, generator=gen) * 2 - 1) * bound
    w2 = (torch.rand(d, d, generator=gen) * 2 - 1) * bound
    b = torch.zeros(d)
    grad = torch.randn(adj.n_nodes, d, generator=gen)
    move = lambda t: t.to(device, DTYPE)  # noqa: E731
    return adj, move(e), move(w1), move(w2), move(b), move(grad)


def make_layer(provider, adj, benchmark, info, device):
    """A function ``(e, w1, w2, b) -> Z`` for the provider, filling ``info['repr_bytes']``."""
    n = adj.n_nodes
    csr = adj.rowptr.nbytes + adj.col.nbytes + adj.val.nbytes
    if provider == "ours_fused":
        ngcf_layer = optional("gnn.kernels", "ngcf_layer")
        info["repr_bytes"], info["repr"] = csr, "CSR"
        return lambda e, w1, w2, b: ngcf_layer(adj.rowptr, adj.col, adj.val, e, w1, w2, b,
                                               SLOPE, True, symmetric=True)
    if provider == "ours_spmm+torch":
        csr_spmm = optional("gnn.kernels", "csr_spmm")
        info["repr_bytes"], info["repr"] = csr, "CSR"
        return lambda e, w1, w2, b: composed_layer(
            csr_spmm(adj.rowptr, adj.col, adj.val, e, symmetric=True), e, w1, w2, b)
    if provider == "torch_unfused":
        a = torch_csr(adj)
        info["repr_bytes"], info["repr"] = csr_bytes(a), "torch sparse CSR"
        return lambda e, w1, w2, b: composed_layer(torch.sparse.mm(a, e), e, w1, w2, b)
    if provider == "dense":
        needs = n * n * torch.finfo(DTYPE).bits // 8
        info["repr_bytes"], info["repr"] = needs, "dense N×N"
        if needs > memory_budget(device):
            not_run(benchmark, info, needs)
        a = dense_adjacency(adj)
        return lambda e, w1, w2, b: composed_layer(a @ e, e, w1, w2, b)
    raise AssertionError(provider)  # pragma: no cover


def _reference(adj, e, w1, w2, b):
    with torch.no_grad():
        return composed_layer(torch.sparse.mm(torch_csr(adj), e), e, w1, w2, b)


def _reference_grads(adj, tensors, grad):
    """Gradients of the torch composition (on the CPU if the device's sparse backward fails)."""
    try:
        ref = [t.clone().requires_grad_() for t in tensors]
        composed_layer(torch.sparse.mm(torch_csr(adj), ref[0]), *ref).backward(grad)
        return [p.grad for p in ref]
    except (RuntimeError, NotImplementedError):  # pragma: no cover - depends on the CUDA build
        cpu = adj.to("cpu")
        ref = [t.detach().cpu().clone().requires_grad_() for t in tensors]
        composed_layer(torch.sparse.mm(torch_csr(cpu), ref[0]), *ref).backward(grad.cpu())
        return [p.grad.to(tensors[0].device) for p in ref]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ngcf_layer_fwd(benchmark, provider, size, layer_inputs, device):
    adj, e, w1, w2, b, _ = layer_inputs
    info = base_info("ngcf_layer_fwd", provider, size, adj, e.shape[1], DTYPE, device)
    layer = make_layer(provider, adj, benchmark, info, device)
    reference = _reference(adj, e, w1, w2, b)

    def fn():
        with torch.no_grad():
            return layer(e, w1, w2, b)

    def check(z):
        torch.testing.assert_close(z, reference, rtol=1e-4, atol=1e-4)

    run_benchmark(benchmark, fn, info, device=device, check=check)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_ngcf_layer_fwd_bwd(benchmark, provider, size, layer_inputs, device):
    adj, e0, w10, w20, b0, grad = layer_inputs
    info = base_info("ngcf_layer_fwd_bwd", provider, size, adj, e0.shape[1], DTYPE, device)
    layer = make_layer(provider, adj, benchmark, info, device)
    params = [t.clone().requires_grad_() for t in (e0, w10, w20, b0)]

    def fn():
        for p in params:
            p.grad = None
        layer(*params).backward(grad)

    # Reference gradients of the torch composition, compared after the first (warm-up) call.
    expected = _reference_grads(adj, (e0, w10, w20, b0), grad)

    def check(_):
        for p, g in zip(params, expected):
            torch.testing.assert_close(p.grad, g, rtol=1e-3, atol=1e-3)

    run_benchmark(benchmark, fn, info, device=device, check=check)
