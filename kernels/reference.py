"""Pure-torch reference: the CPU backend, the test oracle (in float64) and a GPU baseline.

SpMM on the CPU (float32, bfloat16, float16) is a weighted gather-reduce: ``embedding_bag`` in
``sum`` mode with the entries' values as per-sample weights, ``y[r] = Σ_k val[k] x[col[k]]``
over the row's bag ``[rowptr[r], rowptr[r+1])`` (the same sum, row by row, in CSR order). Its
FBGEMM kernel beats torch's CSR path (MKL) several-fold. Measured on the 2-core CPU box, one
thread, d = 64, float32, median of 30 (CPU time):

    graph                                   CSR @ x (MKL)   embedding_bag
    ml-latest-small Â (N 10,334, nnz 161k)      0.88 ms         0.26 ms
    Gowalla Â (N 70,839, nnz 1.62M)             ~25 ms          ~5.5 ms

(earlier, for the CSR path: int32 and int64 indices cost the same; ``torch.sparse.mm(COO)`` was
10x slower, per-edge ``index_select`` + ``index_add_`` 80x, scipy 7x). float64 and CUDA tensors
keep torch's CSR kernel (``torch.sparse_csr_tensor(...) @ x``: exact float64 for the oracle,
cuSPARSE as the GPU baseline); building that wrapper costs ~30 us (no copy,
``check_invariants=False``: the inputs were validated by ``checks``). Both kernels want one
index dtype: a mixed pair converts rowptr (N+1 entries, once per graph), never col.
Accumulation is float32 (float64 when x or val is float64); the result has x's dtype.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

from . import ngcf_cpu
from .tensor_cache import TensorCache

_INDEX_COPIES = TensorCache()  # rowptr in the column dtype, made once per graph


def _acc_dtype(*ts) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


def _rowptr_like(rowptr, col):
    """rowptr in col's dtype (the kernels take one index dtype), converted once per graph."""
    if rowptr.dtype == col.dtype:
        return rowptr
    hit = _INDEX_COPIES.get((rowptr,), (col.dtype,))
    if hit is None:
        hit = rowptr.to(col.dtype)
        _INDEX_COPIES.put((rowptr,), hit, (col.dtype,))
    return hit


def spmm(rowptr, col, val, x, out_dtype=None, add=None):
    """y = A x (+ add), A the (len(rowptr)-1) x len(x) CSR matrix; fp32 (or fp64) accumulate.
    Not differentiable itself (the ops' backward formulas call it for A^T dy)."""
    acc = _acc_dtype(val, x)
    n_rows, n_cols, d = rowptr.shape[0] - 1, x.shape[0], x.shape[1]
    out_dtype = out_dtype or x.dtype
    if col.numel() == 0 or n_rows == 0 or d == 0:
        y = torch.zeros(n_rows, d, dtype=acc, device=x.device)
    elif x.device.type == "cpu" and acc == torch.float32 and col.numel() < 2**31:
        # Weighted gather-reduce (module docstring); offsets = rowptr with its last entry.
        # Detached: the ops differentiate SpMM themselves, and an input that requires grad
        # would make embedding_bag build its own backward's bookkeeping (slower).
        y = F.embedding_bag(col, x.detach().to(acc), _rowptr_like(rowptr, col), mode="sum",
                            per_sample_weights=val.detach().to(acc), include_last_offset=True)
    else:
        rowptr = _rowptr_like(rowptr, col)
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_csr_tensor(rowptr, col, val.to(acc), (n_rows, n_cols),
                                        check_invariants=False)
        y = a @ x.to(acc)
    if add is not None:
        y = y.add_(add) if add.dtype == acc else y.add_(add.to(acc))
    return y.to(out_dtype)


def ngcf_forward(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, spmm_fn=spmm,
                 save_s=True):
    """(out, S in e's dtype): the forward of :func:`gnn.kernels.ngcf_layer` (its contract).

    float32 on the CPU runs by row blocks (kernels/ngcf_cpu.py; ``save_s=False`` then skips
    keeping S). ``spmm_fn`` lets the Triton backend reuse this composition (with its own SpMM)
    for feature sizes its fused kernel does not take.
    """
    if spmm_fn is spmm and ngcf_cpu.supports(e, w1, val):
        return ngcf_cpu.ngcf_forward(rowptr, col, val, e, w1, w2, bias, negative_slope,
                                     self_loop, save_s)
    acc = _acc_dtype(val, e)
    s = spmm_fn(rowptr, col, val, e, out_dtype=acc)
    ef = e.to(acc)
    u1 = s + ef if self_loop else s
    u2 = s * ef
    b = bias.to(acc) if bias is not None else torch.zeros((), dtype=acc, device=e.device)
    z = torch.addmm(b, u1, w1.to(acc)).addmm_(u2, w2.to(acc))
    return F.leaky_relu(z, negative_slope).to(e.dtype), s.to(e.dtype)


def ngcf_backward(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                  negative_slope, self_loop, spmm_fn=spmm):
    """(de, dw1, dw2, db): the backward formula of :func:`gnn.kernels.ngcf_layer`, given S (or
    an empty S: recompute it as A e) and A^T as (rowptr_t, col_t, val_t); float32 on the CPU by
    row blocks (kernels/ngcf_cpu.py)."""
    if spmm_fn is spmm and ngcf_cpu.supports(e, w1, val_t):
        return ngcf_cpu.ngcf_backward(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e,
                                      w1, w2, negative_slope, self_loop)
    acc = _acc_dtype(val_t, e)
    if s.numel() != e.numel():  # S was not saved: recompute it
        s = spmm_fn(rowptr, col, val, e, out_dtype=e.dtype)
    g, o = grad.to(acc), out.to(acc)
    if negative_slope >= 0:  # one fused pass; out > 0 <=> Z > 0 holds only for a slope >= 0
        dz = torch.ops.aten.leaky_relu_backward(g, o, negative_slope, True)
    else:
        dz = torch.where(o > 0, g, g * negative_slope)
    sf, ef = s.to(acc), e.to(acc)
    w1f, w2f = w1.to(acc), w2.to(acc)
    du1 = dz @ w1f.t()
    du2 = dz @ w2f.t()
    ds = torch.addcmul(du1, du2, ef)  # fused multiply-add: one pass over N x d instead of two
    de_local = torch.addcmul(du1, du2, sf) if self_loop else du2 * sf
    de = spmm_fn(rowptr_t, col_t, val_t, ds, out_dtype=e.dtype, add=de_local)
    u1 = sf + ef if self_loop else sf
    dw1 = (u1.t() @ dz).to(w1.dtype)
    dw2 = ((sf * ef).t() @ dz).to(w2.dtype)
    db = dz.sum(0).to(w1.dtype)
    return de, dw1, dw2, db
