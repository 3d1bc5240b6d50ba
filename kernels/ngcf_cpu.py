"""The NGCF layer on the CPU (float32), by blocks of rows that stay in the core's cache.

The contract is :func:`gnn.kernels.ngcf_layer`'s (kernels/ngcf_layer.py, which decides when
this runs); the dense math is kernels/ngcf_step.py's, called once per block. Composed op by op,
each step of the layer would be a pass over N x d tensors that have left the cache since the
previous pass; here every step of one block of ``defaults.cpu_block_rows`` rows runs while the
block is hot:

    forward, per block b:   S_b = A_b e  (embedding_bag over the block's rows)
                            out_b = ngcf_step.forward(S_b, e_b, ...)
    backward, per block b:  dS_b, dE_local_b, dW1_b, dW2_b, db_b = ngcf_step.backward(...)
                            (weight gradients summed over blocks)
                  then, per block of Aᵀ's rows:  dE_b = dE_local_b + (Aᵀ dS)_b

so N x d memory is touched only to read e, S and the upstream gradient and to write out, S,
dS and dE. The weight gradients sum over blocks in another order than one GEMM over all rows
would (float32 rounding only). Block size: ``gnn.kernels.defaults.cpu_block_rows``
(``GNN_CPU_BLOCK_ROWS``); measurements in results/cpu/.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import defaults, ngcf_step
from .tensor_cache import TensorCache

_BLOCKS = TensorCache()  # the row blocks of a CSR, made once per graph and block size


def row_blocks(rowptr, col, rows=None):
    """``[(r0, r1, p0, p1, offsets)]``: blocks of ``rows`` CSR rows (default
    ``defaults.cpu_block_rows``), their entries ``[p0, p1)`` and the block's offsets from p0
    in col's dtype (embedding_bag's bags)."""
    rows = defaults.cpu_block_rows if rows is None else rows
    hit = _BLOCKS.get((rowptr, col), (rows,))
    if hit is None:
        n = rowptr.shape[0] - 1
        bounds = rowptr[:: rows].tolist() + ([int(rowptr[-1])] if n % rows else [])
        hit = []
        for k, r0 in enumerate(range(0, n, rows)):
            r1 = min(n, r0 + rows)
            p0, p1 = bounds[k], bounds[k + 1]
            hit.append((r0, r1, p0, p1, (rowptr[r0:r1 + 1] - p0).to(col.dtype)))
        _BLOCKS.put((rowptr, col), hit, (rows,))
    return hit


def _block_spmm(block, col, val, x):
    """Rows ``[r0, r1)`` of ``A x`` (embedding_bag sum over the block's entries)."""
    r0, r1, p0, p1, offsets = block
    if p0 == p1:
        return x.new_zeros((r1 - r0, x.shape[1]))
    # x detached: an input that requires grad makes embedding_bag keep backward bookkeeping
    return F.embedding_bag(col[p0:p1], x.detach(), offsets, mode="sum",
                           per_sample_weights=val[p0:p1], include_last_offset=True)


@torch.no_grad()
def ngcf_forward_blocks(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop,
                        save_s=True):
    """(out, S or an empty tensor): the layer's forward, block by block."""
    n, d = e.shape
    blocks = row_blocks(rowptr, col)
    out = e.new_empty((n, w1.shape[1]))
    s_all = e.new_empty((n, d)) if save_s else e.new_empty((0, d))
    u = e.new_empty((2, blocks[0][1] - blocks[0][0], d))  # U1 and U2 of one block, reused
    for block in blocks:
        r0, r1 = block[0], block[1]
        s = _block_spmm(block, col, val, e)
        ngcf_step.forward(s, e[r0:r1], w1, w2, bias, negative_slope, self_loop,
                          out=out[r0:r1], u=u[:, : r1 - r0])
        if save_s:
            s_all[r0:r1] = s
    return out, s_all


@torch.no_grad()
def ngcf_backward_blocks(grad, out, s_saved, rowptr, col, val, rowptr_t, col_t, val_t, e, w1,
                         w2, negative_slope, self_loop):
    """(de, dw1, dw2, dbias): the layer's backward, block by block; ``s_saved`` empty means
    recompute each block's S."""
    n, d = e.shape
    blocks = row_blocks(rowptr, col)
    ds, de = e.new_empty((n, d)), e.new_empty((n, d))
    dw1, dw2, db = torch.zeros_like(w1), torch.zeros_like(w2), w1.new_zeros((w1.shape[1],))
    u = e.new_empty((blocks[0][1] - blocks[0][0], 2 * d))
    saved = s_saved.shape[0] == n
    grad = grad.contiguous()
    for block in blocks:
        r0, r1 = block[0], block[1]
        s = s_saved[r0:r1] if saved else _block_spmm(block, col, val, e)
        _, _, dw1_b, dw2_b, db_b = ngcf_step.backward(
            grad[r0:r1], out[r0:r1], s, e[r0:r1], w1, w2, negative_slope, self_loop,
            ds=ds[r0:r1], de_local=de[r0:r1], u=u[: r1 - r0])
        dw1.add_(dw1_b)
        dw2.add_(dw2_b)
        db.add_(db_b)
    for block in row_blocks(rowptr_t, col_t):
        r0, r1, p0, p1, _ = block
        if p0 != p1:
            de[r0:r1] += _block_spmm(block, col_t, val_t, ds)
    return de, dw1, dw2, db
