"""The operations under test, ours and the baselines, as plain callables (docs/BENCHMARKS.md).

SpMM ``Y = Â·E``: ``ours`` (gnn.kernels.csr_spmm), ``torch_csr`` (torch.sparse.mm, int32 CSR;
cuSPARSE on CUDA), ``dense`` (a dense N×N Â: the project's one dense adjacency, named as such),
``gather_scatter`` (index_select, scale, index_add_: PyG-style, nnz×d messages), ``scipy``.
NGCF layer ``LeakyReLU((S + E) W1 + (S ⊙ E) W2 + b)``, ``S = Â E``: ``ours_fused``
(gnn.kernels.ngcf_layer; ``ours_fused (S recomputed)``: its backward recomputes S instead of
saving it), ``ours_spmm+torch`` (csr_spmm, then torch), ``torch_unfused`` (torch.sparse.mm, then
torch), ``dense`` (dense Â, then torch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gnn.kernels import csr_spmm, ngcf_layer

SPMM_PROVIDERS = ["ours", "torch_csr", "dense", "gather_scatter", "scipy"]
NGCF_PROVIDERS = ["ours_fused", "ours_spmm+torch", "torch_unfused", "dense"]
RECOMPUTED = "ours_fused (S recomputed)"  # the suite's variant under GNN_BENCH_RECOMPUTE_S=1
SLOPE = 0.2


def torch_csr(adj, dtype) -> torch.Tensor:
    """Â as a torch sparse CSR tensor with int32 indices and ``dtype`` values."""
    return torch.sparse_csr_tensor(adj.rowptr.to(torch.int32), adj.col, adj.val.to(dtype),
                                   (adj.n_nodes, adj.n_nodes), check_invariants=False)


def nbytes(a: torch.Tensor) -> int:
    """Bytes of a tensor, a sparse CSR one's three arrays included."""
    parts = (a.crow_indices(), a.col_indices(), a.values()) if a.layout == torch.sparse_csr else (a,)
    return sum(t.numel() * t.element_size() for t in parts)


def dense_bytes(n: int, dtype: torch.dtype) -> int:
    """Bytes of a dense N×N Â: what the dense provider needs before it can start."""
    return n * n * dtype.itemsize


def spmm_model_bytes(adj, x) -> int:
    """docs/DESIGN.md §4: ``4(N+1) + 8·nnz + G + N·d·b``, best case G = N·d·b (each row of x
    gathered once; the worst case is G = nnz·d·b)."""
    return 4 * (adj.n_nodes + 1) + adj.nnz * 8 + 2 * x.numel() * x.element_size()


def gather_scatter_spmm(row, col, val, x):
    messages = x.index_select(0, col) * val.to(x.dtype).unsqueeze(1)  # nnz × d, materialised
    return torch.zeros_like(x).index_add_(0, row, messages)


def ours_spmm(adj, x, **options):
    """``csr_spmm`` on the adjacency; ``options``: its knobs (``backend``, ``long_threshold``)."""
    return csr_spmm(adj.rowptr, adj.col, adj.val, x, symmetric=adj.symmetric,
                    transpose=adj.transpose, **options)


def torch_product(provider: str, adj, dtype):
    """``(mm, repr_bytes, repr)``, ``mm(x) = Â·x``: ``torch.sparse.mm`` on :func:`torch_csr`
    (``torch_csr``, ``torch_unfused``) or the dense N×N Â (``dense``)."""
    a = torch_csr(adj, dtype)
    if provider == "dense":
        a = a.to_dense()
        return (lambda x: a @ x), nbytes(a), "dense N×N"
    return (lambda x: torch.sparse.mm(a, x)), nbytes(a), \
        f"torch sparse CSR, indices {a.crow_indices().dtype}"


def spmm_provider(provider: str, adj, x):
    """``(fn, repr_bytes, extra)`` of an SpMM provider (check :func:`dense_bytes` first)."""
    if provider == "ours":
        return (lambda: ours_spmm(adj, x)), adj.nbytes, {
            "repr": f"CSR rowptr {adj.rowptr.dtype}, col {adj.col.dtype}, val {adj.val.dtype}"}
    if provider in ("torch_csr", "dense"):
        mm, held, what = torch_product(provider, adj, x.dtype)
        return (lambda: mm(x)), held, {"repr": what}
    if provider == "gather_scatter":  # int64 edge index (2 × nnz) + fp32 values, as PyG's
        row = torch.arange(adj.n_nodes, device=adj.device).repeat_interleave(adj.rowptr.diff())
        col = adj.col.long()
        return (lambda: gather_scatter_spmm(row, col, adj.val, x)), adj.nnz * (2 * 8 + 4), {
            "materialised_bytes": adj.nnz * x.shape[1] * x.element_size(),
            "repr": "edge_index int64 (2×nnz) + val; materialised: nnz×d messages"}
    if provider == "scipy":
        import numpy as np

        a, xn = adj.to_scipy().astype(np.float32), x.numpy()
        held = a.indptr.nbytes + a.indices.nbytes + a.data.nbytes
        return (lambda: torch.from_numpy(a @ xn)), held, {
            "repr": f"scipy CSR, indices {a.indices.dtype}"}
    raise ValueError(f"unknown SpMM provider {provider!r}; expected one of {SPMM_PROVIDERS}")


def composed_layer(s, e, w1, w2, b):
    """The unfused layer given S = Â E: two GEMMs, an add, a product, LeakyReLU."""
    return F.leaky_relu((s + e) @ w1 + (s * e) @ w2 + b, SLOPE)


def ngcf_provider(provider: str, adj, dtype=torch.float32):
    """``(layer, repr_bytes, extra)``, ``layer(e, w1, w2, b) -> Z`` (``ours_fused`` also takes
    ngcf_layer's keyword options: ``backend``, ``long_threshold``)."""
    if provider in ("ours_fused", RECOMPUTED):
        recompute = {"recompute_s": True} if provider == RECOMPUTED else {}  # else the default
        return (lambda e, w1, w2, b, **options: ngcf_layer(
            adj.rowptr, adj.col, adj.val, e, w1, w2, b, SLOPE, True, symmetric=adj.symmetric,
            transpose=adj.transpose, **recompute, **options)), adj.nbytes, {"repr": "CSR"}
    if provider == "ours_spmm+torch":
        mm, held, what = (lambda e: ours_spmm(adj, e)), adj.nbytes, "CSR"
    elif provider in ("torch_unfused", "dense"):
        mm, held, what = torch_product(provider, adj, dtype)
    else:
        raise ValueError(f"unknown NGCF provider {provider!r}; expected one of {NGCF_PROVIDERS}")
    return (lambda e, w1, w2, b: composed_layer(mm(e), e, w1, w2, b)), held, {"repr": what}


def ngcf_inputs(n: int, d: int, device, dtype):
    """Seeded ``(e, w1, w2, b, grad)``: small embeddings, Xavier-uniform d×d weights."""
    gen = torch.Generator().manual_seed(0)
    bound = (6.0 / (2 * d)) ** 0.5
    e = torch.randn(n, d, generator=gen) * 0.1
    w1, w2 = ((torch.rand(d, d, generator=gen) * 2 - 1) * bound for _ in range(2))
    b = torch.rand(d, generator=gen) * 0.01
    grad = torch.randn(n, d, generator=gen)
    return tuple(t.to(device, dtype) for t in (e, w1, w2, b, grad))


def reference_layer(adj, tensors, grad):
    """``[dE, dW1, dW2, db, Z]`` of the torch composition in float64 on ``adj``'s device. Â is
    symmetric (``build_adjacency``'s normalised bipartite adjacency), so S = Â·E enters as a leaf
    and E's gradient through S is Âᵀ·dS = Â·dS: plain products, no autograd through a sparse
    CSR product on the benchmark device (untried on CUDA in float64, and not needed)."""
    assert adj.symmetric, "the reference uses Âᵀ = Â"
    a = torch_csr(adj, torch.float64)
    e, w1, w2, b = (t.detach().to(torch.float64).requires_grad_() for t in tensors)
    s = torch.sparse.mm(a, e.detach()).requires_grad_()
    out = composed_layer(s, e, w1, w2, b)
    out.backward(grad.detach().to(torch.float64))
    return [e.grad + torch.sparse.mm(a, s.grad), w1.grad, w2.grad, b.grad, out.detach()]
