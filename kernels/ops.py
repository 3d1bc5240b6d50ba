"""Public, differentiable ops registered with torch.library (schema, CPU/CUDA impls, fake
impls, autograd), so that ``torch.compile(model, fullgraph=True)`` sees each as one opaque node.

Ops (namespace ``gnn``):
  csr_spmm(rowptr, col, val, x, symmetric, rowptr_t?, col_t?, perm_t?) -> y
  csr_transpose(rowptr, col, n_cols) -> (rowptr_t, col_t, perm_t)
  ngcf_layer_fwd(rowptr, col, val, e, w1, w2, bias?, negative_slope, self_loop, save_s,
                 symmetric, rowptr_t?, col_t?, perm_t?) -> (out, S)        (S empty if not saved)
  ngcf_layer_bwd(grad, out, S, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                 negative_slope, self_loop) -> (de, dw1, dw2, db)
The transpose arguments of the forward ops are only kept for the backward: A^T is the same
CSR when ``symmetric``, else (rowptr_t, col_t, val[perm_t]), else it is built by csr_transpose.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import torch
from torch import Tensor

from . import checks, reference
from .backend import get_backend
from .transpose import csr_transpose_impl

# ----------------------------------------------------------------------------- dispatch


def _runs_triton(device, *tensors) -> bool:
    """The backend's choice, except that float64 always takes the exact torch path (the Triton
    kernels accumulate in float32: a float64 caller, e.g. gradcheck, expects float64 math)."""
    return (get_backend(device) == "triton"
            and all(t.dtype != torch.float64 for t in tensors))


def _spmm_impl(rowptr, col, val, x, add=None):
    if _runs_triton(x.device, val, x):
        from .spmm import spmm_triton

        return spmm_triton(rowptr, col, val, x, add=add)
    return reference.spmm(rowptr, col, val, x, add=add)


# ----------------------------------------------------------------------------- csr_spmm


@torch.library.custom_op("gnn::csr_spmm", mutates_args=(), device_types="cpu")
def _csr_spmm_op(rowptr: Tensor, col: Tensor, val: Tensor, x: Tensor, symmetric: bool,
                 rowptr_t: Optional[Tensor], col_t: Optional[Tensor],
                 perm_t: Optional[Tensor]) -> Tensor:
    tr = None if rowptr_t is None else (rowptr_t, col_t, perm_t)
    checks.check_spmm("csr_spmm", rowptr, col, val, x, transpose=tr)
    return _spmm_impl(rowptr, col, val, x)


@_csr_spmm_op.register_kernel("cuda")
def _csr_spmm_cuda(rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t):
    tr = None if rowptr_t is None else (rowptr_t, col_t, perm_t)
    checks.check_spmm("csr_spmm", rowptr, col, val, x, transpose=tr)
    return _spmm_impl(rowptr, col, val, x)


@_csr_spmm_op.register_fake
def _csr_spmm_fake(rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t):
    tr = None if rowptr_t is None else (rowptr_t, col_t, perm_t)
    checks.check_spmm("csr_spmm", rowptr, col, val, x, transpose=tr, values=False)
    return x.new_empty((rowptr.shape[0] - 1, x.shape[1]))


@torch.library.custom_op("gnn::csr_transpose", mutates_args=(), device_types=("cpu", "cuda"))
def _csr_transpose_op(rowptr: Tensor, col: Tensor, n_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    checks.check_csr_meta("csr_transpose", rowptr, col, col.new_empty(col.shape, dtype=torch.float32),
                          col.device)
    checks.check_csr_values("csr_transpose", rowptr, col, n_cols)
    return csr_transpose_impl(rowptr, col, n_cols)


@_csr_transpose_op.register_fake
def _csr_transpose_fake(rowptr, col, n_cols):
    nnz = col.shape[0]
    return (rowptr.new_empty((n_cols + 1,)), col.new_empty((nnz,)),
            col.new_empty((nnz,), dtype=torch.int64))


def _transposed(rowptr, col, val, n_cols, symmetric, rowptr_t, col_t, perm_t):
    """(rowptr_t, col_t, val_t) of A^T, traceable (used inside backward formulas)."""
    if symmetric:
        return rowptr, col, val
    if rowptr_t is None:
        rowptr_t, col_t, perm_t = _csr_transpose_op(rowptr, col, n_cols)
    return rowptr_t, col_t, val.index_select(0, perm_t)


def _spmm_setup(ctx, inputs, output):
    rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t = inputs
    ctx.symmetric, ctx.has_t = symmetric, rowptr_t is not None
    ctx.n_cols = x.shape[0]
    saved = (rowptr, col, val) + ((rowptr_t, col_t, perm_t) if ctx.has_t else ())
    ctx.save_for_backward(*saved)


def _spmm_backward(ctx, grad):
    # y = A x  =>  dx = A^T dy  (val is a constant: no gradient)
    saved = ctx.saved_tensors
    rowptr, col, val = saved[:3]
    rt, ct, pt = saved[3:] if ctx.has_t else (None, None, None)
    rt, ct, vt = _transposed(rowptr, col, val, ctx.n_cols, ctx.symmetric, rt, ct, pt)
    dx = None
    if ctx.needs_input_grad[3]:
        dx = _csr_spmm_op(rt, ct, vt, grad.contiguous(), ctx.symmetric, None, None, None)
    return None, None, None, dx, None, None, None, None


_csr_spmm_op.register_autograd(_spmm_backward, setup_context=_spmm_setup)

# ----------------------------------------------------------------------------- ngcf_layer


def _ngcf_fwd_impl(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                   symmetric, rowptr_t, col_t, perm_t):
    tr = None if rowptr_t is None else (rowptr_t, col_t, perm_t)
    checks.check_ngcf("ngcf_layer", rowptr, col, val, e, w1, w2, bias, negative_slope, tr)
    if _runs_triton(e.device, val, e):
        from .ngcf_fused import ngcf_forward_triton

        out, s = ngcf_forward_triton(rowptr, col, val, e, w1, w2, bias, negative_slope,
                                     self_loop, save_s)
    else:
        out, s = reference.ngcf_forward(rowptr, col, val, e, w1, w2, bias, negative_slope,
                                        self_loop)
    if not save_s:
        s = e.new_empty((0, e.shape[1]))
    return out, s


@torch.library.custom_op("gnn::ngcf_layer_fwd", mutates_args=(), device_types=("cpu", "cuda"))
def _ngcf_fwd_op(rowptr: Tensor, col: Tensor, val: Tensor, e: Tensor, w1: Tensor, w2: Tensor,
                 bias: Optional[Tensor], negative_slope: float, self_loop: bool, save_s: bool,
                 symmetric: bool, rowptr_t: Optional[Tensor], col_t: Optional[Tensor],
                 perm_t: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    return _ngcf_fwd_impl(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                          symmetric, rowptr_t, col_t, perm_t)


@_ngcf_fwd_op.register_fake
def _ngcf_fwd_fake(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                   symmetric, rowptr_t, col_t, perm_t):
    tr = None if rowptr_t is None else (rowptr_t, col_t, perm_t)
    checks.check_ngcf("ngcf_layer", rowptr, col, val, e, w1, w2, bias, negative_slope, tr,
                      values=False)
    out = e.new_empty((e.shape[0], w1.shape[1]))
    s = e.new_empty((e.shape[0] if save_s else 0, e.shape[1]))
    return out, s


@torch.library.custom_op("gnn::ngcf_layer_bwd", mutates_args=(), device_types=("cpu", "cuda"))
def _ngcf_bwd_op(grad: Tensor, out: Tensor, s: Tensor, rowptr: Tensor, col: Tensor, val: Tensor,
                 rowptr_t: Tensor, col_t: Tensor, val_t: Tensor, e: Tensor, w1: Tensor,
                 w2: Tensor, negative_slope: float, self_loop: bool
                 ) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    grad = grad.contiguous()
    if _runs_triton(e.device, val, e):
        from .ngcf_fused import ngcf_backward_triton

        return ngcf_backward_triton(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e,
                                    w1, w2, negative_slope, self_loop)
    return reference.ngcf_backward(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e,
                                   w1, w2, negative_slope, self_loop)


@_ngcf_bwd_op.register_fake
def _ngcf_bwd_fake(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                   negative_slope, self_loop):
    return (torch.empty_like(e), torch.empty_like(w1), torch.empty_like(w2),
            w1.new_empty((w1.shape[1],)))


def _ngcf_setup(ctx, inputs, output):
    (rowptr, col, val, e, w1, w2, bias, slope, self_loop, save_s, symmetric,
     rowptr_t, col_t, perm_t) = inputs
    out, s = output
    ctx.slope, ctx.self_loop, ctx.symmetric = slope, self_loop, symmetric
    ctx.has_bias, ctx.has_t = bias is not None, rowptr_t is not None
    saved = (out, s, rowptr, col, val, e, w1, w2)
    saved += (rowptr_t, col_t, perm_t) if ctx.has_t else ()
    ctx.save_for_backward(*saved)


def _ngcf_backward(ctx, grad_out, grad_s):
    # grad_s is ignored: S is an internal activation, never used by the caller.
    out, s, rowptr, col, val, e, w1, w2 = ctx.saved_tensors[:8]
    rt, ct, pt = ctx.saved_tensors[8:] if ctx.has_t else (None, None, None)
    rt, ct, vt = _transposed(rowptr, col, val, e.shape[0], ctx.symmetric, rt, ct, pt)
    de, dw1, dw2, db = _ngcf_bwd_op(grad_out, out, s, rowptr, col, val, rt, ct, vt, e, w1, w2,
                                    ctx.slope, ctx.self_loop)
    return (None, None, None, de, dw1, dw2, db if ctx.has_bias else None,
            None, None, None, None, None, None, None)


_ngcf_fwd_op.register_autograd(_ngcf_backward, setup_context=_ngcf_setup)

# ----------------------------------------------------------------------------- public API


def _split_transpose(transpose):
    if transpose is None:
        return None, None, None
    if not (isinstance(transpose, (tuple, list)) and len(transpose) == 3):
        raise ValueError("argument 'transpose' must be a tuple (rowptr_t, col_t, perm_t), "
                         f"but got {type(transpose).__name__}")
    return tuple(transpose)


def _no_val_grad(fn, val):
    if isinstance(val, Tensor) and val.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{fn}(): argument 'val' is not differentiable (a fixed normalised "
                         "adjacency, possibly masked), but got a tensor that requires grad; "
                         "pass val.detach()")


def csr_spmm(rowptr: Tensor, col: Tensor, val: Tensor, x: Tensor, *, symmetric: bool = False,
             transpose=None) -> Tensor:
    """y = A x with A the CSR (rowptr, col, val) of shape (len(rowptr) - 1, len(x)).

    ``y[r] = sum_{k in [rowptr[r], rowptr[r+1])} val[k] * x[col[k]]``, accumulated in float32
    (float64 when x or val is float64: float64 always runs the exact torch path, also on the
    Triton backend), returned in x's dtype. Differentiable in
    x; the backward is ``A^T dy``: the same CSR if ``symmetric``, else
    ``transpose = (rowptr_t, col_t, perm_t)`` (see :func:`csr_transpose`) with
    ``val_t = val[perm_t]``, else the transpose is built in the backward (O(nnz log nnz)).
    """
    _no_val_grad("csr_spmm", val)
    rt, ct, pt = _split_transpose(transpose)
    return _csr_spmm_op(rowptr, col, val, x, bool(symmetric), rt, ct, pt)


def csr_transpose(rowptr: Tensor, col: Tensor, n_cols: int):
    """(rowptr_t, col_t, perm_t): the CSR of A^T, whose values are ``val[perm_t]``."""
    return _csr_transpose_op(rowptr, col, int(n_cols))


def ngcf_layer(rowptr: Tensor, col: Tensor, val: Tensor, e: Tensor, w1: Tensor, w2: Tensor,
               bias: Optional[Tensor] = None, negative_slope: float = 0.2,
               self_loop: bool = True, *, symmetric: bool = False, transpose=None) -> Tensor:
    """One NGCF layer: ``LeakyReLU((S + [self_loop] e) @ w1 + (S * e) @ w2 + bias)``, ``S = A e``.

    A is the square (N x N) CSR (rowptr, col, val), e is (N, d_in), w1 and w2 are
    (d_in, d_out), bias is (d_out,) or None; all features and weights share one dtype.
    Differentiable in e, w1, w2 and bias (DESIGN.md §4 for the backward); ``symmetric`` and
    ``transpose`` as in :func:`csr_spmm`. ``negative_slope`` must be >= 0.
    Set ``GNN_NGCF_RECOMPUTE_S=1`` to recompute S in the backward instead of saving it.
    """
    _no_val_grad("ngcf_layer", val)
    rt, ct, pt = _split_transpose(transpose)
    save_s = os.environ.get("GNN_NGCF_RECOMPUTE_S", "0") != "1"
    out, _ = _ngcf_fwd_op(rowptr, col, val, e, w1, w2, bias, float(negative_slope),
                          bool(self_loop), save_s, bool(symmetric), rt, ct, pt)
    return out
