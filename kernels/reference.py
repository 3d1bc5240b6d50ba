"""The float64 oracle the kernel tests compare against: each op written the plainest way, from
its contract, with none of the library's fast paths (never imported by library code).

``spmm`` sums ``val[k] x[col[k]]`` into row ``r`` edge by edge (``index_add_``: O(nnz d), no
dense matrix), and everything is differentiable by autograd, so the oracle of a backward is
``torch.autograd.grad`` of these. Inputs are converted to float64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rows_of_entries(rowptr: torch.Tensor) -> torch.Tensor:
    """The row of each CSR entry (int64)."""
    counts = torch.diff(rowptr.long())
    return torch.repeat_interleave(torch.arange(counts.numel(), device=rowptr.device), counts)


def spmm(rowptr, col, val, x) -> torch.Tensor:
    """``y[r] = Σ_{k in row r} val[k] x[col[k]]`` in float64, differentiable in val and x."""
    val, x = val.double(), x.double()
    y = x.new_zeros((rowptr.numel() - 1, x.shape[1]))
    return y.index_add(0, rows_of_entries(rowptr), val[:, None] * x[col.long()])


def ngcf_layer(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop) -> torch.Tensor:
    """``LeakyReLU((S + [self_loop] e) w1 + (S ⊙ e) w2 + bias)`` with ``S = A e``, float64."""
    e, w1, w2 = e.double(), w1.double(), w2.double()
    s = spmm(rowptr, col, val, e)
    u1 = s + e if self_loop else s
    z = u1 @ w1 + (s * e) @ w2
    if bias is not None:
        z = z + bias.double()
    return F.leaky_relu(z, negative_slope)


def sddmm(rowptr, col, a, b) -> torch.Tensor:
    """``out[k] = ⟨a[row(k)], b[col[k]]⟩`` in float64, differentiable in a and b."""
    return (a.double()[rows_of_entries(rowptr)] * b.double()[col.long()]).sum(1)
