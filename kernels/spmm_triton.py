"""CSR x dense SpMM in Triton: ``y = A x (+ add)``, fp32 accumulation, deterministic. Contract:
:func:`gnn.kernels.csr_spmm` (kernels/csr_spmm.py, which also decides when these kernels run).

Work decomposition (GE-SpMM style: the feature axis is the contiguous vector axis, so a gather
of ``x[col[k], d0:d0+BLOCK_D]`` is one coalesced row read):

* ``_spmm_row_kernel``: one program per (row, feature tile). It walks the row's nonzeros in
  chunks of BLOCK_K, gathers a [BLOCK_K, BLOCK_D] tile of x, scales by val and accumulates a
  2-D fp32 tile that is reduced once at the end. Rows longer than ``long_threshold`` are skipped
  here (their store is masked) and handled by the two kernels below.
* Load balancing = **split long rows**. A power-law graph has a few hub rows whose degree is
  orders of magnitude above the mean; one program per row would leave one SM busy with the hub
  long after the others finished. Rows with ``deg > T`` are cut into segments of T nonzeros
  (``_spmm_segment_kernel``, one program per segment writes an fp32 partial) and
  ``_spmm_segment_reduce_kernel`` sums each row's partials *in segment order*. No atomics
  anywhere, so the result is bitwise reproducible. Every program then does at most T nonzeros
  of work, which bounds the tail; rows stay in index order otherwise.
  Why this scheme rather than degree buckets or merge-path nnz chunks: it keeps the cheap,
  fully parallel one-program-per-row path for the >99% of rows that are short (no per-row
  search, no sort of rows by degree), costs nothing on graphs without hubs (Gowalla's largest
  degree, ~1.3k, is near T), and its bookkeeping (which rows are long, where their segments
  start) is O(#long rows), built once per graph with torch ops and cached. Merge-path needs a
  fix-up pass for rows cut at *every* chunk boundary; buckets need a sort and do not bound a
  single hub row. The threshold T (``long_threshold``, default ``defaults.long_threshold``)
  and BLOCK_K/BLOCK_D/num_warps are reasoned defaults: **to be measured** on the GPU
  (`python3 -m bench.device_run`, its kernels stage `bench/kernels.py`, sweeps T).

Bytes (docs/DESIGN.md §4): ``4(N+1) + nnz(4+4) + G + N d b`` with ``N d b <= G <= nnz d b``.
Int32 col halves index traffic; rowptr may be int32 or int64; offsets are computed in int64.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import defaults
from .tensor_cache import TensorCache


@triton.jit
def _gather_chunk(col_ptr, val_ptr, x_ptr, k0, end, offs_d, mask_d, stride_x,
                  BLOCK_K: tl.constexpr):
    """``(offs_k, val[k], x[col[k], offs_d])`` for k in [k0, min(k0 + BLOCK_K, end)), zeros
    outside: one coalesced read of a chunk of gathered rows (shared with kernels/ngcf_triton.py)."""
    offs_k = k0 + tl.arange(0, BLOCK_K)  # [BLOCK_K]
    mask_k = offs_k < end
    c = tl.load(col_ptr + offs_k, mask=mask_k, other=0).to(tl.int64)
    v = tl.load(val_ptr + offs_k, mask=mask_k, other=0.0)
    xt = tl.load(x_ptr + c[:, None] * stride_x + offs_d[None, :],
                 mask=mask_k[:, None] & mask_d[None, :], other=0.0)  # [BLOCK_K, BLOCK_D]
    return offs_k, v, xt


@triton.jit
def _chunk_sum(acc, col_ptr, val_ptr, x_ptr, k0, end, offs_d, mask_d, stride_x,
               BLOCK_K: tl.constexpr):
    """acc + x[col[k], offs_d] * val[k], k in [k0, min(k0 + BLOCK_K, end)): [BLOCK_K, BLOCK_D]."""
    offs_k, v, xt = _gather_chunk(col_ptr, val_ptr, x_ptr, k0, end, offs_d, mask_d, stride_x,
                                  BLOCK_K)
    return acc + xt.to(tl.float32) * v[:, None]


@triton.jit
def _row_tile_sum(col_ptr, val_ptr, x_ptr, start, end, offs_d, mask_d, stride_x,
                  BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr):
    """sum_{k in [start, end)} val[k] * x[col[k], offs_d] as a [BLOCK_D] fp32 vector."""
    acc = tl.zeros([BLOCK_K, BLOCK_D], dtype=tl.float32)
    if FOR_LOOPS:
        for k0 in range(start, end, BLOCK_K):
            acc = _chunk_sum(acc, col_ptr, val_ptr, x_ptr, k0, end, offs_d, mask_d, stride_x,
                             BLOCK_K)
    else:
        k0 = start
        while k0 < end:
            acc = _chunk_sum(acc, col_ptr, val_ptr, x_ptr, k0, end, offs_d, mask_d, stride_x,
                             BLOCK_K)
            k0 += BLOCK_K
    return tl.sum(acc, axis=0)


@triton.jit
def _spmm_row_kernel(
    rowptr_ptr, col_ptr, val_ptr, x_ptr, add_ptr, y_ptr,  # (n_rows+1), (nnz), (nnz), (n_cols, d), (n_rows, d), (n_rows, d)
    n_rows, d, long_threshold,
    stride_x, stride_add, stride_y,
    HAS_ADD: tl.constexpr, HAS_LONG: tl.constexpr,
    BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
):
    row = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < d
    start = tl.load(rowptr_ptr + row).to(tl.int64)
    end = tl.load(rowptr_ptr + row + 1).to(tl.int64)
    store_mask = mask_d
    if HAS_LONG:  # long rows belong to the segment kernels: do no work, store nothing
        is_short = (end - start) <= long_threshold
        end = tl.where(is_short, end, start)
        store_mask = offs_d < tl.where(is_short, d, 0)  # (mask & scalar breaks the interpreter)
    acc = _row_tile_sum(col_ptr, val_ptr, x_ptr, start, end, offs_d, mask_d, stride_x,
                        BLOCK_K, BLOCK_D)
    if HAS_ADD:
        acc += tl.load(add_ptr + row * stride_add + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * stride_y + offs_d, acc.to(y_ptr.dtype.element_ty), mask=store_mask)


@triton.jit
def _spmm_segment_kernel(
    seg_row_ptr, seg_start_ptr, rowptr_ptr, col_ptr, val_ptr, x_ptr, part_ptr,  # (n_seg), (n_seg), ..., (n_seg, d) fp32
    d, seg_len, stride_x,
    BLOCK_K: tl.constexpr, BLOCK_D: tl.constexpr,
):
    seg = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < d
    row = tl.load(seg_row_ptr + seg).to(tl.int64)
    start = tl.load(seg_start_ptr + seg).to(tl.int64)
    end = tl.minimum(start + seg_len, tl.load(rowptr_ptr + row + 1).to(tl.int64))
    acc = _row_tile_sum(col_ptr, val_ptr, x_ptr, start, end, offs_d, mask_d, stride_x,
                        BLOCK_K, BLOCK_D)
    tl.store(part_ptr + seg * d + offs_d, acc, mask=mask_d)


@triton.jit
def _spmm_segment_reduce_kernel(
    long_row_ptr, seg_ptr_ptr, part_ptr, add_ptr, y_ptr,  # (n_long), (n_long+1), (n_seg, d), (n_rows, d), (n_rows | n_long, d)
    d, stride_add, stride_y,
    HAS_ADD: tl.constexpr, COMPACT: tl.constexpr, BLOCK_D: tl.constexpr,
):
    # y[row] = add[row] + sum_{s in segments of row, in order} part[s]   (COMPACT: y[i] instead)
    i = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < d
    row = tl.load(long_row_ptr + i).to(tl.int64)
    s0 = tl.load(seg_ptr_ptr + i).to(tl.int64)
    s1 = tl.load(seg_ptr_ptr + i + 1).to(tl.int64)
    acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    if FOR_LOOPS:
        for s in range(s0, s1):
            acc += tl.load(part_ptr + s * d + offs_d, mask=mask_d, other=0.0)
    else:
        s = s0
        while s < s1:
            acc += tl.load(part_ptr + s * d + offs_d, mask=mask_d, other=0.0)
            s += 1
    if HAS_ADD:
        acc += tl.load(add_ptr + row * stride_add + offs_d, mask=mask_d, other=0.0).to(tl.float32)
    out_row = i if COMPACT else row
    tl.store(y_ptr + out_row * stride_y + offs_d, acc.to(y_ptr.dtype.element_ty), mask=mask_d)


@triton.jit
def _range_probe(n):
    for i in range(0, n):
        pass


def _for_loops_supported() -> bool:
    """Can ``for i in range(a, b)`` take run-time (tensor) bounds here? Compiled: always. In the
    interpreter: triton 3.9 yes, triton 3.6 no (its ``tensor.__index__`` rejects the 1-element
    arrays that hold every interpreted scalar: "only 0-dimensional arrays can be converted")."""
    from triton.runtime.interpreter import InterpretedFunction

    if not isinstance(_range_probe, InterpretedFunction):
        return True
    try:
        _range_probe[(1,)](2)
    except Exception:  # InterpreterError(TypeError(...))
        return False
    return True


# Loops with run-time bounds are written twice, ``if FOR_LOOPS: for ... else: while ...``,
# around one shared body. Compiled kernels always take the ``for`` form (scf.for; not
# software-pipelined: Triton pipelines a loop without tl.dot only when written
# tl.range(..., num_stages=S)). The ``while`` form exists only for interpreters whose ``range``
# cannot take a tensor bound (triton 3.6); tests force it under 3.9 too, so both forms are checked.
FOR_LOOPS = tl.constexpr(_for_loops_supported())

# ----------------------------------------------------------------------------- host side


class LongRows:
    """Which rows are longer than T, cut into segments of T nonzeros (all int64 tensors).

    rows (n_long), seg_ptr (n_long+1), seg_row (n_seg), seg_start (n_seg),
    pos (n_rows, int32: index of the row in ``rows`` or -1).
    """

    def __init__(self, rowptr: torch.Tensor, threshold: int):
        self.threshold = int(threshold)
        deg = torch.diff(rowptr).to(torch.int64)
        self.rows = torch.nonzero(deg > self.threshold).flatten()  # one host sync
        self.n_long = int(self.rows.numel())
        if self.n_long == 0:
            return
        n_segs = (deg[self.rows] + self.threshold - 1) // self.threshold
        self.seg_ptr = torch.zeros(self.n_long + 1, dtype=torch.int64, device=rowptr.device)
        self.seg_ptr[1:] = torch.cumsum(n_segs, 0)
        self.n_seg = int(self.seg_ptr[-1])
        owner = torch.repeat_interleave(torch.arange(self.n_long, device=rowptr.device), n_segs,
                                        output_size=self.n_seg)
        self.seg_row = self.rows[owner]
        local = torch.arange(self.n_seg, device=rowptr.device) - self.seg_ptr[owner]
        self.seg_start = rowptr.to(torch.int64)[self.seg_row] + local * self.threshold
        self.pos = torch.full((deg.numel(),), -1, dtype=torch.int32, device=rowptr.device)
        self.pos[self.rows] = torch.arange(self.n_long, dtype=torch.int32, device=rowptr.device)


_SCHEDULES = TensorCache()


def long_rows(rowptr: torch.Tensor, threshold: int) -> LongRows:
    """LongRows of a CSR, built once per rowptr (object and version) and threshold."""
    sched = _SCHEDULES.get((rowptr,), (int(threshold),))
    if sched is None:
        sched = LongRows(rowptr, threshold)
        _SCHEDULES.put((rowptr,), sched, (int(threshold),))
    return sched


def kernel_for(kernel, device: torch.device):
    """The kernel itself on CUDA; on CPU only the interpreter can run it."""
    if device.type != "cuda":
        from triton.runtime.interpreter import InterpretedFunction

        if not isinstance(kernel, InterpretedFunction):
            raise ValueError("Triton kernels on CPU tensors need TRITON_INTERPRET=1 set before "
                             f"triton is imported, but got device {device} with compiled kernels")
    return kernel


def spmm_config(d: int):
    """(BLOCK_D, BLOCK_K, num_warps) for feature size d. Heuristic, to be tuned on the GPU."""
    block_d = min(triton.next_power_of_2(max(d, 1)), 128)
    block_k = max(16, min(64, 2048 // block_d))
    num_warps = 4 if block_d * block_k >= 2048 else 2
    return block_d, block_k, num_warps


def spmm_long_rows(rowptr, col, val, x, sched: LongRows, y, add=None, compact=False,
                   block_d=None, block_k=None):
    """Write y rows of the long rows of A x (+ add); compact: y is (n_long, d)."""
    d = x.shape[1]
    bd, bk, nw = spmm_config(d)
    bd, bk = block_d or bd, block_k or bk
    part = torch.empty(sched.n_seg, d, dtype=torch.float32, device=x.device)
    n_dt = triton.cdiv(d, bd)
    kernel_for(_spmm_segment_kernel, x.device)[(sched.n_seg, n_dt)](
        sched.seg_row, sched.seg_start, rowptr, col, val, x, part,
        d, sched.threshold, x.stride(0),
        BLOCK_K=bk, BLOCK_D=bd, num_warps=nw)
    add_t = add if add is not None else part
    kernel_for(_spmm_segment_reduce_kernel, x.device)[(sched.n_long, n_dt)](
        sched.rows, sched.seg_ptr, part, add_t, y,
        d, add_t.stride(0), y.stride(0),
        HAS_ADD=add is not None, COMPACT=compact, BLOCK_D=bd, num_warps=1 if bd <= 64 else 2)
    return y


def spmm_triton(rowptr, col, val, x, add=None, out_dtype=None, *, out=None,
                long_threshold=None, block_d=None, block_k=None):
    """y = A x (+ add) with the Triton kernels; inputs already checked (see checks.py).

    x: (n_cols, d) float32/bf16/fp16, val float32, add: (n_rows, d) any float dtype or None.
    ``out`` may be ``add`` itself (each row is read before it is written, by one program).
    """
    n_rows, d = rowptr.shape[0] - 1, x.shape[1]
    out_dtype = out_dtype or x.dtype
    if val.dtype != torch.float32 or x.dtype == torch.float64:
        raise ValueError(f"csr_spmm(): the triton backend takes float32 val and float32/bf16/fp16 "
                         f"x, but got val {val.dtype} and x {x.dtype}")
    y = out if out is not None else torch.empty(n_rows, d, dtype=out_dtype, device=x.device)
    if n_rows == 0 or d == 0:
        return y
    long_threshold = long_threshold or defaults.long_threshold
    sched = long_rows(rowptr, long_threshold)
    bd, bk, nw = spmm_config(d)
    bd, bk = block_d or bd, block_k or bk
    add_t = add if add is not None else y
    kernel_for(_spmm_row_kernel, x.device)[(n_rows, triton.cdiv(d, bd))](
        rowptr, col, val, x, add_t, y,
        n_rows, d, long_threshold,
        x.stride(0), add_t.stride(0), y.stride(0),
        HAS_ADD=add is not None, HAS_LONG=sched.n_long > 0,
        BLOCK_K=bk, BLOCK_D=bd, num_warps=nw)
    if sched.n_long:
        spmm_long_rows(rowptr, col, val, x, sched, y, add=add, block_d=bd, block_k=bk)
    return y
