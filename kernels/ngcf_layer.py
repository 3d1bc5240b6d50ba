"""The op ``ngcf_layer``, one NGCF layer: its contract (the docstring of :func:`ngcf_layer`),
its torch.library registration, its dispatch (:func:`implementation`) and the host code of its
composed path. The math of the layer's dense part is kernels/ngcf_step.py; the implementations
beside this file are the fused Triton kernels (ngcf_triton.py) and the CPU layer by row blocks
(ngcf_cpu.py).

Registered (namespace ``gnn``; :func:`ngcf_layer` is their only caller)::

  ngcf_layer_fwd(rowptr, col, val, e, w1, w2, bias?, negative_slope, self_loop, save_s,
                 symmetric, rowptr_t?, col_t?, perm_t?, backend, long_threshold) -> (out, S)
  ngcf_layer_bwd(grad, out, S, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                 negative_slope, self_loop, backend, long_threshold) -> (de, dw1, dw2, db)

S is empty when not saved. The transpose arguments of the forward op are kept for the backward.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import Tensor

from . import checks, defaults, ngcf_step
from .backend import check_backend, get_backend
from .csr_spmm import (check_long_threshold, refuse_val_grad, spmm, split_transpose,
                       transpose_arg, transposed)

FUSED_MAX_DIM = 128  # the largest d_in and d_out the fused Triton kernels take (ngcf_triton.py)


def implementation(device: torch.device, backend: str, dtype: torch.dtype, val_dtype: torch.dtype,
                   n: int, d_in: int, d_out: int) -> str:
    """Which code runs the layer (the one place that decides):

    * ``"triton_fused"``: the backend resolves to Triton, no float64, n > 0 and d_in, d_out <=
      FUSED_MAX_DIM: the fused kernels (ngcf_triton.py).
    * ``"triton_composed"``: the backend resolves to Triton otherwise (no float64): the Triton
      SpMM, then the dense step (ngcf_step.py) in torch.
    * ``"cpu_blocks"``: float32 on the CPU, n > 0: by row blocks of
      ``gnn.kernels.defaults.cpu_block_rows`` that stay in cache (ngcf_cpu.py).
    * ``"torch_composed"``: everything else (float64 on any device: exact; ``backend="torch"``
      on CUDA; bfloat16 / float16 on the CPU): :func:`spmm`, then the dense step.
    """
    float64 = torch.float64 in (dtype, val_dtype)
    if get_backend(device, backend) == "triton" and not float64:
        fits = n > 0 and 1 <= d_in <= FUSED_MAX_DIM and 1 <= d_out <= FUSED_MAX_DIM
        return "triton_fused" if fits else "triton_composed"
    if device.type == "cpu" and dtype == torch.float32 and val_dtype == torch.float32 and n > 0:
        return "cpu_blocks"
    return "torch_composed"


def _acc(*ts) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


def composed_forward(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, *, backend,
                     long_threshold):
    """(out, S), both in e's dtype: ``S = A e`` by :func:`spmm`, then the dense step in the
    accumulation dtype (float32, or float64)."""
    acc = _acc(val, e)
    s = spmm(rowptr, col, val, e, backend=backend, long_threshold=long_threshold, out_dtype=acc)
    out = ngcf_step.forward(s, e.to(acc), w1.to(acc), w2.to(acc),
                            None if bias is None else bias.to(acc), negative_slope, self_loop)
    return out.to(e.dtype), s.to(e.dtype)


def composed_backward(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                      negative_slope, self_loop, *, backend, long_threshold):
    """(de, dw1, dw2, db): the dense step's backward, then ``de = dE_local + Aᵀ dS``;
    an empty S is recomputed as ``A e``."""
    acc = _acc(val_t, e)
    spmm_args = dict(backend=backend, long_threshold=long_threshold)
    if s.shape[0] != e.shape[0]:
        s = spmm(rowptr, col, val, e, out_dtype=acc, **spmm_args)
    ds, de_local, dw1, dw2, db = ngcf_step.backward(
        grad.to(acc), out.to(acc), s.to(acc), e.to(acc), w1.to(acc), w2.to(acc), negative_slope,
        self_loop)
    de = spmm(rowptr_t, col_t, val_t, ds, add=de_local, out_dtype=e.dtype, **spmm_args)
    return de, dw1.to(w1.dtype), dw2.to(w2.dtype), db.to(w1.dtype)


# ----------------------------------------------------------------------------- the registered ops


@torch.library.custom_op("gnn::ngcf_layer_fwd", mutates_args=(), device_types=("cpu", "cuda"))
def _ngcf_fwd_op(rowptr: Tensor, col: Tensor, val: Tensor, e: Tensor, w1: Tensor, w2: Tensor,
                 bias: Optional[Tensor], negative_slope: float, self_loop: bool, save_s: bool,
                 symmetric: bool, rowptr_t: Optional[Tensor], col_t: Optional[Tensor],
                 perm_t: Optional[Tensor], backend: str, long_threshold: int
                 ) -> Tuple[Tensor, Tensor]:
    checks.check_ngcf("ngcf_layer", rowptr, col, val, e, w1, w2, bias, negative_slope,
                      transpose_arg(rowptr_t, col_t, perm_t))
    args = (rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop)
    kind = implementation(e.device, backend, e.dtype, val.dtype, *e.shape, w1.shape[1])
    if kind == "triton_fused":
        from .ngcf_triton import ngcf_forward_triton

        out, s = ngcf_forward_triton(*args, save_s, long_threshold=long_threshold)
    elif kind == "cpu_blocks":
        from .ngcf_cpu import ngcf_forward_blocks

        out, s = ngcf_forward_blocks(*args, save_s)
    else:
        out, s = composed_forward(*args, backend=backend, long_threshold=long_threshold)
    if not save_s:
        s = e.new_empty((0, e.shape[1]))
    return out, s


@_ngcf_fwd_op.register_fake
def _ngcf_fwd_fake(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                   symmetric, rowptr_t, col_t, perm_t, backend, long_threshold):
    checks.check_ngcf("ngcf_layer", rowptr, col, val, e, w1, w2, bias, negative_slope,
                      transpose_arg(rowptr_t, col_t, perm_t), values=False)
    out = e.new_empty((e.shape[0], w1.shape[1]))
    s = e.new_empty((e.shape[0] if save_s else 0, e.shape[1]))
    return out, s


@torch.library.custom_op("gnn::ngcf_layer_bwd", mutates_args=(), device_types=("cpu", "cuda"))
def _ngcf_bwd_op(grad: Tensor, out: Tensor, s: Tensor, rowptr: Tensor, col: Tensor, val: Tensor,
                 rowptr_t: Tensor, col_t: Tensor, val_t: Tensor, e: Tensor, w1: Tensor,
                 w2: Tensor, negative_slope: float, self_loop: bool, backend: str,
                 long_threshold: int) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    args = (grad.contiguous(), out, s, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
            negative_slope, self_loop)
    kind = implementation(e.device, backend, e.dtype, val_t.dtype, *e.shape, w1.shape[1])
    if kind == "triton_fused":
        from .ngcf_triton import ngcf_backward_triton

        return ngcf_backward_triton(*args, long_threshold=long_threshold)
    if kind == "cpu_blocks":
        from .ngcf_cpu import ngcf_backward_blocks

        return ngcf_backward_blocks(*args)
    return composed_backward(*args, backend=backend, long_threshold=long_threshold)


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
    rt, ct, vt = transposed(rowptr, col, val, e.shape[0], ctx.symmetric, rt, ct, pt)
    de, dw1, dw2, db = _ngcf_bwd_op(grad_out, out, s, rowptr, col, val, rt, ct, vt, e, w1, w2,
                                    ctx.slope, ctx.self_loop, ctx.backend, ctx.long_threshold)
    return (None,) * 3 + (de, dw1, dw2, db if ctx.has_bias else None) + (None,) * 9


_ngcf_fwd_op.register_autograd(_ngcf_backward, setup_context=_ngcf_setup)

# ----------------------------------------------------------------------------- public API


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
      ``gnn.kernels.defaults``. Which code runs: :func:`implementation`.
    """
    refuse_val_grad("ngcf_layer", val)
    backend = check_backend("ngcf_layer", backend)
    long_threshold = check_long_threshold("ngcf_layer", long_threshold)
    recompute_s = defaults.recompute_s if recompute_s is None else bool(recompute_s)
    rt, ct, pt = split_transpose("ngcf_layer", transpose)
    out, _ = _ngcf_fwd_op(rowptr, col, val, e, w1, w2, bias, float(negative_slope),
                          bool(self_loop), not recompute_s, bool(symmetric), rt, ct, pt,
                          backend, long_threshold)
    return out
