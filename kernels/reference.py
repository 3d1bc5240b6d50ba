"""Pure-torch reference: the CPU backend, the test oracle (in float64) and a GPU baseline.

SpMM goes through torch's CSR kernel (``torch.sparse_csr_tensor(...) @ x``). Measured on the
2-core CPU box (ml-latest-small Â: N = 10,334, nnz = 201,672, d = 64, float32, median of 20):

    CSR @ x, int32 indices ..................... 0.56 ms
    CSR @ x, int64 indices ..................... 0.60 ms   (int32 ~ equal on CPU)
    torch.sparse.mm(CSR, x) .................... same path as @
    torch.sparse.mm(COO, x) .................... 5.4 ms
    index_select + index_add_ (per-edge msgs) .. 46 ms     (materialises nnz x d)
    scipy csr @ ndarray ........................ 4.1 ms

so the CSR path it is; building the CSR wrapper each call costs ~30 us (no copy,
``check_invariants=False``: the inputs were validated by ``checks``). torch's CSR wants crow and
col in one dtype: a mixed pair converts rowptr (N+1 entries, cheap), never col.
Accumulation is float32 (float64 when x or val is float64); the result has x's dtype.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F



def _acc_dtype(*ts) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


def spmm(rowptr, col, val, x, out_dtype=None, add=None):
    """y = A x (+ add), A the (len(rowptr)-1) x len(x) CSR matrix; fp32 (or fp64) accumulate."""
    acc = _acc_dtype(val, x)
    n_rows, n_cols, d = rowptr.shape[0] - 1, x.shape[0], x.shape[1]
    out_dtype = out_dtype or x.dtype
    if col.numel() == 0 or n_rows == 0 or d == 0:
        y = torch.zeros(n_rows, d, dtype=acc, device=x.device)
    else:
        if rowptr.dtype != col.dtype:
            rowptr = rowptr.to(col.dtype)
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_csr_tensor(rowptr, col, val.to(acc), (n_rows, n_cols),
                                        check_invariants=False)
        y = a @ x.to(acc)
    if add is not None:
        y = y + add.to(acc)
    return y.to(out_dtype)


def transpose_values(val, transpose):
    """(rowptr_t, col_t, val_t) from transpose = (rowptr_t, col_t, perm_t)."""
    rowptr_t, col_t, perm_t = transpose
    return rowptr_t, col_t, val.index_select(0, perm_t)


def ngcf_forward(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, spmm_fn=spmm):
    """(out, S in e's dtype): the forward of :func:`gnn.kernels.ngcf_layer` (its contract).

    ``spmm_fn`` lets the Triton backend reuse this composition (with its own SpMM) for feature
    sizes its fused kernel does not take.
    """
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
    an empty S: recompute it as A e) and A^T as (rowptr_t, col_t, val_t)."""
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
