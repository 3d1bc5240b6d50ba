"""The op ``csr_spmm``, ``y = A x`` for a CSR matrix A: its contract (the docstring of
:func:`csr_spmm`), its torch.library registration (``gnn::csr_spmm``: CPU/CUDA impls, fake impl,
autograd), its dispatch (:func:`implementation`) and the host code of its torch paths. The
Triton kernels are in spmm_triton.py.

Registered: ``csr_spmm(rowptr, col, val, x, symmetric, rowptr_t?, col_t?, perm_t?, backend,
long_threshold)``; :func:`csr_spmm` is its only caller. The transpose arguments are kept for
the backward only.
"""
from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from . import checks, defaults
from .backend import check_backend, get_backend
from .csr_sddmm import csr_sddmm
from .csr_transpose import csr_transpose_op
from .tensor_cache import TensorCache

EMBEDDING_BAG_MAX_NNZ = 2**31 - 1  # embedding_bag's offsets are int32-safe only below this


def implementation(device: torch.device, backend: str, val_dtype: torch.dtype,
                   x_dtype: torch.dtype, nnz: int) -> str:
    """Which code computes ``A x`` (the one place that decides):

    * ``"triton"``: the backend resolves to Triton (CUDA, or the interpreter on request) and
      neither ``val`` nor ``x`` is float64 (the kernels accumulate in float32; a float64
      caller, e.g. gradcheck, gets float64 math instead): spmm_triton.py.
    * ``"embedding_bag"``: the CPU, float32 accumulation, nnz <= EMBEDDING_BAG_MAX_NNZ: a
      weighted gather-reduce, ``F.embedding_bag(mode="sum")`` with ``val`` as per-sample
      weights over each row's bag ``[rowptr[r], rowptr[r+1])`` (the same sum, in CSR order).
    * ``"torch_csr"``: everything else: float64 (exact) on any device, ``backend="torch"`` on
      CUDA (cuSPARSE: the GPU baseline), CPU graphs above the embedding_bag limit.
    """
    float64 = torch.float64 in (val_dtype, x_dtype)
    if get_backend(device, backend) == "triton" and not float64:
        return "triton"
    if device.type == "cpu" and not float64 and nnz <= EMBEDDING_BAG_MAX_NNZ:
        return "embedding_bag"
    return "torch_csr"


_INDEX_COPIES = TensorCache()  # rowptr in the column dtype, made once per graph


def _rowptr_like(rowptr, col):
    """rowptr in col's dtype (both torch kernels take one index dtype), converted once per
    graph; never col (nnz entries)."""
    if rowptr.dtype == col.dtype:
        return rowptr
    hit = _INDEX_COPIES.get((rowptr,), (col.dtype,))
    if hit is None:
        hit = rowptr.to(col.dtype)
        _INDEX_COPIES.put((rowptr,), hit, (col.dtype,))
    return hit


def _accumulation_dtype(*ts) -> torch.dtype:
    return torch.float64 if any(t.dtype == torch.float64 for t in ts) else torch.float32


def spmm(rowptr, col, val, x, *, backend: str, long_threshold: int, out_dtype=None, add=None):
    """``A x (+ add)`` in ``out_dtype`` (default x's) by :func:`implementation`'s choice,
    accumulated in float32 (float64 when val or x is). Not differentiable itself: the ops'
    backward formulas call it for ``Aᵀ dy``; ngcf_layer.py composes its layer from it."""
    kind = implementation(x.device, backend, val.dtype, x.dtype, col.shape[0])
    out_dtype = out_dtype or x.dtype
    if kind == "triton":
        from .spmm_triton import spmm_triton

        return spmm_triton(rowptr, col, val, x, add=add, out_dtype=out_dtype,
                           long_threshold=long_threshold)
    acc = _accumulation_dtype(val, x)
    n_rows, n_cols, d = rowptr.shape[0] - 1, x.shape[0], x.shape[1]
    if col.numel() == 0 or n_rows == 0 or d == 0:
        y = torch.zeros(n_rows, d, dtype=acc, device=x.device)
    elif kind == "embedding_bag":
        # x and val detached: an input that requires grad makes embedding_bag keep its own
        # backward bookkeeping (slower); the ops differentiate SpMM themselves.
        y = F.embedding_bag(col, x.detach().to(acc), _rowptr_like(rowptr, col), mode="sum",
                            per_sample_weights=val.detach().to(acc), include_last_offset=True)
    else:
        with warnings.catch_warnings():  # "Sparse CSR tensor support is in beta state"
            warnings.simplefilter("ignore", UserWarning)
            # no copy, no invariant check: the inputs were validated by checks.py
            a = torch.sparse_csr_tensor(_rowptr_like(rowptr, col), col, val.to(acc),
                                        (n_rows, n_cols), check_invariants=False)
        y = a @ x.to(acc)
    if add is not None:
        y = y.add_(add if add.dtype == acc else add.to(acc))
    return y.to(out_dtype)


# ----------------------------------------------------------------------------- the registered op


def transpose_arg(rowptr_t, col_t, perm_t):
    return None if rowptr_t is None else (rowptr_t, col_t, perm_t)


def transposed(rowptr, col, val, n_cols, symmetric, rowptr_t, col_t, perm_t):
    """(rowptr_t, col_t, val_t) of Aᵀ, traceable (used inside backward formulas)."""
    if symmetric:
        return rowptr, col, val
    if rowptr_t is None:
        rowptr_t, col_t, perm_t = csr_transpose_op(rowptr, col, n_cols)
    return rowptr_t, col_t, val.index_select(0, perm_t)


@torch.library.custom_op("gnn::csr_spmm", mutates_args=(), device_types=("cpu", "cuda"))
def _csr_spmm_op(rowptr: Tensor, col: Tensor, val: Tensor, x: Tensor, symmetric: bool,
                 rowptr_t: Optional[Tensor], col_t: Optional[Tensor], perm_t: Optional[Tensor],
                 backend: str, long_threshold: int) -> Tensor:
    checks.check_spmm("csr_spmm", rowptr, col, val, x, transpose_arg(rowptr_t, col_t, perm_t))
    return spmm(rowptr, col, val, x, backend=backend, long_threshold=long_threshold)


@_csr_spmm_op.register_fake
def _csr_spmm_fake(rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t, backend,
                   long_threshold):
    checks.check_spmm("csr_spmm", rowptr, col, val, x, transpose_arg(rowptr_t, col_t, perm_t),
                      values=False)
    return x.new_empty((rowptr.shape[0] - 1, x.shape[1]))


def _spmm_setup(ctx, inputs, output):
    rowptr, col, val, x, symmetric, rowptr_t, col_t, perm_t, backend, long_threshold = inputs
    ctx.symmetric, ctx.has_t, ctx.n_cols = symmetric, rowptr_t is not None, x.shape[0]
    ctx.backend, ctx.long_threshold = backend, long_threshold
    # x is kept only when val's gradient (an SDDMM with x) will be asked for
    keep_x = x if ctx.needs_input_grad[2] else x.new_empty((0, x.shape[1]))
    saved = (rowptr, col, val, keep_x) + ((rowptr_t, col_t, perm_t) if ctx.has_t else ())
    ctx.save_for_backward(*saved)


def _spmm_backward(ctx, grad):
    """``dx = Aᵀ dy`` (an SpMM on the transpose), ``dval[k] = ⟨dy[row(k)], x[col[k]]⟩`` (an
    SDDMM on A's structure, in val's dtype)."""
    saved = ctx.saved_tensors
    rowptr, col, val, x = saved[:4]
    rt, ct, pt = saved[4:] if ctx.has_t else (None, None, None)
    grad = grad.contiguous()
    dx = dval = None
    if ctx.needs_input_grad[3]:
        rt, ct, vt = transposed(rowptr, col, val, ctx.n_cols, ctx.symmetric, rt, ct, pt)
        dx = _csr_spmm_op(rt, ct, vt, grad, ctx.symmetric, None, None, None, ctx.backend,
                          ctx.long_threshold)
    if ctx.needs_input_grad[2]:
        dval = csr_sddmm(rowptr, col, grad, x, backend=ctx.backend).to(val.dtype)
    return (None, None, dval, dx) + (None,) * 6


_csr_spmm_op.register_autograd(_spmm_backward, setup_context=_spmm_setup)

# ----------------------------------------------------------------------------- public API


def split_transpose(fn, transpose):
    if transpose is None:
        return None, None, None
    if not (isinstance(transpose, (tuple, list)) and len(transpose) == 3):
        raise ValueError(f"{fn}(): argument 'transpose' must be a tuple (rowptr_t, col_t, "
                         f"perm_t), but got {type(transpose).__name__}")
    return tuple(transpose)


def refuse_val_grad(fn, val):
    if isinstance(val, Tensor) and val.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{fn}(): argument 'val' is not differentiable here (the layer's "
                         "adjacency is fixed), but got a tensor that requires grad; pass "
                         "val.detach(), or compose the layer from gnn.kernels.csr_spmm (which "
                         "is differentiable in val) and gnn.kernels.ngcf_dense_step")


def check_long_threshold(fn, long_threshold) -> int:
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
    * Differentiable in x: ``dx = A^T dy``. A^T is the same CSR if ``symmetric``, else
      ``transpose = (rowptr_t, col_t, perm_t)`` (:func:`csr_transpose`) with
      ``val_t = val[perm_t]``, else it is built in every backward (O(nnz log nnz); on Triton
      also its long-row schedule, a host-device sync).
    * Differentiable in val (learnable edge weights): ``dval[k] = ⟨dy[row(k)], x[col[k]]⟩``,
      an SDDMM (:func:`gnn.kernels.csr_sddmm`) on A's own structure; x is kept for the
      backward only when val requires grad.
    * ``backend``: ``auto`` | ``triton`` | ``torch`` (kernels/backend.py); ``long_threshold``:
      on Triton, rows with more nonzeros are split into segments of that many
      (kernels/spmm_triton.py). None: ``gnn.kernels.defaults`` (from the environment at import).
      Which code runs: :func:`implementation`.
    * Index values are checked once per CSR (kernels/checks.py): after the first call on a
      graph, calls with ``symmetric`` or ``transpose`` and any ``val`` do no host-device sync
      (as capturing a training step in a CUDA graph requires). The Triton path is deterministic.
    """
    backend = check_backend("csr_spmm", backend)
    long_threshold = check_long_threshold("csr_spmm", long_threshold)
    rt, ct, pt = split_transpose("csr_spmm", transpose)
    return _csr_spmm_op(rowptr, col, val, x, bool(symmetric), rt, ct, pt, backend, long_threshold)
