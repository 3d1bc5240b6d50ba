"""CSR x dense SpMM in Triton: ``y = A x (+ add)``, fp32 accumulation, deterministic. Contract:
:func:`gnn.kernels.csr_spmm` (kernels/csr_spmm.py, which also decides when these kernels run).
Design figures (instructions per nonzero, registers, occupancy, the H200 estimate) come from
``python -m tools.kernel_static`` (results/kernel_static/, docs/KERNELS.md).

Work decomposition: **a lane per row, a block of rows per program, rows binned by degree.**

* A *work item* is a row, or a segment of at most T nonzeros of a row longer than T
  (``long_threshold``). The items of a graph are sorted by length, longest first, once per
  graph (:class:`Schedule`, cached with the adjacency like the index checks). A program takes
  ROWS consecutive items, one per lane, and steps through their nonzeros together: step k
  gathers ``x[col[start + k]]`` for every lane into a [NT, ROWS, CHUNK] register tile and
  multiplies it by ``val[start + k]`` (fp32 FMA). No reduction across lanes or warps: each
  lane owns its row's sum, so a row's terms are added in CSR order, always the same way.
* Binning makes the lanes of a block almost equally long, so the steps every lane takes (up to
  the block's shortest item, read from the sorted lengths) run without masks; only the few
  steps to the block's longest item are masked. Longest first: the heaviest blocks start
  first, and no program does more than T steps.
* The [NT, ROWS, CHUNK] shape puts the NT chunks of CHUNK features of one row into one
  thread (Triton gives the fastest axis to the lanes of a warp first): a row is read by a few
  threads, each with several 16-byte loads at constant offsets from one address, so one load
  of col and val serves many features (the per-nonzero cost is mostly the FMAs).
* Segments write fp32 partials; ``_spmm_segment_reduce_kernel`` adds each long row's partials
  in segment order (+ add). No atomics anywhere: bitwise reproducible.
* The chunk loops are plain ``for`` loops (scf.for): no async copies, nothing software
  pipelined (``tl.range(num_stages=...)`` turns the gathers into async copies plus shared-memory
  reads: more instructions per nonzero in the SASS, and lanes already give the parallelism).

Bytes (docs/DESIGN.md §4): ``4(N+1) + nnz(4+4) + G + N d b`` with ``N d b <= G <= nnz d b``;
x offsets are int32 when ``n_cols * stride`` fits (int64 otherwise), index offsets follow the
item arrays (int32 when nnz < 2^31).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import defaults
from .tensor_cache import TensorCache


@triton.jit
def _gather_step(acc, col_ptr, val_ptr, x_ptr, idx, lane, offs_x, mask_x, stride_x,
                 MASKED: tl.constexpr, EVEN_D: tl.constexpr, OFF64: tl.constexpr):
    """acc[t, r, j] + val[idx[r]] * x[col[idx[r]], offs_x[t, 0, j]] (lanes off: + 0)."""
    if MASKED:
        c = tl.load(col_ptr + idx, mask=lane, other=0)
        v = tl.load(val_ptr + idx, mask=lane, other=0.0)
    else:
        c = tl.load(col_ptr + idx)
        v = tl.load(val_ptr + idx)
    c = c.to(tl.int64) if OFF64 else c.to(tl.int32)
    ptrs = x_ptr + (c * stride_x)[None, :, None] + offs_x
    if MASKED:
        xt = tl.load(ptrs, mask=lane[None, :, None] & mask_x, other=0.0)
    elif EVEN_D:
        xt = tl.load(ptrs)
    else:
        xt = tl.load(ptrs, mask=mask_x, other=0.0)
    return acc + xt.to(tl.float32) * v[None, :, None]


@triton.jit
def _gather_steps(acc, col_ptr, val_ptr, x_ptr, start, length, k0, k1, offs_x, mask_x, stride_x,
                  MASKED: tl.constexpr, EVEN_D: tl.constexpr, OFF64: tl.constexpr):
    """Steps k0 <= k < k1 of :func:`_gather_step` (masked: lanes with k >= length add 0)."""
    if FOR_LOOPS:
        for k in range(k0, k1):
            acc = _gather_step(acc, col_ptr, val_ptr, x_ptr, start + k, k < length, offs_x,
                               mask_x, stride_x, MASKED, EVEN_D, OFF64)
    else:
        k = k0
        while k < k1:
            acc = _gather_step(acc, col_ptr, val_ptr, x_ptr, start + k, k < length, offs_x,
                               mask_x, stride_x, MASKED, EVEN_D, OFF64)
            k += 1
    return acc


@triton.jit
def _items(start_ptr, len_ptr, i0, n_items, ROWS: tl.constexpr):
    """Items i0 .. i0 + ROWS - 1 (sorted by length, longest first): their indices, the lane
    mask, first nonzeros, lengths, and the block's shortest and longest length."""
    offs_r = i0 + tl.arange(0, ROWS)
    lanes = offs_r < n_items
    start = tl.load(start_ptr + offs_r, mask=lanes, other=0)
    length = tl.load(len_ptr + offs_r, mask=lanes, other=0)
    n_all = tl.load(len_ptr + tl.minimum(i0 + ROWS, n_items) - 1)
    n_max = tl.load(len_ptr + i0)
    return offs_r, lanes, start, length, n_all, n_max


@triton.jit
def _gather_tile(col_ptr, val_ptr, x_ptr, start, length, n_all, n_max, offs_x, mask_x, stride_x,
                 ROWS: tl.constexpr, NT: tl.constexpr, CHUNK: tl.constexpr, EVEN_D: tl.constexpr,
                 OFF64: tl.constexpr):
    """``acc[t, r, j] = sum_k val[k] x[col[k], offs_x[t, 0, j]]`` over lane r's nonzeros: every
    lane up to the block's shortest length unmasked, then masked up to its longest. Lanes past
    the last item (start 0, length 0) read valid entries k < n_all and must not be stored."""
    acc = tl.zeros([NT, ROWS, CHUNK], dtype=tl.float32)
    acc = _gather_steps(acc, col_ptr, val_ptr, x_ptr, start, length, 0, n_all, offs_x, mask_x,
                        stride_x, False, EVEN_D, OFF64)
    return _gather_steps(acc, col_ptr, val_ptr, x_ptr, start, length, n_all, n_max, offs_x, mask_x,
                         stride_x, True, EVEN_D, OFF64)


@triton.jit
def _spmm_row_kernel(
    start_ptr, len_ptr, out_ptr,                  # items (n_items): first nonzero, length, row or -1-segment
    col_ptr, val_ptr, x_ptr, add_ptr, y_ptr, part_ptr,  # (nnz), (nnz), (n_cols, d), (n_rows, d) x2, (n_seg, d) fp32
    n_items, d, stride_x, stride_add, stride_y,
    HAS_ADD: tl.constexpr, HAS_PART: tl.constexpr, ROWS: tl.constexpr, NT: tl.constexpr,
    CHUNK: tl.constexpr, EVEN_D: tl.constexpr, OFF64: tl.constexpr,
):
    offs_r, lanes, start, length, n_all, n_max = _items(start_ptr, len_ptr,
                                                        tl.program_id(0) * ROWS, n_items, ROWS)
    d0 = tl.program_id(1) * (NT * CHUNK)
    offs_x = d0 + (tl.arange(0, NT) * CHUNK)[:, None, None] + tl.arange(0, CHUNK)[None, None, :]
    mask_x = offs_x < d
    acc = _gather_tile(col_ptr, val_ptr, x_ptr, start, length, n_all, n_max, offs_x, mask_x,
                       stride_x, ROWS, NT, CHUNK, EVEN_D, OFF64)
    out = tl.load(out_ptr + offs_r, mask=lanes, other=0)
    to_y = (lanes & (out >= 0))[None, :, None] & mask_x
    row = out.to(tl.int64)[None, :, None]
    if HAS_ADD:
        acc += tl.load(add_ptr + row * stride_add + offs_x, mask=to_y, other=0.0).to(tl.float32)
    tl.store(y_ptr + row * stride_y + offs_x, acc.to(y_ptr.dtype.element_ty), mask=to_y)
    if HAS_PART:  # a segment of a long row: its fp32 partial
        seg = (-1 - out).to(tl.int64)[None, :, None]
        tl.store(part_ptr + seg * d + offs_x, acc, mask=(lanes & (out < 0))[None, :, None] & mask_x)


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
# around one shared body. Compiled kernels always take the ``for`` form. The ``while`` form
# exists only for interpreters whose ``range`` cannot take a tensor bound (triton 3.6); tests
# force it under 3.9 too, so both forms are checked.
FOR_LOOPS = tl.constexpr(_for_loops_supported())

# ----------------------------------------------------------------------------- host side

INDEX32_LIMIT = 2**31 - 1  # item starts are int32 below this nnz
OFFSET32_LIMIT = 2**31     # x offsets (col * stride) are int32 below this n_cols * stride


def _sorted_items(lengths, starts, outs, index_dtype):
    """(start, len, out) of the items, longest first (stable), as the kernels read them."""
    order = torch.sort(lengths, descending=True, stable=True).indices
    return (starts[order].to(index_dtype), lengths[order].to(torch.int32),
            outs[order].to(torch.int32))


class Schedule:
    """A graph's work items for threshold T, built once per rowptr (torch ops, one host sync).

    * ``items``: (start, len, out) of every row with at most T nonzeros (out = the row) and of
      every T-segment of the longer rows (out = -1 - segment), longest first: the SpMM's.
    * ``seg_items``: the segments alone (the fused NGCF forward sums long rows beforehand).
    * ``rows``, ``seg_ptr``: the long rows and their segments' range (segment order), for the
      ordered reduction; ``n_long``, ``n_seg``.
    * ``fused``: (start, len, row) of the rows with at most T nonzeros, longest first, then the
      long rows in ``rows`` order with length 0 (the fused kernels read their S from a compact
      buffer: long row ``rows[i]`` is fused item ``n_rows - n_long + i``).
    """

    def __init__(self, rowptr: torch.Tensor, threshold: int, nnz: int):
        self.threshold = t = int(threshold)
        dev, i64 = rowptr.device, torch.int64
        index_dtype = torch.int32 if nnz < INDEX32_LIMIT else i64
        deg = torch.diff(rowptr).to(i64)
        lo = rowptr[:-1].to(i64)
        is_long = deg > t
        self.rows = torch.nonzero(is_long).flatten()  # the one host sync
        self.n_long = n_long = int(self.rows.numel())
        short = torch.nonzero(~is_long).flatten() if n_long else torch.arange(deg.numel(), device=dev)
        n_segs = (deg[self.rows] + t - 1) // t
        self.seg_ptr = torch.zeros(n_long + 1, dtype=i64, device=dev)
        self.seg_ptr[1:] = torch.cumsum(n_segs, 0)
        self.n_seg = n_seg = int(self.seg_ptr[-1]) if n_long else 0
        owner = torch.repeat_interleave(torch.arange(n_long, device=dev), n_segs, output_size=n_seg)
        seg_row = self.rows[owner]
        local = (torch.arange(n_seg, device=dev) - self.seg_ptr[owner]) * t
        seg_start, seg_len = lo[seg_row] + local, torch.clamp(deg[seg_row] - local, max=t)
        seg_out = -1 - torch.arange(n_seg, device=dev)
        self.seg_items = _sorted_items(seg_len, seg_start, seg_out, index_dtype)
        self.items = _sorted_items(torch.cat([deg[short], seg_len]), torch.cat([lo[short], seg_start]),
                                   torch.cat([short, seg_out]), index_dtype)
        light = _sorted_items(deg[short], lo[short], short, index_dtype)
        self.fused = tuple(torch.cat([a, b.to(a.dtype)]) for a, b in zip(
            light, (lo[self.rows], torch.zeros_like(self.rows), self.rows)))


_SCHEDULES = TensorCache()


def schedule(rowptr: torch.Tensor, threshold: int, nnz: int) -> Schedule:
    """The Schedule of a CSR, built once per rowptr (object and version) and threshold."""
    sched = _SCHEDULES.get((rowptr,), (int(threshold),))
    if sched is None:
        sched = Schedule(rowptr, threshold, nnz)
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


def tile_config(d: int, elem_bytes: int, max_block_d: int = 128):
    """(NT, CHUNK, threads per row) of a gathered row tile: 16-byte loads, a row on 4 threads
    or, for wide rows, on as many as keep each thread at 16 features (more per thread spill on
    sm_80), NT * CHUNK >= d up to ``max_block_d`` (more features: more programs along the
    grid's second axis)."""
    block_d = min(triton.next_power_of_2(max(d, 1)), max_block_d)
    vec = min(16 // elem_bytes, block_d)
    threads = min(block_d // vec, max(4, block_d // 16))
    return block_d // (threads * vec), threads * vec, threads


def spmm_config(d: int, elem_bytes: int):
    """(ROWS, NT, CHUNK, num_warps): rows per program from a budget of 16 fp32 accumulators per
    thread (one row per thread from d = 64). Reasoned, to be measured on the GPU."""
    nt, chunk, threads = tile_config(d, elem_bytes)
    num_warps = 4
    rows_per_thread = max(1, min(4, 16 // (nt * chunk // threads)))
    return (32 // threads) * num_warps * rows_per_thread, nt, chunk, num_warps


def launch_rows(items, col, val, x, y, part=None, add=None, n_cols=None):
    """The row kernel on ``items`` (a Schedule's item tuple) of x: y rows and segment partials."""
    start, length, out = items
    n_items, d = length.shape[0], x.shape[1]
    if n_items == 0:
        return
    rows, nt, chunk, nw = spmm_config(d, x.element_size())
    n_cols = x.shape[0] if n_cols is None else n_cols
    add_t = add if add is not None else y
    kernel_for(_spmm_row_kernel, x.device)[(triton.cdiv(n_items, rows), triton.cdiv(d, nt * chunk))](
        start, length, out, col, val, x, add_t, y, part if part is not None else y,
        n_items, d, x.stride(0), add_t.stride(0), y.stride(0),
        HAS_ADD=add is not None, HAS_PART=part is not None, ROWS=rows, NT=nt, CHUNK=chunk,
        EVEN_D=d % (nt * chunk) == 0, OFF64=n_cols * x.stride(0) >= OFFSET32_LIMIT, num_warps=nw)


def reduce_config(d: int):
    """(BLOCK_D, num_warps) of the segment reduction."""
    block_d = min(triton.next_power_of_2(max(d, 1)), 128)
    return block_d, 1 if block_d <= 64 else 2


def launch_reduce(sched: Schedule, part, y, add=None, compact=False):
    """y rows of the long rows = their partials summed in segment order (+ add)."""
    d = part.shape[1]
    bd, nw = reduce_config(d)
    add_t = add if add is not None else part
    kernel_for(_spmm_segment_reduce_kernel, part.device)[(sched.n_long, triton.cdiv(d, bd))](
        sched.rows, sched.seg_ptr, part, add_t, y, d, add_t.stride(0), y.stride(0),
        HAS_ADD=add is not None, COMPACT=compact, BLOCK_D=bd, num_warps=nw)


def spmm_long_rows(col, val, x, sched: Schedule):
    """(n_long, d) fp32: the rows of A x longer than T, in ``sched.rows`` order (fused NGCF)."""
    d = x.shape[1]
    part = torch.empty(sched.n_seg, d, dtype=torch.float32, device=x.device)
    y = torch.empty(sched.n_long, d, dtype=torch.float32, device=x.device)
    launch_rows(sched.seg_items, col, val, x, part, part=part)
    launch_reduce(sched, part, y, compact=True)
    return y


def spmm_triton(rowptr, col, val, x, add=None, out_dtype=None, *, out=None, long_threshold=None):
    """y = A x (+ add) with the Triton kernels; inputs already checked (see checks.py).

    x: (n_cols, d) float32/bf16/fp16, val float32, add: (n_rows, d) any float dtype or None.
    ``out`` may be ``add`` itself (each row is read before it is written, by one lane).
    """
    n_rows, d = rowptr.shape[0] - 1, x.shape[1]
    out_dtype = out_dtype or x.dtype
    if val.dtype != torch.float32 or x.dtype == torch.float64:
        raise ValueError(f"csr_spmm(): the triton backend takes float32 val and float32/bf16/fp16 "
                         f"x, but got val {val.dtype} and x {x.dtype}")
    y = out if out is not None else torch.empty(n_rows, d, dtype=out_dtype, device=x.device)
    if n_rows == 0 or d == 0:
        return y
    sched = schedule(rowptr, long_threshold or defaults.long_threshold, col.shape[0])
    part = torch.empty(sched.n_seg, d, dtype=torch.float32, device=x.device) if sched.n_long else None
    launch_rows(sched.items, col, val, x, y, part=part, add=add)
    if sched.n_long:
        launch_reduce(sched, part, y, add=add)
    return y
