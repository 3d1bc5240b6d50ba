"""The op ``csr_sddmm``, a sampled dense-dense product on a CSR structure: its contract (the
docstring of :func:`csr_sddmm`), its torch.library registration (``gnn::csr_sddmm``: CPU/CUDA
impls, fake impl, autograd), its dispatch (:func:`implementation`) and its torch path. The
Triton kernel is in sddmm_triton.py.

It is the gradient of :func:`gnn.kernels.csr_spmm` in ``val``
(``dval[k] = ⟨dy[row(k)], x[col[k]]⟩``) and, on its own, the edge scores of attention-style
models (``⟨q_u, k_i⟩`` on every edge).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import checks
from .backend import check_backend, get_backend
from .csr_transpose import csr_transpose_op
from .tensor_cache import TensorCache

CHUNK_ENTRIES = 1 << 15  # entries per step of the torch path: two (chunk x d) temporaries


def implementation(device: torch.device, backend: str, a_dtype: torch.dtype,
                   b_dtype: torch.dtype) -> str:
    """Which code computes the products (the one place that decides):

    * ``"triton"``: the backend resolves to Triton and neither input is float64
      (sddmm_triton.py; float32 accumulation).
    * ``"torch_chunks"``: everything else (the CPU; float64 anywhere, exact): gathers and a
      row-wise dot over ``CHUNK_ENTRIES`` entries at a time, so memory stays O(chunk · d).
    """
    if get_backend(device, backend) == "triton" and torch.float64 not in (a_dtype, b_dtype):
        return "triton"
    return "torch_chunks"


_ENTRY_ROWS = TensorCache()


def _entry_rows(rowptr: Tensor, nnz: int) -> Tensor:
    """The row of each entry (int64), once per graph."""
    hit = _ENTRY_ROWS.get((rowptr,), (nnz,))
    if hit is None:
        counts = torch.diff(rowptr).to(torch.int64)
        hit = torch.repeat_interleave(torch.arange(rowptr.shape[0] - 1, device=rowptr.device),
                                      counts, output_size=nnz)
        _ENTRY_ROWS.put((rowptr,), hit, (nnz,))
    return hit


def output_dtype(a: Tensor, b: Tensor) -> torch.dtype:
    return torch.float64 if torch.float64 in (a.dtype, b.dtype) else torch.float32


def sddmm(rowptr, col, a, b, *, backend: str) -> Tensor:
    """``out[k] = ⟨a[row(k)], b[col[k]]⟩`` by :func:`implementation`'s choice; not
    differentiable itself."""
    nnz = col.shape[0]
    if implementation(a.device, backend, a.dtype, b.dtype) == "triton":
        from .sddmm_triton import sddmm_triton

        return sddmm_triton(rowptr, col, a, b)
    acc = output_dtype(a, b)
    out = torch.empty(nnz, dtype=acc, device=a.device)
    rows = _entry_rows(rowptr, nnz)
    for k0 in range(0, nnz, CHUNK_ENTRIES):
        k1 = min(nnz, k0 + CHUNK_ENTRIES)
        ar = a.index_select(0, rows[k0:k1]).to(acc)
        bc = b.index_select(0, col[k0:k1]).to(acc)
        torch.sum(ar.mul_(bc), dim=1, out=out[k0:k1])
    return out


@torch.library.custom_op("gnn::csr_sddmm", mutates_args=(), device_types=("cpu", "cuda"))
def _csr_sddmm_op(rowptr: Tensor, col: Tensor, a: Tensor, b: Tensor, backend: str) -> Tensor:
    checks.check_sddmm("csr_sddmm", rowptr, col, a, b)
    return sddmm(rowptr, col, a, b, backend=backend)


@_csr_sddmm_op.register_fake
def _csr_sddmm_fake(rowptr, col, a, b, backend):
    checks.check_sddmm("csr_sddmm", rowptr, col, a, b, values=False)
    return a.new_empty((col.shape[0],), dtype=output_dtype(a, b))


def _setup(ctx, inputs, output):
    rowptr, col, a, b, backend = inputs
    ctx.backend = backend
    ctx.save_for_backward(rowptr, col, a, b)


def _backward(ctx, grad):
    """With G the CSR of the structure holding ``grad``: ``da = G b``, ``db = Gᵀ a``."""
    from .csr_spmm import csr_spmm  # csr_spmm's own backward imports this module

    rowptr, col, a, b = ctx.saved_tensors
    g = grad.contiguous()  # float32 or float64: a valid val for csr_spmm
    da = db = None
    if ctx.needs_input_grad[2]:
        da = csr_spmm(rowptr, col, g, b, backend=ctx.backend).to(a.dtype)
    if ctx.needs_input_grad[3]:
        transpose = csr_transpose_op(rowptr, col, b.shape[0])
        db = csr_spmm(transpose[0], transpose[1], g.index_select(0, transpose[2]), a,
                      backend=ctx.backend).to(b.dtype)
    return None, None, da, db, None


_csr_sddmm_op.register_autograd(_backward, setup_context=_setup)


def csr_sddmm(rowptr: Tensor, col: Tensor, a: Tensor, b: Tensor, *,
              backend: Optional[str] = None) -> Tensor:
    """``out[k] = ⟨a[row(k)], b[col[k]]⟩`` for every entry k of the (n_rows x n_cols) CSR
    structure (rowptr, col): the products of ``a bᵀ`` sampled at the structure's entries,
    never forming ``a bᵀ`` (docs/DESIGN.md §4).

    * rowptr, col as in :func:`gnn.kernels.csr_spmm` (no values); a: (n_rows, d),
      b: (n_cols, d), float32/bfloat16/float16/float64, contiguous, one device.
    * Returns (nnz,) float32 (a ``val`` for :func:`csr_spmm`), float64 when a or b is float64
      (the exact torch path on every backend).
    * Differentiable in a and b: with G the CSR of the structure with values ``grad``,
      ``da = G b`` and ``db = Gᵀ a`` (two SpMMs).
    * ``backend`` as in :func:`csr_spmm`; which code runs: :func:`implementation`.
      Deterministic (no atomics).
    """
    backend = check_backend("csr_sddmm", backend)
    return _csr_sddmm_op(rowptr, col, a, b, backend)
