"""Sparse kernels for graph collaborative filtering (installed as ``gnn.kernels``).

Public API (DESIGN.md §4, docs/ARCHITECTURE.md)::

    csr_spmm(rowptr, col, val, x, *, symmetric=False, transpose=None) -> Tensor
    ngcf_layer(rowptr, col, val, e, w1, w2, bias=None, negative_slope=0.2, self_loop=True, *,
               symmetric=False, transpose=None) -> Tensor
    csr_transpose(rowptr, col, n_cols) -> (rowptr_t, col_t, perm_t)
    get_backend(device=None) -> "triton" | "torch"

CUDA tensors run our Triton kernels (kernels/spmm.py, kernels/ngcf_fused.py), CPU tensors the
torch reference (kernels/reference.py); ``GNN_KERNEL_BACKEND=auto|triton|torch`` forces one.
"""
from .backend import get_backend
from .ops import csr_spmm, csr_transpose, ngcf_layer

__all__ = ["csr_spmm", "csr_transpose", "ngcf_layer", "get_backend"]
