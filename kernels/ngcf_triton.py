"""The NGCF layer fused in Triton, forward and backward. Contract (math, shapes, dtypes,
backward formula): :func:`gnn.kernels.ngcf_layer` (kernels/ngcf_layer.py, which also decides
when these kernels run); docs/DESIGN.md §4. The dense step inside them is the one of
kernels/ngcf_step.py, written in Triton; tests/kernels ties the two together. Figures
(registers, occupancy, instructions, the H200 estimate) come from ``python -m tools.kernel_static``.

Forward, ``_ngcf_fwd_kernel``: one program per block of BLOCK_M rows taken from the graph's
work items (spmm_triton.Schedule: rows binned by degree, longest first). For each CHUNK of the
input features (a loop, so that only one chunk's operands are live), it gathers ``S[:, chunk]``
by gather-FMA exactly as the SpMM row kernel does (a lane per row, the block's lanes stepping
together, fp32 FMAs), forms ``U1 = S + [self_loop] e`` and ``U2 = S * e`` for the chunk and adds
``U1 W1[chunk] + U2 W2[chunk]`` to the [BLOCK_M, d_out] tile Z with ``tl.dot``: the only
tensor-core work is the two dense products. Then bias, LeakyReLU, one store. S is written per
chunk when saved. Re-gathering per chunk re-reads the block's col and val (from L1 / L2) but
not more of e's rows; holding all of S while Z is formed would not fit the registers.
Rows longer than T are summed beforehand by the SpMM row kernel into a compact buffer (the
items put them last, with no nonzeros), so no block takes more than T steps.

Precision: fp32 products follow ``torch.get_float32_matmul_precision()`` as torch.mm does:
``"highest"`` (torch's default) -> ``tf32x3`` (about fp32 accuracy, three TF32 products),
``"high"`` / ``"medium"`` -> one TF32 product. bf16/fp16 operands are multiplied in their dtype.
Accumulation is fp32 throughout.

Backward, in two kernels (one kernel holding every tile spilled registers):

* ``_ngcf_bwd_rows_kernel``, a program per BLOCK_M rows: dZ by CHUNKs of d_out, the products
  ``[dU1 | dU2] += dZ[:, chunk] [W1; W2][:, chunk]^T``, then ``dS = dU1 + dU2 * e`` (in the
  layer's dtype: the SpMM below gathers it as the forward gathers e) and
  ``de_local = [self_loop] dU1 + dU2 * S`` (fp32).
* ``_ngcf_bwd_weights_kernel``, persistent (P programs per BLOCK_N columns, each taking row
  blocks p, p + P, ...): ``dW1 += U1^T dZ``, ``dW2 += U2^T dZ``, ``db += sum dZ`` in registers,
  one partial per program, summed after (no atomics).

Then ``de = de_local + A^T dS`` is one SpMM with ``add``. S saved vs recomputed: saving costs
one N x d_in write and read; recomputing costs a second gather of nnz x d_in (nnz/N = 23 on
Gowalla), so S is **saved by default**; ``recompute_s=True`` recomputes it with the SpMM into a
buffer that lives only during the backward. To be confirmed on the GPU (the device run times
both). These kernels take d_in, d_out <= FUSED_MAX_DIM; ngcf_layer.py composes larger layers
from the Triton SpMM and the dense step.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import defaults
from .spmm_triton import (FOR_LOOPS, OFFSET32_LIMIT, _gather_tile, _items, kernel_for, schedule,
                          spmm_long_rows, spmm_triton)

FUSED_MAX_DIM = 128  # the largest d_in and d_out the fused kernels take (register tiles)


@triton.jit
def _mma(a, b, acc, PREC: tl.constexpr, DOT_F32: tl.constexpr):
    """acc + a @ b with fp32 accumulation. DOT_F32 (interpreter only: its bf16 dot is broken)
    multiplies the same (already rounded) operands in fp32, which is what the MMA computes."""
    if DOT_F32:
        return tl.dot(a.to(tl.float32), b.to(tl.float32), acc, input_precision="ieee")
    else:
        return tl.dot(a, b, acc, input_precision=PREC)


@triton.jit
def _fwd_chunk(z, c0, start, length, n_all, n_max, lanes, rows, pos, col_ptr, val_ptr, e_ptr,
               w1_ptr, w2_ptr, s_long_ptr, s_ptr, d_in, d_out, offs_o, mask_o,
               SELF_LOOP: tl.constexpr, SAVE_S: tl.constexpr, HAS_LONG: tl.constexpr,
               PREC: tl.constexpr, DOT_F32: tl.constexpr, BLOCK_M: tl.constexpr,
               CHUNK: tl.constexpr, EVEN_D: tl.constexpr, OFF64: tl.constexpr):
    """z + U1[:, chunk] W1[chunk] + U2[:, chunk] W2[chunk], S[:, chunk] gathered (and saved)."""
    offs_c = c0 + tl.arange(0, CHUNK)
    mask_c = offs_c < d_in
    s = tl.reshape(_gather_tile(col_ptr, val_ptr, e_ptr, start, length, n_all, n_max,
                                offs_c[None, None, :], mask_c[None, None, :], d_in,
                                BLOCK_M, 1, CHUNK, EVEN_D, OFF64), (BLOCK_M, CHUNK))
    mask_mc = lanes[:, None] & mask_c[None, :]
    if HAS_LONG:
        s += tl.load(s_long_ptr + pos[:, None] * d_in + offs_c[None, :],
                     mask=mask_mc & (pos >= 0)[:, None], other=0.0)
    off = rows[:, None] * d_in + offs_c[None, :]
    if SAVE_S:
        tl.store(s_ptr + off, s.to(s_ptr.dtype.element_ty), mask=mask_mc)
    e = tl.load(e_ptr + off, mask=mask_mc, other=0.0).to(tl.float32)
    u1 = s + e if SELF_LOOP else s
    w_off = offs_c[:, None] * d_out + offs_o[None, :]
    w_mask = mask_c[:, None] & mask_o[None, :]
    z = _mma(u1.to(w1_ptr.dtype.element_ty), tl.load(w1_ptr + w_off, mask=w_mask, other=0.0),
             z, PREC, DOT_F32)
    return _mma((s * e).to(w1_ptr.dtype.element_ty),
                tl.load(w2_ptr + w_off, mask=w_mask, other=0.0), z, PREC, DOT_F32)


@triton.jit
def _ngcf_fwd_kernel(
    start_ptr, len_ptr, row_ptr,                # Schedule.fused (n): first nonzero, length, row
    col_ptr, val_ptr, e_ptr,                    # CSR (nnz), (nnz); e (N, d_in)
    w1_ptr, w2_ptr, b_ptr, s_long_ptr,          # (d_in, d_out) x2, (d_out), (n_long, d_in) fp32
    out_ptr, s_ptr,                             # (N, d_out), (N, d_in) if SAVE_S
    n, n_light, d_in, d_out, negative_slope,
    HAS_BIAS: tl.constexpr, SELF_LOOP: tl.constexpr, SAVE_S: tl.constexpr,
    HAS_LONG: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr, BLOCK_M: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_DOUT: tl.constexpr, EVEN_D: tl.constexpr, OFF64: tl.constexpr,
):
    offs_r, lanes, start, length, n_all, n_max = _items(start_ptr, len_ptr,
                                                        tl.program_id(0) * BLOCK_M, n, BLOCK_M)
    rows = tl.load(row_ptr + offs_r, mask=lanes, other=0).to(tl.int64)
    pos = (offs_r - n_light).to(tl.int64)  # >= 0: a long row, its S in s_long
    offs_o = tl.arange(0, BLOCK_DOUT)
    mask_o = offs_o < d_out
    z = tl.zeros([BLOCK_M, BLOCK_DOUT], dtype=tl.float32)
    if FOR_LOOPS:
        for c0 in tl.range(0, d_in, CHUNK, num_stages=1):
            z = _fwd_chunk(z, c0, start, length, n_all, n_max, lanes, rows, pos, col_ptr, val_ptr,
                           e_ptr, w1_ptr, w2_ptr, s_long_ptr, s_ptr, d_in, d_out, offs_o, mask_o,
                           SELF_LOOP, SAVE_S, HAS_LONG, PREC, DOT_F32, BLOCK_M, CHUNK, EVEN_D, OFF64)
    else:
        c0 = 0
        while c0 < d_in:
            z = _fwd_chunk(z, c0, start, length, n_all, n_max, lanes, rows, pos, col_ptr, val_ptr,
                           e_ptr, w1_ptr, w2_ptr, s_long_ptr, s_ptr, d_in, d_out, offs_o, mask_o,
                           SELF_LOOP, SAVE_S, HAS_LONG, PREC, DOT_F32, BLOCK_M, CHUNK, EVEN_D, OFF64)
            c0 += CHUNK
    if HAS_BIAS:
        z += tl.load(b_ptr + offs_o, mask=mask_o, other=0.0).to(tl.float32)[None, :]
    o = tl.where(z > 0, z, z * negative_slope)
    tl.store(out_ptr + rows[:, None] * d_out + offs_o[None, :], o.to(out_ptr.dtype.element_ty),
             mask=lanes[:, None] & mask_o[None, :])


@triton.jit
def _dz(grad_ptr, out_ptr, rows, lanes, offs_o, mask_o, d_out, negative_slope):
    """dZ = grad * LeakyReLU'(Z) on [rows, offs_o], read from out (Z > 0 <=> out > 0)."""
    m = lanes[:, None] & mask_o[None, :]
    off = rows[:, None] * d_out + offs_o[None, :]
    g = tl.load(grad_ptr + off, mask=m, other=0.0).to(tl.float32)
    o = tl.load(out_ptr + off, mask=m, other=0.0).to(tl.float32)  # (the interpreter compares bf16 as integers)
    return tl.where(o > 0, g, g * negative_slope)


@triton.jit
def _bwd_chunk(du1, du2, j0, grad_ptr, out_ptr, w1_ptr, w2_ptr, rows, lanes, offs_i, mask_i,
               d_out, negative_slope, PREC: tl.constexpr, DOT_F32: tl.constexpr,
               CHUNK: tl.constexpr):
    offs_j = j0 + tl.arange(0, CHUNK)
    mask_j = offs_j < d_out
    dz = _dz(grad_ptr, out_ptr, rows, lanes, offs_j, mask_j, d_out, negative_slope)
    dz = dz.to(w1_ptr.dtype.element_ty)
    w_off = offs_i[None, :] * d_out + offs_j[:, None]  # W[:, chunk]^T: [CHUNK, BLOCK_DIN]
    w_mask = mask_i[None, :] & mask_j[:, None]
    du1 = _mma(dz, tl.load(w1_ptr + w_off, mask=w_mask, other=0.0), du1, PREC, DOT_F32)
    du2 = _mma(dz, tl.load(w2_ptr + w_off, mask=w_mask, other=0.0), du2, PREC, DOT_F32)
    return du1, du2


@triton.jit
def _ngcf_bwd_rows_kernel(
    grad_ptr, out_ptr, s_ptr, e_ptr, w1_ptr, w2_ptr,  # (N, d_out) x2, (N, d_in) x2, (d_in, d_out) x2
    ds_ptr, de_ptr,                             # (N, d_in): dS in e's dtype, de_local fp32
    n, d_in, d_out, negative_slope,
    SELF_LOOP: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr, BLOCK_M: tl.constexpr,
    CHUNK: tl.constexpr, BLOCK_DIN: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
    lanes = rows < n
    offs_i = tl.arange(0, BLOCK_DIN)
    mask_i = offs_i < d_in
    du1 = tl.zeros([BLOCK_M, BLOCK_DIN], dtype=tl.float32)
    du2 = tl.zeros([BLOCK_M, BLOCK_DIN], dtype=tl.float32)
    if FOR_LOOPS:  # over d_out: [dU1 | dU2] += dZ[:, chunk] [W1; W2][:, chunk]^T
        for j0 in tl.range(0, d_out, CHUNK, num_stages=1):
            du1, du2 = _bwd_chunk(du1, du2, j0, grad_ptr, out_ptr, w1_ptr, w2_ptr, rows, lanes,
                                  offs_i, mask_i, d_out, negative_slope, PREC, DOT_F32, CHUNK)
    else:
        j0 = 0
        while j0 < d_out:
            du1, du2 = _bwd_chunk(du1, du2, j0, grad_ptr, out_ptr, w1_ptr, w2_ptr, rows, lanes,
                                  offs_i, mask_i, d_out, negative_slope, PREC, DOT_F32, CHUNK)
            j0 += CHUNK
    m = lanes[:, None] & mask_i[None, :]
    off = rows[:, None] * d_in + offs_i[None, :]
    s = tl.load(s_ptr + off, mask=m, other=0.0).to(tl.float32)
    e = tl.load(e_ptr + off, mask=m, other=0.0).to(tl.float32)
    de = du2 * s + du1 if SELF_LOOP else du2 * s
    tl.store(ds_ptr + off, (du1 + du2 * e).to(ds_ptr.dtype.element_ty), mask=m)
    tl.store(de_ptr + off, de, mask=m)


@triton.jit
def _ngcf_bwd_weights_kernel(
    grad_ptr, out_ptr, s_ptr, e_ptr,            # (N, d_out) x2, (N, d_in) x2
    dw1_ptr, dw2_ptr, db_ptr,                   # (P, d_in, d_out) x2, (P, d_out) fp32 partials
    n, d_in, d_out, negative_slope, n_blocks,
    SELF_LOOP: tl.constexpr, PREC: tl.constexpr, DOT_F32: tl.constexpr, BLOCK_M: tl.constexpr,
    BLOCK_DIN: tl.constexpr, BLOCK_N: tl.constexpr,
):
    pid = tl.program_id(0)
    offs_i = tl.arange(0, BLOCK_DIN)
    mask_i = offs_i < d_in
    offs_o = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_o = offs_o < d_out
    acc_w1 = tl.zeros([BLOCK_DIN, BLOCK_N], dtype=tl.float32)
    acc_w2 = tl.zeros([BLOCK_DIN, BLOCK_N], dtype=tl.float32)
    acc_b = tl.zeros([BLOCK_N], dtype=tl.float32)
    # a while loop in both modes: triton 3.6's interpreter refuses range() over a run-time bound
    blk = pid
    while blk < n_blocks:
        rows = tl.cast(blk, tl.int64) * BLOCK_M + tl.arange(0, BLOCK_M)
        lanes = rows < n
        dz = _dz(grad_ptr, out_ptr, rows, lanes, offs_o, mask_o, d_out, negative_slope)
        m = lanes[:, None] & mask_i[None, :]
        off = rows[:, None] * d_in + offs_i[None, :]
        s = tl.load(s_ptr + off, mask=m, other=0.0).to(tl.float32)
        e = tl.load(e_ptr + off, mask=m, other=0.0).to(tl.float32)
        u1 = s + e if SELF_LOOP else s
        dzc = dz.to(e_ptr.dtype.element_ty)  # the layer's dtype (S may be a recomputed fp32)
        acc_w1 = _mma(tl.trans(u1.to(dzc.dtype)), dzc, acc_w1, PREC, DOT_F32)
        acc_w2 = _mma(tl.trans((s * e).to(dzc.dtype)), dzc, acc_w2, PREC, DOT_F32)
        acc_b += tl.sum(dz, axis=0)
        blk += tl.num_programs(0)
    w_off = offs_i[:, None] * d_out + offs_o[None, :]
    w_mask = mask_i[:, None] & mask_o[None, :]
    part = pid.to(tl.int64) * d_in * d_out
    tl.store(dw1_ptr + part + w_off, acc_w1, mask=w_mask)
    tl.store(dw2_ptr + part + w_off, acc_w2, mask=w_mask)
    tl.store(db_ptr + pid.to(tl.int64) * d_out + offs_o, acc_b, mask=mask_o)


# ----------------------------------------------------------------------------- host side


def fused_supported(d_in: int, d_out: int) -> bool:
    return 1 <= d_in <= FUSED_MAX_DIM and 1 <= d_out <= FUSED_MAX_DIM


def _chunk(d: int, elem_bytes: int) -> int:
    """Features per step of a chunk loop: 64 bytes (a row chunk on 4 threads), at least 16
    (tl.dot's smallest K), at most d rounded up to a power of two."""
    return max(16, min(64 // elem_bytes, triton.next_power_of_2(d)))


def ngcf_config(e: torch.Tensor, d_in: int, d_out: int, block_m=None):
    """Meta-parameters of the three kernels (fwd, rows, weights) and their shared flags.
    ``maxnreg`` is explicit because, left to itself, ptxas trades a few bytes of spills for
    occupancy; 128 keeps the forward at 4 programs of 4 warps per SM where its tiles fit (d_out
    <= 64, vector loads, int32 offsets). With
    these tile sizes no configuration spills on sm_80 or sm_90 (the compile tests and the
    static report check it); reasoned, to be tuned on the GPU."""
    elem = e.element_size()
    ci, co = _chunk(d_in, elem), _chunk(d_out, elem)
    off64 = e.numel() >= OFFSET32_LIMIT
    block_din = max(16, triton.next_power_of_2(d_in))
    block_dout = max(16, triton.next_power_of_2(d_out))
    highest = torch.get_float32_matmul_precision() == "highest"
    return dict(
        PREC="tf32x3" if highest else "tf32", DOT_F32=e.device.type != "cuda",
        fwd=dict(BLOCK_M=block_m or 32, CHUNK=ci, BLOCK_DOUT=block_dout, EVEN_D=d_in % ci == 0,
                 OFF64=off64, num_warps=4,
                 maxnreg=128 if block_dout <= 64 and d_in % ci == 0 and not off64 else 255),
        rows=dict(BLOCK_M=block_m or (64 if block_din <= 64 else 32), CHUNK=co,
                  BLOCK_DIN=block_din, num_warps=4, maxnreg=255),
        weights=dict(BLOCK_M=16, BLOCK_DIN=block_din, num_warps=4, maxnreg=255,
                     BLOCK_N=min(block_dout, 4096 // block_din)),  # dW tiles: 64 fp32 registers
    )


def ngcf_forward_triton(rowptr, col, val, e, w1, w2, bias, negative_slope, self_loop, save_s,
                        *, long_threshold=None, block_m=None):
    """(out, S or an empty tensor). Inputs already checked (checks.py); n > 0 and
    fused_supported(d_in, d_out) (ngcf_layer.py's dispatch)."""
    n, d_in = e.shape
    d_out = w1.shape[1]
    cfg = ngcf_config(e, d_in, d_out, block_m)
    fwd = cfg["fwd"]
    sched = schedule(rowptr, long_threshold or defaults.long_threshold, col.shape[0])
    s_long = spmm_long_rows(col, val, e, sched) if sched.n_long else e
    out = torch.empty(n, d_out, dtype=e.dtype, device=e.device)
    s = torch.empty(n if save_s else 0, d_in, dtype=e.dtype, device=e.device)
    kernel_for(_ngcf_fwd_kernel, e.device)[(triton.cdiv(n, fwd["BLOCK_M"]),)](
        *sched.fused, col, val, e, w1, w2, bias if bias is not None else w1, s_long,
        out, s if save_s else out, n, n - sched.n_long, d_in, d_out, float(negative_slope),
        HAS_BIAS=bias is not None, SELF_LOOP=bool(self_loop), SAVE_S=bool(save_s),
        HAS_LONG=sched.n_long > 0, PREC=cfg["PREC"], DOT_F32=cfg["DOT_F32"], **fwd)
    return out, s


def persistent_programs(device, n_blocks):
    """Programs of the persistent weight-gradient kernel (per BLOCK_N columns)."""
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
    flags = dict(SELF_LOOP=bool(self_loop), PREC=cfg["PREC"], DOT_F32=cfg["DOT_F32"])
    if s.shape[0] != n:  # recompute: S = A e, kept for this backward only
        s = spmm_triton(rowptr, col, val, e, out_dtype=torch.float32, long_threshold=long_threshold)
    f32 = dict(dtype=torch.float32, device=e.device)
    # dS in the layer's dtype: the SpMM below gathers it as the forward gathers e
    ds, de_acc = torch.empty(n, d_in, dtype=e.dtype, device=e.device), torch.empty(n, d_in, **f32)
    rows = cfg["rows"]
    kernel_for(_ngcf_bwd_rows_kernel, e.device)[(triton.cdiv(n, rows["BLOCK_M"]),)](
        grad, out, s, e, w1, w2, ds, de_acc, n, d_in, d_out, float(negative_slope), **flags, **rows)
    wk = cfg["weights"]
    n_blocks = triton.cdiv(n, wk["BLOCK_M"])
    p = n_programs or persistent_programs(e.device, n_blocks)
    dw1_p, dw2_p = torch.empty(p, d_in, d_out, **f32), torch.empty(p, d_in, d_out, **f32)
    db_p = torch.empty(p, d_out, **f32)
    kernel_for(_ngcf_bwd_weights_kernel, e.device)[(p, triton.cdiv(d_out, wk["BLOCK_N"]))](
        grad, out, s, e, dw1_p, dw2_p, db_p, n, d_in, d_out, float(negative_slope), n_blocks,
        **flags, **wk)
    # de = de_local + A^T dS (in place over de_local when e is fp32)
    de = spmm_triton(rowptr_t, col_t, val_t, ds, add=de_acc, out_dtype=e.dtype,
                     out=de_acc if e.dtype == torch.float32 else None,
                     long_threshold=long_threshold)
    return de, dw1_p.sum(0).to(w1.dtype), dw2_p.sum(0).to(w2.dtype), db_p.sum(0).to(w1.dtype)
