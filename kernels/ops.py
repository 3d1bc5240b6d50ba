"""The public ops and their contracts (``csr_spmm``, ``ngcf_layer``, ``csr_transpose``), each
registered with torch.library (schema, CPU/CUDA impls, fake impls, autograd) so that
``torch.compile(model, fullgraph=True)`` sees it as one opaque node.

Registered ops (namespace ``gnn``; the public functions below are their only callers):
  csr_spmm(rowptr, col, val, x, symmetric, rowptr_t?, col_t?, perm_t?, backend, long_threshold)
  csr_transpose(rowptr, col, n_cols)
  ngcf_layer_fwd(rowptr, col, val, e, w1, w2, bias?, negative_slope, self_loop, save_s,
                 symmetric, rowptr_t?, col_t?, perm_t?, backend, long_threshold) -> (out, S)
  ngcf_layer_bwd(grad, out, S, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                 negative_slope, self_loop, backend, long_threshold) -> (de, dw1, dw2, db)
S is empty when not saved. The transpose arguments of the forward ops are kept for the
backward only.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import checks, defaults, reference
from .backend import check_backend, get_backend
from .transpose import csr_transpose_impl

# ----------------------------------------------------------------------------- dispatch


def _runs_triton(device, backend, *tensors) -> bool:
    """The backend's choice, except that float64 always takes the exact torch path (the Triton
    kernels accumulate in float32: a float64 caller, e.g. gradcheck, expects float64 math)."""
    return (get_backend(device, backend) == "triton"
            and all(t.dtype != torch.float64 for t in tensors))


def _spmm_impl(rowptr, col, val, x, backend, long_threshold):
    if _runs_triton(x.device, backend, val, x):
        from .spmm import spmm_triton

        return spmm_triton(rowptr, col, val, x, long_threshold=long_threshold)
    return reference.spmm(rowptr, col, val, x)


def _transpose_arg(rowptr_t, col_t, perm_t):
    return None if rowptr_t is None else (rowptr_t, col_t, perm_t)


# ----------------------------------------------------------------------------- csr_spmm


@torch.library.custom_op("gnn::csr_spmm", mutates_args=(), device_types=("cpu", "cuda"))
def _csr_spmm_op(rowptr: Tensor, col: Tensor, val: Tensor, x: Tensor, symmetric: bool,
                 rowptr_t: Optional[Tensor], col_t: Optional[Tensor], perm_t: Optional[Tensor],
                 backend: str, long_threshold: int) -> Tensor:
    checks.check_spmm("csr_spmm", rowptr, col, val, x, _transpose_arg(rowptr_t, col_t, perm_t))
    return _spmm_impl(rowptr, col, val, x, backend, long_threshold)


@_csr_spmm_op.register_fake
def _csr_spmm_fake(rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t, backend,
                   long_threshold):
    checks.check_spmm("csr_spmm", rowptr, col, val, x, _transpose_arg(rowptr_t, col_t, perm_t),
                      values=False)
    return x.new_empty((rowptr.shape[0] - 1, x.shape[1]))


@torch.library.custom_op("gnn::csr_transpose", mutates_args=(), device_types=("cpu", "cuda"))
def _csr_transpose_op(rowptr: Tensor, col: Tensor, n_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    checks.check_csr_meta("csr_transpose", rowptr, col, col.new_empty(col.shape, dtype=torch.float32),
                          col.device)
    checks.check_csr_values("csr_transpose", rowptr, col, n_cols)
    transpose = csr_transpose_impl(rowptr, col, n_cols)
    checks.remember_transpose(transpose, rowptr.shape[0] - 1, col.shape[0])
    return transpose


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
    rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t, backend, long_threshold = inputs
    ctx.symmetric, ctx.has_t, ctx.n_cols = symmetric, rowptr_t is not None, x.shape[0]
    ctx.backend, ctx.long_threshold = backend, long_threshold
    saved = (rowptr, col, val) + ((rowptr_t, col_t, perm_t) if ctx.has_t else ())
    ctx.save_for_backward(*saved)


def _spmm_backward(ctx, grad):
    saved = ctx.saved_tensors
    rowptr, col, val = saved[:3]
    rt, ct, pt = saved[3:] if ctx.has_t else (None, None, None)
    rt, ct, vt = _transposed(rowptr, col, val, ctx.n_cols, ctx.symmetric, rt, ct, pt)
    dx = None
    if ctx.needs_input_grad[3]:
        dx = _csr_spmm_op(rt, ct, vt, grad.contiguous(), ctx.symmetric, None, None, None,
                          ctx.backend, ctx.long_threshold)
    return (None,) * 3 + (dx,) + (None,) * 6


_csr_spmm_op.register_autograd(_spmm_backward, setup_context=_spmm_setup)

# ----------------------------------------------------------------------------- ngcf_layer


@torch.library.custom_op("gnn::ngcf_layer_fwd", mutates_args=(), device_types=("cpu", "cuda"))
def _ngcf_fwd_op(rowptr: Tensor, col: Tensor, val: Tensor, e: Tensor, w1: Tensor, w2: Tensor,
                 bias: Optional[Tensor], negative_slope: float, self_loop: bool, save_s: bool,
                 symmetric: bool, rowptr_t: Optional[Tensor], col_t: Optional[Tensor],
                 perm_t: Optional[Tensor], backend: str, long_threshold: int
                 ) -> Tuple[Tensor, Tensor]:
    checks.check_ngcf("ngcf_layer", rowptr, col, val, e, w1, w2, bias, negative_slope,
                      _transpose_arg(rowptr_t, col_t, perm_t))
    if _runs_triton(e.device, backend, val, e):
        from .ngcf_fused import ngcf_forward_triton

        out, s = ngcf_forward_triton(rowptr, col, val, e, w1, w2, bias, negative_slope,
                                     self_loop, save_s, long_threshold=long_threshold)
    else:
        out, s = reference.ngcf_forward(rowptr, col, val, e, w1, w2, bias, negative_slope,
                                        self_loop, save_s=save_s)
    if not save_s:
        s = e.new_empty((0, e.shape[1]))
    return out, s


@_ngcf_fwd_op.register_fake
def _ngcf_fwd_fake(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                   symmetric, rowptr_t, col_t, perm_t, backend, long_threshold):
    checks.check_ngcf("ngcf_layer", rowptr, col, val, e, w1, w2, bias, negative_slope,
                      _transpose_arg(rowptr_t, col_t, perm_t), values=False)
    out = e.new_empty((e.shape[0], w1.shape[1]))
    s = e.new_empty((e.shape[0] if save_s else 0, e.shape[1]))
    return out, s


@torch.library.custom_op("gnn::ngcf_layer_bwd", mutates_args=(), device_types=("cpu", "cuda"))
def _ngcf_bwd_op(grad: Tensor, out: Tensor, s: Tensor, rowptr: Tensor, col: Tensor, val: Tensor,
                 rowptr_t: Tensor, col_t: Tensor, val_t: Tensor, e: Tensor, w1: Tensor,
                 w2: Tensor, negative_slope: float, self_loop: bool, backend: str,
                 long_threshold: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    grad = grad.contiguous()
    if _runs_triton(e.device, backend, val, e):
        from .ngcf_fused import ngcf_backward_triton

        return ngcf_backward_triton(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e,
                                    w1, w2, negative_slope, self_loop,
                                    long_threshold=long_threshold)
    return reference.ngcf_backward(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e,
                                   w1, w2, negative_slope, self_loop)


@_ngcf_bwd_op.register_fake
def _ngcf_bwd_fake(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                   negative_slope, self_loop, backend, long_threshold):
    return (torch.empty_like(e), torch.empty_like(w1), torch.empty_like(w2),
            w1.new_empty((w1.shape[1],)))


def _ngcf_setup(ctx, inputs, output):
    (rowptr, col, val, e, w1, w2, bias, slope, self_loop, save_s, symmetric,
     rowptr_t, col_t, perm_t, backend, long_threshold) = inputs
    out, s = output
    ctx.slope, ctx.self_loop, ctx.symmetric = slope, self_loop, symmetric
    ctx.backend, ctx.long_threshold = backend, long_threshold
    ctx.has_bias, ctx.has_t = bias is not None, rowptr_t is not None
    saved = (out, s, rowptr, col, val, e, w1, w2)
    saved += (rowptr_t, col_t, perm_t) if ctx.has_t else ()
    ctx.save_for_backward(*saved)
    # S is never differentiated: without this, autograd fills an N x d zero gradient for it
    # in every backward.
    ctx.set_materialize_grads(False)


def _ngcf_backward(ctx, grad_out, grad_s):
    # grad_s is ignored: S is an internal activation, never used by the caller. Grads are
    # not materialised (_ngcf_setup), so an undefined grad_out arrives as None.
    if grad_out is None:
        return (None,) * 16
    out, s, rowptr, col, val, e, w1, w2 = ctx.saved_tensors[:8]
    rt, ct, pt = ctx.saved_tensors[8:] if ctx.has_t else (None, None, None)
    rt, ct, vt = _transposed(rowptr, col, val, e.shape[0], ctx.symmetric, rt, ct, pt)
    de, dw1, dw2, db = _ngcf_bwd_op(grad_out, out, s, rowptr, col, val, rt, ct, vt, e, w1, w2,
                                    ctx.slope, ctx.self_loop, ctx.backend, ctx.long_threshold)
    return (None,) * 3 + (de, dw1, dw2, db if ctx.has_bias else None) + (None,) * 9


_ngcf_fwd_op.register_autograd(_ngcf_backward, setup_context=_ngcf_setup)

# ----------------------------------------------------------------------------- public API


def _split_transpose(fn, transpose):
    if transpose is None:
        return None, None, None
    if not (isinstance(transpose, (tuple, list)) and len(transpose) == 3):
        raise ValueError(f"{fn}(): argument 'transpose' must be a tuple (rowptr_t, col_t, "
                         f"perm_t), but got {type(transpose).__name__}")
    return tuple(transpose)


def _no_val_grad(fn, val):
    if isinstance(val, Tensor) and val.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{fn}(): argument 'val' is not differentiable (a fixed normalised "
                         "adjacency, possibly masked), but got a tensor that requires grad; "
                         "pass val.detach()")


def _check_long_threshold(fn, long_threshold) -> int:
    t = defaults.long_threshold if long_threshold is None else long_threshold
    if isinstance(t, bool) or not isinstance(t, int) or t < 1:
        raise ValueError(f"{fn}(): argument 'long_threshold' must be an int >= 1, but got {t!r}")
    return t


def csr_spmm(rowptr: Tensor, col: Tensor, val: Tensor, x: Tensor, *, symmetric: bool = False,
             transpose=None, backend: Optional[str] = None,
             long_threshold: Optional[int] = None) -> Tensor:
    """``y = A x``, A the (n_rows x n_cols) CSR matrix (rowptr, col, val) (docs/DESIGN.md §4).

    ``y[r] = sum_{k in [rowptr[r], rowptr[r+1])} val[k] * x[col[k]]`` (duplicates add up).

    * rowptr: (n_rows + 1,) int32/int64, rowptr[0] = 0, non-decreasing, rowptr[-1] = nnz;
      col: (nnz,) int32/int64 in [0, n_cols); val: (nnz,) float32/float64;
      x: (n_cols, d) float32/bfloat16/float16/float64. All contiguous, on one device.
    * Returns (n_rows, d) in x's dtype, accumulated in float32; float64 (x or val) runs the
      exact torch path on every backend and accumulates in float64.
    * Differentiable in x only: ``dx = A^T dy``. A^T is the same CSR if ``symmetric``, else
      ``transpose = (rowptr_t, col_t, perm_t)`` (:func:`csr_transpose`) with
      ``val_t = val[perm_t]``, else it is built in every backward (O(nnz log nnz); on Triton
      also its long-row schedule, a host-device sync). ``val`` is a constant (a val that
      requires grad is refused).
    * ``backend``: ``auto`` | ``triton`` | ``torch`` (kernels/backend.py); ``long_threshold``:
      on Triton, rows with more nonzeros are split into segments of that many (kernels/spmm.py).
      None: ``gnn.kernels.defaults`` (from the environment at import).
    * Index values are checked once per CSR (kernels/checks.py): after the first call on a
      graph, calls with ``symmetric`` or ``transpose`` and any ``val`` do no host-device sync
      (as capturing a training step in a CUDA graph requires). The Triton path is deterministic.
    """
    _no_val_grad("csr_spmm", val)
    backend = check_backend("csr_spmm", backend)
    long_threshold = _check_long_threshold("csr_spmm", long_threshold)
    rt, ct, pt = _split_transpose("csr_spmm", transpose)
    return _csr_spmm_op(rowptr, col, val, x, bool(symmetric), rt, ct, pt, backend, long_threshold)


def csr_transpose(rowptr: Tensor, col: Tensor, n_cols: int):
    """(rowptr_t, col_t, perm_t): the CSR of A^T, whose values are ``val[perm_t]``
    (perm_t int64; rows of A^T list their columns in increasing order)."""
    return _csr_transpose_op(rowptr, col, int(n_cols))


def ngcf_layer(rowptr: Tensor, col: Tensor, val: Tensor, e: Tensor, w1: Tensor, w2: Tensor,
               bias: Optional[Tensor] = None, negative_slope: float = 0.2,
               self_loop: bool = True, *, symmetric: bool = False, transpose=None,
               backend: Optional[str] = None, long_threshold: Optional[int] = None,
               recompute_s: Optional[bool] = None) -> Tensor:
    """One NGCF layer (docs/DESIGN.md §2, §4), fused on the Triton backend::

        S = A e
        Z = (S + [self_loop] e) @ w1 + (S * e) @ w2 + bias
        out = LeakyReLU(Z, negative_slope)

    * A: the square (N x N) CSR (rowptr, col, val), as in :func:`csr_spmm`; e: (N, d_in);
      w1, w2: (d_in, d_out); bias: (d_out,) or None. e, w1, w2 and bias share one dtype
      (float32/bfloat16/float16/float64). Returns (N, d_out) in e's dtype, accumulated in
      float32; float64 (e or val) runs the exact torch path on every backend.
    * ``negative_slope`` >= 0 (the backward reads the sign of Z from out: Z > 0 <=> out > 0).
    * Differentiable in e, w1, w2, bias; with dZ = grad * LeakyReLU'(Z)::

          dU1 = dZ w1^T,  dU2 = dZ w2^T
          de  = [self_loop] dU1 + dU2 * S + A^T (dU1 + dU2 * e)
          dw1 = (S + [self_loop] e)^T dZ,  dw2 = (S * e)^T dZ,  dbias = sum_rows dZ

      A^T from ``symmetric`` / ``transpose`` as in :func:`csr_spmm`.
    * ``recompute_s``: False saves S (N x d_in) for the backward, True recomputes it (less
      memory, one more gather). ``backend``, ``long_threshold`` as in :func:`csr_spmm`. None:
      ``gnn.kernels.defaults``.
    """
    _no_val_grad("ngcf_layer", val)
    backend = check_backend("ngcf_layer", backend)
    long_threshold = _check_long_threshold("ngcf_layer", long_threshold)
    recompute_s = defaults.recompute_s if recompute_s is None else bool(recompute_s)
    rt, ct, pt = _split_transpose("ngcf_layer", transpose)
    out, _ = _ngcf_fwd_op(rowptr, col, val, e, w1, w2, bias, float(negative_slope),
                          bool(self_loop), not recompute_s, bool(symmetric), rt, ct, pt,
                          backend, long_threshold)
    return out
