"""The NGCF layer on the CPU, by blocks of rows that stay in the core's L2 cache.

The contract is :func:`gnn.kernels.ngcf_layer`'s (docs/DESIGN.md §2, §4); this is how the CPU
backend runs it for float32. Composed op by op (kernels/reference.py), each step of the layer is
a pass over N x d tensors that have left the cache since the previous pass; here every step of
one block of ``ROWS`` rows runs while the block is hot:

    forward, per block b:   S_b = A_b e                  (embedding_bag over the block's rows)
                            U_b = [S_b + e_b | S_b * e_b] (one B x 2d buffer, reused)
                            out_b = LeakyReLU(U1_b w1 + U2_b w2 + bias)  (in place in out)
    backward, per block b:  dZ_b = LeakyReLU'(grad_b)
                            [dU1 | dU2] = dZ_b [w1; w2]^T
                            dS_b = dU1 + dU2 * e_b,   de_b = [self_loop] dU1 + dU2 * S_b
                            [dw1; dw2] += U_b^T dZ_b,  dbias += sum_rows dZ_b
                  then, per block of A^T's rows:  de_b += (A^T dS)_b

so N x d memory is touched only to read e, S and the upstream gradient and to write out, S,
dS and de. Against the op-by-op composition (reference.py), one thread, d = 64, CPU time of
one call: Gowalla (N = 70,839) forward 23.5 -> 20.6 ms, backward 45 -> 37 ms; ml-latest-small
(N = 10,334) forward 2.3 -> 2.4 ms, backward 5.6 -> 5.0 ms in isolation, where the composition's
passes still hit the cache (in a training step they do not: 40 -> 38 ms per NGCF step); the
products then moved from MKL (~105 GFLOP/s on one core here) to oneDNN (~200): ml-latest-small
forward 1.5 ms, backward 3.1 ms (blocks of 4096 rows). The six N x d x d products per layer are
most of what is left. The
weight gradients sum over blocks in another order than one GEMM would (float32 rounding only);
the forward adds ``U1 w1`` and ``U2 w2`` as two products, in the composition's order (one
product with ``[w1; w2]`` rounds differently, enough to flip a near-tie in a ranking metric
against gnn.distributed's layer, which composes it so).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .tensor_cache import TensorCache

ROWS = 4096  # rows per block (U: B x 2d float32, 2 MiB for d = 64): best of 1024..16384 measured

# oneDNN's float32 GEMM, the kernel torch.compile's CPU backend calls for a linear layer: on
# this AMD CPU (AVX-512) 1.6-2x MKL's (torch.mm), one thread, N x 64 x 64; bitwise the same
# forward results for K a multiple of 16 (then also what gnn.distributed's composed layer gets).
_ONEDNN = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
_use_onednn = _ONEDNN is not None and torch.backends.mkldnn.is_available()

_BLOCKS = TensorCache()  # the row blocks of a CSR, made once per graph


def supports(e, w1, val) -> bool:
    """Whether this path runs the layer: float32 CPU tensors."""
    return (e.device.type == "cpu" and e.dtype == torch.float32 and w1.dtype == torch.float32
            and val.dtype == torch.float32 and e.shape[0] > 0)


def row_blocks(rowptr, col, rows=None):
    """``[(r0, r1, p0, p1, offsets)]``: blocks of ``rows`` CSR rows, their entries
    ``[p0, p1)`` and the block's offsets from p0 in col's dtype (embedding_bag's bags)."""
    rows = ROWS if rows is None else rows
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


def _linear(x, weight, bias=None, add=None):
    """``x @ weight.T (+ bias) (+ add)``, the sums in that order, as a new tensor (oneDNN when
    torch has it, else MKL through torch.mm)."""
    global _use_onednn
    if _use_onednn:
        try:
            if add is None:
                return _ONEDNN(x, weight, bias, "none", [None], "")
            return _ONEDNN.binary(x, add, weight, bias, "add")
        except (RuntimeError, NotImplementedError):
            _use_onednn = False  # an op this torch build lacks: MKL from now on
    y = torch.mm(x, weight.t()) if bias is None else torch.addmm(bias, x, weight.t())
    return y if add is None else torch.add(add, y)


def _fill_u(u1, u2, s, e, self_loop: bool):
    """U1 = S + [self_loop] e and U2 = S * e, into the given buffers (U1 is S itself without
    the self-loop)."""
    if self_loop:
        torch.add(s, e, out=u1)
    else:
        u1 = s
    torch.mul(s, e, out=u2)
    return u1, u2


@torch.no_grad()
def ngcf_forward(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s=True):
    """(out, S or an empty tensor): the layer's forward, block by block (module docstring)."""
    n, d = e.shape
    w1t, w2t = w1.t().contiguous(), w2.t().contiguous()  # (d_out, d_in): a linear's weight
    out = e.new_empty((n, w1.shape[1]))
    s_all = e.new_empty((n, d)) if save_s else e.new_empty((0, d))
    u = e.new_empty((2, min(n, ROWS), d))  # U1 and U2 of one block, each contiguous
    for block in row_blocks(rowptr, col):
        r0, r1 = block[0], block[1]
        s = _block_spmm(block, col, val, e)
        u1, u2 = _fill_u(u[0, : r1 - r0], u[1, : r1 - r0], s, e[r0:r1], self_loop)
        z = _linear(u2, w2t, add=_linear(u1, w1t, bias))
        torch.ops.aten.leaky_relu.out(z, negative_slope, out=out[r0:r1])
        if save_s:
            s_all[r0:r1] = s
    return out, s_all


@torch.no_grad()
def ngcf_backward(grad, out, s_saved, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                  negative_slope, self_loop):
    """(de, dw1, dw2, dbias): the layer's backward, block by block (module docstring);
    ``s_saved`` empty means recompute each block's S."""
    n, d = e.shape
    w = torch.cat([w1, w2])  # (2 d_in, d_out): dU = dZ w^T
    ds, de = e.new_empty((n, d)), e.new_empty((n, d))
    dw_t, db = w.new_zeros((w.shape[1], w.shape[0])), w.new_zeros((w.shape[1],))
    u = e.new_empty((min(n, ROWS), 2 * d))
    saved = s_saved.shape[0] == n
    grad = grad.contiguous()
    for block in row_blocks(rowptr, col):
        r0, r1 = block[0], block[1]
        s = s_saved[r0:r1] if saved else _block_spmm(block, col, val, e)
        eb = e[r0:r1]
        dz = torch.ops.aten.leaky_relu_backward(grad[r0:r1], out[r0:r1], negative_slope, True)
        du = _linear(dz, w)
        du1, du2 = du[:, :d], du[:, d:]
        torch.addcmul(du1, du2, eb, out=ds[r0:r1])
        if self_loop:
            torch.addcmul(du1, du2, s, out=de[r0:r1])
        else:
            torch.mul(du2, s, out=de[r0:r1])
        ub = u[: r1 - r0]
        _fill_u(ub[:, :d], ub[:, d:], s, eb, self_loop)
        if not self_loop:
            ub[:, :d].copy_(s)
        dw_t.add_(_linear(dz.t(), ub.t()))  # [dw1; dw2]^T += dZ^T U
        db.add_(dz.sum(0))
    for block in row_blocks(rowptr_t, col_t):
        r0, r1, p0, p1, _ = block
        if p0 != p1:
            de[r0:r1] += _block_spmm(block, col_t, val_t, ds)
    # transposed back into separate tensors: outputs of a custom op may not alias
    return (de, dw_t[:, :d].t().clone(memory_format=torch.contiguous_format),
            dw_t[:, d:].t().clone(memory_format=torch.contiguous_format), db)
