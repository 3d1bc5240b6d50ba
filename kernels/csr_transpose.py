"""The op ``csr_transpose``: the CSR of Aᵀ as ``(rowptr_t, col_t, perm_t)``, with
``val_t = val[perm_t]``; its torch.library registration (``gnn::csr_transpose``) and its one
implementation (torch ops, any device).

Keeping a permutation instead of transposed values lets a masked (dropped-out) ``val`` be
transposed by one gather. O(nnz log nnz): one stable sort of ``col`` (stable, so each row of Aᵀ
lists its columns in increasing order), no Python loop.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

from . import checks


def csr_transpose_impl(rowptr: Tensor, col: Tensor, n_cols: int):
    n_rows, nnz = rowptr.shape[0] - 1, col.shape[0]
    dev = col.device
    counts = torch.diff(rowptr)
    row = torch.repeat_interleave(torch.arange(n_rows, device=dev, dtype=col.dtype),
                                  counts.to(torch.int64), output_size=nnz)
    perm_t = torch.sort(col, stable=True).indices  # int64
    col_t = row.index_select(0, perm_t)
    per_col = torch.zeros(n_cols, dtype=torch.int64, device=dev)
    per_col.index_add_(0, col.to(torch.int64), torch.ones(nnz, dtype=torch.int64, device=dev))
    rowptr_t = torch.zeros(n_cols + 1, dtype=rowptr.dtype, device=dev)
    torch.cumsum(per_col, 0, out=per_col)
    rowptr_t[1:] = per_col
    return rowptr_t, col_t, perm_t


@torch.library.custom_op("gnn::csr_transpose", mutates_args=(), device_types=("cpu", "cuda"))
def csr_transpose_op(rowptr: Tensor, col: Tensor, n_cols: int) -> Tuple[Tensor, Tensor, Tensor]:
    checks.check_csr_meta("csr_transpose", rowptr, col,
                          col.new_empty(col.shape, dtype=torch.float32), col.device)
    checks.check_csr_values("csr_transpose", rowptr, col, n_cols)
    transpose = csr_transpose_impl(rowptr, col, n_cols)
    checks.remember_transpose(transpose, rowptr.shape[0] - 1, col.shape[0])
    return transpose


@csr_transpose_op.register_fake
def _csr_transpose_fake(rowptr, col, n_cols):
    nnz = col.shape[0]
    return (rowptr.new_empty((n_cols + 1,)), col.new_empty((nnz,)),
            col.new_empty((nnz,), dtype=torch.int64))


def csr_transpose(rowptr: Tensor, col: Tensor, n_cols: int):
    """(rowptr_t, col_t, perm_t): the CSR of Aᵀ, whose values are ``val[perm_t]``
    (perm_t int64; rows of Aᵀ list their columns in increasing order)."""
    return csr_transpose_op(rowptr, col, int(n_cols))
