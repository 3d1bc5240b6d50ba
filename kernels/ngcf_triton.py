"""The NGCF layer fused in Triton, forward and backward. Contract (math, shapes, dtypes,
backward formula): :func:`gnn.kernels.ngcf_layer` (kernels/ngcf_layer.py, which also decides
when these kernels run); docs/DESIGN.md §4. The dense step inside them is the one of
kernels/ngcf_step.py, written in Triton; tests/kernels ties the two together.

Forward, ``_ngcf_fwd_kernel``: one program per block of BLOCK_M rows. The rows of a block own a
contiguous range of nonzeros [rowptr[r0], rowptr[r0 + BLOCK_M]); the program walks it in
chunks of BLOCK_K, gathers the [BLOCK_K, d_in] rows of e and segment-reduces them into the
[BLOCK_M, d_in] tile S with one tensor-core product per chunk: ``S += A_chunk @ X_chunk``, where
``A_chunk[m, k] = val[k]`` if nonzero k belongs to row m, else 0 (``_block_s``). All loads of a
chunk are independent (good memory-level parallelism, no per-row serial loop), every row
of the block shares the chunk, and no per-edge message or S ever goes to memory. Then the two
products with W1 and W2, the bias and the LeakyReLU are applied to the tile in registers, with
W1/W2 tiles loaded on chip for ``tl.dot``, looping over BLOCK_N columns of the output.
Precision: fp32 products use ``input_precision="tf32x3"`` (~fp32 accuracy on tensor cores);
bf16/fp16 features are multiplied in their dtype with ``val`` split into hi + lo parts, so the
edge weights keep ~16 bits; accumulation is fp32 throughout.

Load balance: rows longer than T (see spmm_triton.py) are summed beforehand by the SpMM segment
kernels into a compact [n_long, d_in] buffer that the block reads; the chunk walk skips their
nonzeros. So a hub row never stalls a block.

Backward, ``_ngcf_bwd_kernel`` (persistent: P programs, each takes blocks p, p+P, ...): per
block, dZ, dU1 and dU2 stay on chip; the block writes ``dS = dU1 + dU2 * e`` and
``de_local = [self_loop] dU1 + dU2 * S`` (fp32) and adds its terms of dW1, dW2 and dbias to
per-program partials, summed after (no atomics). Then ``de = de_local + A^T dS`` is one SpMM
with ``add`` (on the same CSR when A is symmetric).

S saved vs recomputed: saving S costs one N x d_in write in the forward and one read in the
backward; recomputing costs a second gather of nnz x d_in (nnz/N = 23 on Gowalla), i.e. several
times more traffic, so S is **saved by default**; ``recompute_s=True`` recomputes it to
save N x d_in of memory. To be confirmed by measurement on the GPU (the device run times both).
These kernels take d_in, d_out <= FUSED_MAX_DIM; ngcf_layer.py composes larger layers from the
Triton SpMM and the dense step.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import defaults
from .spmm_triton import FOR_LOOPS, kernel_for, schedule, spmm_long_rows, spmm_triton

FUSED_MAX_DIM = 128  # the largest d_in and d_out the fused kernels take (register and smem tiles)


@triton.jit
def _gather_chunk(col_ptr, val_ptr, x_ptr, k0, end, offs_d, mask_d, stride_x,
                  BLOCK_K: tl.constexpr):
    """``(offs_k, val[k], x[col[k], offs_d])`` for k in [k0, min(k0 + BLOCK_K, end)), zeros
    outside."""
    offs_k = k0 + tl.arange(0, BLOCK_K)  # [BLOCK_K]
    mask_k = offs_k < end
    c = tl.load(col_ptr + offs_k, mask=mask_k, other=0).to(tl.int64)
    v = tl.load(val_ptr + offs_k, mask=mask_k, other=0.0)
    xt = tl.load(x_ptr + c[:, None] * stride_x + offs_d[None, :],
                 mask=mask_k[:, None] & mask_d[None, :], other=0.0)  # [BLOCK_K, BLOCK_D]
    return offs_k, v, xt


@triton.jit
def _mma(a, b, acc, PREC: tl.constexpr, DOT_F32: tl.constexpr):
    """acc + a @ b with fp32 accumulation. DOT_F32 (interpreter only: its bf16 dot is broken)
    multiplies the same (already rounded) operands in fp32, which is what the MMA computes."""
    if DOT_F32:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(a, b, acc, input_precision=PREC)


@triton.jit
def _block_s(rowptr_ptr, col_ptr, val_ptr, e_ptr, s_long_ptr, long_pos_ptr,
             r0, rows, mask_m, offs_i, mask_i, n, d_in, long_threshold,
             HAS_LONG: tl.constexpr, LOWP: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr,
             BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_DIN: tl.constexpr):
    """S[rows] = (A e)[rows] as a [BLOCK_M, BLOCK_DIN] fp32 tile (0 outside the masks)."""
    lo = tl.load(rowptr_ptr + rows, mask=mask_m, other=0).to(tl.int64)       # [BLOCK_M]
    hi = tl.load(rowptr_ptr + rows + 1, mask=mask_m, other=0).to(tl.int64)   # [BLOCK_M]
    blk_lo = tl.load(rowptr_ptr + r0).to(tl.int64)
    blk_hi = tl.load(rowptr_ptr + tl.minimum(r0 + BLOCK_M, n)).to(tl.int64)
    lo_s = lo
    hi_s = hi
    if HAS_LONG:
        is_long = (hi - lo) > long_threshold
        lo_s = tl.where(is_long, 0, lo)  # long rows match no nonzero of the chunk walk
        hi_s = tl.where(is_long, 0, hi)
    s = tl.zeros([BLOCK_M, BLOCK_DIN], dtype=tl.float32)
    k = blk_lo
    while k < blk_hi:
        if HAS_LONG:  # jump over the nonzeros of a long row that k falls into
            k = tl.maximum(k, tl.max(tl.where(is_long & (lo <= k) & (k < hi), hi, 0), axis=0))
        offs_k, v, x = _gather_chunk(col_ptr, val_ptr, e_ptr, k, blk_hi, offs_i, mask_i, d_in,
                                     BLOCK_K)                                # x: [BLOCK_K, BLOCK_DIN]
        in_row = (lo_s[:, None] <= offs_k[None, :]) & (offs_k[None, :] < hi_s[:, None])
        a = tl.where(in_row, v[None, :], 0.0)                                # [BLOCK_M, BLOCK_K]
        if LOWP:
            a_hi = a.to(x.dtype)
            a_lo = (a - a_hi.to(tl.float32)).to(x.dtype)
            s = _mma(a_hi, x, s, PREC, DOT_F32)
            s = _mma(a_lo, x, s, PREC, DOT_F32)
        else:
            s = _mma(a, x, s, PREC, DOT_F32)
        k += BLOCK_K
    if HAS_LONG:
        mask_l = mask_m & is_long
        pos = tl.load(long_pos_ptr + rows, mask=mask_l, other=0).to(tl.int64)
        s_l = tl.load(s_long_ptr + pos[:, None] * d_in + offs_i[None, :],
                      mask=mask_l[:, None] & mask_i[None, :], other=0.0)
        s = tl.where(mask_l[:, None], s_l.to(tl.float32), s)
    return s


@triton.jit
def _fwd_out_tile(u1, u2, w1_ptr, w2_ptr, b_ptr, out_ptr, rows, mask_m, offs_i, mask_i,
                  n0, d_out, negative_slope,
                  HAS_BIAS: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr,
                  BLOCK_N: tl.constexpr):
    """out[rows, n0:n0+BLOCK_N] = LeakyReLU(u1 W1[:, tile] + u2 W2[:, tile] + b[tile])."""
    offs_n = n0 + tl.arange(0, BLOCK_N)
    mask_n = offs_n < d_out
    w_off = offs_i[:, None] * d_out + offs_n[None, :]
    w_mask = mask_i[:, None] & mask_n[None, :]
    w1 = tl.load(w1_ptr + w_off, mask=w_mask, other=0.0)  # [BLOCK_DIN, BLOCK_N]
    w2 = tl.load(w2_ptr + w_off, mask=w_mask, other=0.0)
    z = _mma(u1, w1, None, PREC, DOT_F32)
    z = _mma(u2, w2, z, PREC, DOT_F32)           # [BLOCK_M, BLOCK_N] fp32
    if HAS_BIAS:
        z += tl.load(b_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)[None, :]
    o = tl.where(z > 0, z, z * negative_slope)
    tl.store(out_ptr + rows[:, None] * d_out + offs_n[None, :], o.to(out_ptr.dtype.element_ty),
             mask=mask_m[:, None] & mask_n[None, :])


@triton.jit
def _ngcf_fwd_kernel(
    rowptr_ptr, col_ptr, val_ptr, e_ptr,        # CSR (N+1), (nnz), (nnz); e (N, d_in)
    w1_ptr, w2_ptr, b_ptr,                      # (d_in, d_out), (d_in, d_out), (d_out)
    s_long_ptr, long_pos_ptr,                   # (n_long, d_in) fp32, (N) int32
    out_ptr, s_ptr,                             # (N, d_out), (N, d_in) if SAVE_S
    n, d_in, d_out, long_threshold, negative_slope,
    HAS_BIAS: tl.constexpr, SELF_LOOP: tl.constexpr, SAVE_S: tl.constexpr,
    HAS_LONG: tl.constexpr, LOWP: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_DIN: tl.constexpr, BLOCK_N: tl.constexpr,
):
    r0 = tl.program_id(0).to(tl.int64) * BLOCK_M
    rows = r0 + tl.arange(0, BLOCK_M)
    mask_m = rows < n
    offs_i = tl.arange(0, BLOCK_DIN)
    mask_i = offs_i < d_in
    mask_mi = mask_m[:, None] & mask_i[None, :]
    s = _block_s(rowptr_ptr, col_ptr, val_ptr, e_ptr, s_long_ptr, long_pos_ptr,
                 r0, rows, mask_m, offs_i, mask_i, n, d_in, long_threshold,
                 HAS_LONG, LOWP, PREC, DOT_F32, BLOCK_M, BLOCK_K, BLOCK_DIN)
    e = tl.load(e_ptr + rows[:, None] * d_in + offs_i[None, :],
                mask=mask_mi, other=0.0).to(tl.float32)
    if SAVE_S:
        tl.store(s_ptr + rows[:, None] * d_in + offs_i[None, :], s.to(s_ptr.dtype.element_ty), mask=mask_mi)
    u1 = s
    if SELF_LOOP:
        u1 = s + e
    u2 = s * e
    u1 = u1.to(w1_ptr.dtype.element_ty)  # [BLOCK_M, BLOCK_DIN]
    u2 = u2.to(w1_ptr.dtype.element_ty)
    if FOR_LOOPS:
        for n0 in range(0, d_out, BLOCK_N):
            _fwd_out_tile(u1, u2, w1_ptr, w2_ptr, b_ptr, out_ptr, rows, mask_m, offs_i, mask_i,
                          n0, d_out, negative_slope, HAS_BIAS, PREC, DOT_F32, BLOCK_N)
    else:
        n0 = 0
        while n0 < d_out:
            _fwd_out_tile(u1, u2, w1_ptr, w2_ptr, b_ptr, out_ptr, rows, mask_m, offs_i, mask_i,
                          n0, d_out, negative_slope, HAS_BIAS, PREC, DOT_F32, BLOCK_N)
            n0 += BLOCK_N


@triton.jit
def _bwd_block(blk, acc_w1, acc_w2, acc_b,
               grad_ptr, out_ptr, s_ptr, e_ptr, w1_ptr, w2_ptr,
               rowptr_ptr, col_ptr, val_ptr, s_long_ptr, long_pos_ptr, ds_ptr, de_ptr,
               offs_i, mask_i, offs_o, mask_o, w_off, w_mask,
               n, d_in, d_out, long_threshold, negative_slope,
               SELF_LOOP: tl.constexpr, RECOMPUTE: tl.constexpr, HAS_LONG: tl.constexpr,
               LOWP: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr,
               BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_DIN: tl.constexpr):
    """Block ``blk`` of BLOCK_M rows: writes its dS and de_local rows, returns the weight and
    bias gradient accumulators with the block's terms added."""
    r0 = tl.cast(blk, tl.int64) * BLOCK_M
    rows = r0 + tl.arange(0, BLOCK_M)
    mask_m = rows < n
    mask_mi = mask_m[:, None] & mask_i[None, :]
    mask_mo = mask_m[:, None] & mask_o[None, :]
    if RECOMPUTE:
        s = _block_s(rowptr_ptr, col_ptr, val_ptr, e_ptr, s_long_ptr, long_pos_ptr,
                     r0, rows, mask_m, offs_i, mask_i, n, d_in, long_threshold,
                     HAS_LONG, LOWP, PREC, DOT_F32, BLOCK_M, BLOCK_K, BLOCK_DIN)
    else:
        s = tl.load(s_ptr + rows[:, None] * d_in + offs_i[None, :],
                    mask=mask_mi, other=0.0).to(tl.float32)
    e = tl.load(e_ptr + rows[:, None] * d_in + offs_i[None, :],
                mask=mask_mi, other=0.0).to(tl.float32)
    g = tl.load(grad_ptr + rows[:, None] * d_out + offs_o[None, :],
                mask=mask_mo, other=0.0).to(tl.float32)
    o = tl.load(out_ptr + rows[:, None] * d_out + offs_o[None, :],
                mask=mask_mo, other=0.0).to(tl.float32)
    dz = tl.where(o > 0, g, g * negative_slope)                       # [BLOCK_M, BLOCK_DOUT]
    dzc = dz.to(w1_ptr.dtype.element_ty)
    w1 = tl.load(w1_ptr + w_off, mask=w_mask, other=0.0)              # [BLOCK_DIN, BLOCK_DOUT]
    w2 = tl.load(w2_ptr + w_off, mask=w_mask, other=0.0)
    du1 = _mma(dzc, tl.trans(w1), None, PREC, DOT_F32)               # [BLOCK_M, BLOCK_DIN]
    du2 = _mma(dzc, tl.trans(w2), None, PREC, DOT_F32)
    ds = du1 + du2 * e
    de = du2 * s
    u1 = s
    if SELF_LOOP:
        de += du1
        u1 = s + e
    u2 = s * e
    tl.store(ds_ptr + rows[:, None] * d_in + offs_i[None, :], ds, mask=mask_mi)
    tl.store(de_ptr + rows[:, None] * d_in + offs_i[None, :], de, mask=mask_mi)
    acc_w1 = _mma(tl.trans(u1.to(dzc.dtype)), dzc, acc_w1, PREC, DOT_F32)
    acc_w2 = _mma(tl.trans(u2.to(dzc.dtype)), dzc, acc_w2, PREC, DOT_F32)
    acc_b += tl.sum(dz, axis=0)
    return acc_w1, acc_w2, acc_b


@triton.jit
def _ngcf_bwd_kernel(
    grad_ptr, out_ptr, s_ptr, e_ptr, w1_ptr, w2_ptr,  # (N, d_out) x2, (N, d_in) x2, (d_in, d_out) x2
    rowptr_ptr, col_ptr, val_ptr, s_long_ptr, long_pos_ptr,  # only read if RECOMPUTE
    ds_ptr, de_ptr,                             # (N, d_in) fp32 outputs: dS and de_local
    dw1_ptr, dw2_ptr, db_ptr,                   # (P, d_in, d_out), (P, d_in, d_out), (P, d_out) fp32
    n, d_in, d_out, long_threshold, negative_slope, n_blocks,
    SELF_LOOP: tl.constexpr, RECOMPUTE: tl.constexpr, HAS_LONG: tl.constexpr,
    LOWP: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr, BLOCK_DIN: tl.constexpr, BLOCK_DOUT: tl.constexpr,
):
    pid = tl.program_id(0)
    n_prog = tl.num_programs(0)
    offs_i = tl.arange(0, BLOCK_DIN)
    mask_i = offs_i < d_in
    offs_o = tl.arange(0, BLOCK_DOUT)
    mask_o = offs_o < d_out
    w_off = offs_i[:, None] * d_out + offs_o[None, :]
    w_mask = mask_i[:, None] & mask_o[None, :]
    acc_w1 = tl.zeros([BLOCK_DIN, BLOCK_DOUT], dtype=tl.float32)
    acc_w2 = tl.zeros([BLOCK_DIN, BLOCK_DOUT], dtype=tl.float32)
    acc_b = tl.zeros([BLOCK_DOUT], dtype=tl.float32)
    # A while loop in both modes: triton 3.6's interpreter refuses range() over a run-time
    # bound, and this outer loop over whole row blocks gains nothing from software pipelining.
    blk = pid
    while blk < n_blocks:
        acc_w1, acc_w2, acc_b = _bwd_block(blk, acc_w1, acc_w2, acc_b,
            grad_ptr, out_ptr, s_ptr, e_ptr, w1_ptr, w2_ptr,
            rowptr_ptr, col_ptr, val_ptr, s_long_ptr, long_pos_ptr, ds_ptr, de_ptr,
            offs_i, mask_i, offs_o, mask_o, w_off, w_mask,
            n, d_in, d_out, long_threshold, negative_slope,
            SELF_LOOP, RECOMPUTE, HAS_LONG, LOWP, PREC, DOT_F32, BLOCK_M, BLOCK_K, BLOCK_DIN)
        blk += n_prog
    part = pid.to(tl.int64) * d_in * d_out
    tl.store(dw1_ptr + part + w_off, acc_w1, mask=w_mask)
    tl.store(dw2_ptr + part + w_off, acc_w2, mask=w_mask)
    tl.store(db_ptr + pid.to(tl.int64) * d_out + offs_o, acc_b, mask=mask_o)


# ----------------------------------------------------------------------------- host side


def fused_supported(d_in: int, d_out: int) -> bool:
    return 1 <= d_in <= FUSED_MAX_DIM and 1 <= d_out <= FUSED_MAX_DIM


def ngcf_config(e: torch.Tensor, d_in: int, d_out: int, block_m=None):
    """Meta-parameters. Heuristic defaults, to be tuned on the GPU."""
    block_din = max(16, triton.next_power_of_2(d_in))
    block_dout = max(16, triton.next_power_of_2(d_out))
    return dict(
        BLOCK_M=block_m or (32 if block_din <= 64 else 16),
        BLOCK_K=32,
        BLOCK_DIN=block_din,
        BLOCK_DOUT=block_dout,
        BLOCK_N=min(block_dout, 64 if block_din <= 64 else 32),  # smem < 164 KB (sm_80)
        LOWP=e.dtype != torch.float32,
        PREC="tf32x3",
        DOT_F32=e.device.type != "cuda",
        num_warps=4 if block_din * block_dout <= 64 * 64 else 8,
    )


def _long_s(rowptr, col, val, e, threshold):
    """(sched, s_long, pos): S of the long rows in a compact (n_long, d_in) fp32 buffer."""
    sched = schedule(rowptr, threshold, col.shape[0])
    if sched.n_long == 0:
        return sched, e, rowptr  # unused pointers
    pos = torch.full((e.shape[0],), -1, dtype=torch.int32, device=e.device)
    pos[sched.rows] = torch.arange(sched.n_long, dtype=torch.int32, device=e.device)
    return sched, spmm_long_rows(col, val, e, sched), pos


def ngcf_forward_triton(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                        *, long_threshold=None, block_m=None):
    """(out, S or an empty tensor). Inputs already checked (checks.py); n > 0 and
    fused_supported(d_in, d_out) (ngcf_layer.py's dispatch)."""
    n, d_in = e.shape
    d_out = w1.shape[1]
    long_threshold = long_threshold or defaults.long_threshold
    cfg = ngcf_config(e, d_in, d_out, block_m)
    sched, s_long, pos = _long_s(rowptr, col, val, e, long_threshold)
    out = torch.empty(n, d_out, dtype=e.dtype, device=e.device)
    s = torch.empty(n if save_s else 0, d_in, dtype=e.dtype, device=e.device)
    grid = (triton.cdiv(n, cfg["BLOCK_M"]),)
    kernel_for(_ngcf_fwd_kernel, e.device)[grid](
        rowptr, col, val, e, w1, w2, bias if bias is not None else w1, s_long, pos,
        out, s if save_s else out,
        n, d_in, d_out, long_threshold, float(negative_slope),
        HAS_BIAS=bias is not None, SELF_LOOP=bool(self_loop), SAVE_S=bool(save_s),
        HAS_LONG=sched.n_long > 0, LOWP=cfg["LOWP"], PREC=cfg["PREC"], DOT_F32=cfg["DOT_F32"],
        BLOCK_M=cfg["BLOCK_M"], BLOCK_K=cfg["BLOCK_K"], BLOCK_DIN=cfg["BLOCK_DIN"],
        BLOCK_N=cfg["BLOCK_N"], num_warps=cfg["num_warps"])
    return out, s


def _n_programs(device, n_blocks):
    if device.type == "cuda":
        sms = torch.cuda.get_device_properties(device).multi_processor_count
        return max(1, min(n_blocks, 2 * sms))
    return max(1, min(n_blocks, 3))  # interpreter: still several blocks per program


def ngcf_backward_triton(grad, out, s, rowptr, col, val, rowptr_t, col_t, val_t, e, w1, w2,
                         negative_slope, self_loop, *, long_threshold=None,
                         block_m=None, n_programs=None):
    """(de, dw1, dw2, db); S empty means recompute it. Inputs already checked; n > 0 and
    fused_supported(d_in, d_out)."""
    n, d_in = e.shape
    d_out = w1.shape[1]
    long_threshold = long_threshold or defaults.long_threshold
    cfg = ngcf_config(e, d_in, d_out, block_m)
    recompute = s.numel() != e.numel()
    if recompute:
        sched, s_long, pos = _long_s(rowptr, col, val, e, long_threshold)
        has_long = sched.n_long > 0
    else:
        s_long, pos, has_long = e, rowptr, False
    n_blocks = triton.cdiv(n, cfg["BLOCK_M"])
    p = n_programs or _n_programs(e.device, n_blocks)
    f32 = dict(dtype=torch.float32, device=e.device)
    ds = torch.empty(n, d_in, **f32)
    de_acc = torch.empty(n, d_in, **f32)
    dw1_p = torch.empty(p, d_in, d_out, **f32)
    dw2_p = torch.empty(p, d_in, d_out, **f32)
    db_p = torch.empty(p, d_out, **f32)
    kernel_for(_ngcf_bwd_kernel, e.device)[(p,)](
        grad, out, s if not recompute else e, e, w1, w2,
        rowptr, col, val, s_long, pos,
        ds, de_acc, dw1_p, dw2_p, db_p,
        n, d_in, d_out, long_threshold, float(negative_slope), n_blocks,
        SELF_LOOP=bool(self_loop), RECOMPUTE=recompute, HAS_LONG=has_long,
        LOWP=cfg["LOWP"], PREC=cfg["PREC"], DOT_F32=cfg["DOT_F32"],
        BLOCK_M=cfg["BLOCK_M"], BLOCK_K=cfg["BLOCK_K"], BLOCK_DIN=cfg["BLOCK_DIN"],
        BLOCK_DOUT=cfg["BLOCK_DOUT"], num_warps=cfg["num_warps"])
    # de = de_local + A^T dS (in place over de_local when e is fp32)
    de = spmm_triton(rowptr_t, col_t, val_t, ds, add=de_acc, out_dtype=e.dtype,
                     out=de_acc if e.dtype == torch.float32 else None,
                     long_threshold=long_threshold)
    dw1 = dw1_p.sum(0).to(w1.dtype)
    dw2 = dw2_p.sum(0).to(w2.dtype)
    db = db_p.sum(0).to(w1.dtype)
    return de, dw1, dw2, db
