"""csr_transpose: the CSR of A^T as (rowptr_t, col_t, perm_t), with val_t = val[perm_t].

Keeping a permutation instead of transposed values lets a masked (dropped-out) ``val`` be
transposed by one gather. O(nnz log nnz): one stable sort of ``col`` (stable, so each column
of A^T lists its rows in increasing order), torch ops only, no Python loop.
"""
from __future__ import annotations

import torch


def csr_transpose_impl(rowptr: torch.Tensor, col: torch.Tensor, n_cols: int):
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
