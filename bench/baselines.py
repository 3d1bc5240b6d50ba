"""The operations under test, ours and the baselines, as plain callables (one place for each).

SpMM ``Y = Â·E`` providers:
  ours            gnn.kernels.csr_spmm (Triton on CUDA, the pure-torch reference on the CPU)
  torch_csr       torch.sparse.mm on a torch CSR tensor (int32 indices; cuSPARSE on CUDA)
  dense           a dense N×N Â times E (the one dense adjacency of the project, named as such)
  gather_scatter  index_select the source rows, scale, index_add_ into the targets: the
                  edge-materialising message passing of PyG-style libraries (nnz×d messages)
  scipy           scipy.sparse CSR @ ndarray (CPU only)

NGCF layer ``LeakyReLU((S + E) W1 + (S ⊙ E) W2 + b)``, ``S = Â E`` (docs/DESIGN.md §2):
  ours_fused        gnn.kernels.ngcf_layer
  ours_spmm+torch   csr_spmm for S, then the torch composition (isolates the fusion gain)
  torch_unfused     torch.sparse.mm for S, then the torch composition
  dense             a dense Â for S, then the torch composition
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from gnn.kernels import csr_spmm, ngcf_layer

SPMM_PROVIDERS = ["ours", "torch_csr", "dense", "gather_scatter", "scipy"]
NGCF_PROVIDERS = ["ours_fused", "ours_spmm+torch", "torch_unfused", "dense"]
SLOPE = 0.2


# --------------------------------------------------------------------------- representations
def csr_bytes(adj) -> int:
    """Bytes of the CSR arrays (rowptr, col, val) of a gnn Adjacency."""
    return sum(t.numel() * t.element_size() for t in (adj.rowptr, adj.col, adj.val))


def torch_csr(adj, dtype=None) -> torch.Tensor:
    """Â as a torch sparse CSR tensor with int32 indices (values cast to ``dtype``)."""
    n = adj.n_nodes
    val = adj.val if dtype is None else adj.val.to(dtype)
    return torch.sparse_csr_tensor(adj.rowptr.to(torch.int32), adj.col, val, (n, n),
                                   check_invariants=False)


def torch_csr_bytes(a: torch.Tensor) -> int:
    return sum(x.numel() * x.element_size()
               for x in (a.crow_indices(), a.col_indices(), a.values()))


def dense_bytes(n: int, dtype: torch.dtype) -> int:
    """Bytes of a dense N×N Â: what the dense provider needs before it can start."""
    return n * n * torch.empty((), dtype=dtype).element_size()


def dense_adjacency(adj, dtype=torch.float32) -> torch.Tensor:
    """The dense N×N Â (only the dense provider builds this, within its memory budget)."""
    return torch_csr(adj, dtype).to_dense()


def edge_rows(adj) -> torch.Tensor:
    """The target row of every entry (int64, as in PyG's edge_index)."""
    return torch.repeat_interleave(torch.arange(adj.n_nodes, device=adj.device), adj.rowptr.diff())


def gather_scatter_bytes(nnz: int, d: int, elem: int) -> tuple:
    """``(edge list bytes, message bytes)``: edge_index (2 × nnz int64) + val (nnz fp32), and
    the nnz×d message tensor it materialises."""
    return nnz * (2 * 8 + 4), nnz * d * elem


def gather_scatter_spmm(row, col, val, x):
    messages = x.index_select(0, col) * val.to(x.dtype).unsqueeze(1)  # nnz × d, materialised
    return torch.zeros_like(x).index_add_(0, row, messages)


def spmm_model_bytes(n: int, nnz: int, d: int, elem: int) -> int:
    """docs/DESIGN.md §4: ``4(N+1) + nnz·(4+4) + G + N·d·b`` with G = N·d·b, the best case
    (each row of x gathered once; the worst case is G = nnz·d·b)."""
    return 4 * (n + 1) + nnz * 8 + 2 * n * d * elem


# --------------------------------------------------------------------------- SpMM
def ours_spmm(adj, x, **options):
    """``csr_spmm`` on the adjacency; ``options`` are its knobs (``backend``,
    ``long_threshold``; docs/DESIGN.md §4)."""
    return csr_spmm(adj.rowptr, adj.col, adj.val, x, symmetric=adj.symmetric,
                    transpose=adj.transpose, **options)


def spmm_provider(provider: str, adj, x):
    """``(fn, repr_bytes, extra)`` for one SpMM provider; ``extra`` goes into the record.

    The dense provider is built here: call :func:`dense_bytes` first to stay within budget.
    """
    d, elem = x.shape[1], x.element_size()
    if provider == "ours":
        return (lambda: ours_spmm(adj, x)), csr_bytes(adj), {
            "repr": f"CSR rowptr {adj.rowptr.dtype}, col {adj.col.dtype}, val {adj.val.dtype}"}
    if provider == "torch_csr":
        a = torch_csr(adj, x.dtype)
        return (lambda: torch.sparse.mm(a, x)), torch_csr_bytes(a), {
            "repr": f"torch sparse CSR, indices {a.crow_indices().dtype}"}
    if provider == "dense":
        a = dense_adjacency(adj, x.dtype)
        return (lambda: a @ x), a.numel() * a.element_size(), {"repr": "dense N×N"}
    if provider == "gather_scatter":
        row, col = edge_rows(adj), adj.col.long()
        edges, messages = gather_scatter_bytes(adj.nnz, d, elem)
        return (lambda: gather_scatter_spmm(row, col, adj.val, x)), edges, {
            "materialised_bytes": messages,
            "repr": "edge_index int64 (2×nnz) + val; materialised: nnz×d messages"}
    if provider == "scipy":
        import numpy as np

        a = adj.to_scipy().astype(np.float32)
        xn = x.numpy()
        return (lambda: torch.from_numpy(a @ xn)), a.indptr.nbytes + a.indices.nbytes + a.data.nbytes, {
            "repr": f"scipy CSR, indices {a.indices.dtype}"}
    raise ValueError(f"unknown SpMM provider {provider!r}; expected one of {SPMM_PROVIDERS}")


# --------------------------------------------------------------------------- NGCF layer
def composed_layer(s, e, w1, w2, b):
    """The unfused layer given S = Â E: two GEMMs, an add, a product, LeakyReLU."""
    return F.leaky_relu((s + e) @ w1 + (s * e) @ w2 + b, SLOPE)


def ours_ngcf_layer(adj, e, w1, w2, b, **options):
    """``ngcf_layer`` on the adjacency (self loop on, as NGCF); ``options`` are its knobs
    (``backend``, ``long_threshold``, ``recompute_s``)."""
    return ngcf_layer(adj.rowptr, adj.col, adj.val, e, w1, w2, b, SLOPE, True,
                      symmetric=adj.symmetric, transpose=adj.transpose, **options)


def ngcf_provider(provider: str, adj, dtype=torch.float32):
    """``(layer, repr_bytes, extra)`` with ``layer(e, w1, w2, b) -> Z`` for one provider
    (``ours_fused`` also takes ngcf_layer's keyword options)."""
    if provider == "ours_fused":
        return (lambda e, w1, w2, b, **options: ours_ngcf_layer(adj, e, w1, w2, b, **options)), \
            csr_bytes(adj), {"repr": "CSR"}
    if provider == "ours_spmm+torch":
        return (lambda e, w1, w2, b: composed_layer(ours_spmm(adj, e), e, w1, w2, b)), \
            csr_bytes(adj), {"repr": "CSR"}
    if provider == "torch_unfused":
        a = torch_csr(adj, dtype)
        return (lambda e, w1, w2, b: composed_layer(torch.sparse.mm(a, e), e, w1, w2, b)), \
            torch_csr_bytes(a), {"repr": "torch sparse CSR"}
    if provider == "dense":
        a = dense_adjacency(adj, dtype)
        return (lambda e, w1, w2, b: composed_layer(a @ e, e, w1, w2, b)), \
            a.numel() * a.element_size(), {"repr": "dense N×N"}
    raise ValueError(f"unknown NGCF provider {provider!r}; expected one of {NGCF_PROVIDERS}")


def ngcf_inputs(n: int, d: int, device, dtype=torch.float32, seed: int = 0):
    """Seeded ``(e, w1, w2, b, grad)``: small embeddings, Xavier-uniform d×d weights."""
    gen = torch.Generator().manual_seed(seed)
    bound = (6.0 / (2 * d)) ** 0.5
    e = torch.randn(n, d, generator=gen) * 0.1
    w1 = (torch.rand(d, d, generator=gen) * 2 - 1) * bound
    w2 = (torch.rand(d, d, generator=gen) * 2 - 1) * bound
    b = torch.rand(d, generator=gen) * 0.01
    grad = torch.randn(n, d, generator=gen)
    return tuple(t.to(device, dtype) for t in (e, w1, w2, b, grad))


def reference_layer_grads(adj, tensors, grad):
    """Gradients (e, w1, w2, b) of the torch composition, computed on the CPU in float64."""
    cpu = adj.to("cpu")
    a = torch_csr(cpu, torch.float64)
    ref = [t.detach().cpu().double().requires_grad_() for t in tensors]
    composed_layer(torch.sparse.mm(a, ref[0]), *ref).backward(grad.detach().cpu().double())
    return [p.grad for p in ref]
