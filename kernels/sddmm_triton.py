"""SDDMM in Triton: ``out[k] = ⟨a[row(k)], b[col[k]]⟩`` for the entries k of a CSR, fp32
accumulation, deterministic (no atomics). Contract: :func:`gnn.kernels.csr_sddmm`
(kernels/csr_sddmm.py, which also decides when this runs).

Edge-parallel: one program per block of BLOCK_E consecutive entries. It loads their rows (a
per-entry row array, built once per graph) and columns, gathers the [BLOCK_E, BLOCK_D] tiles of
``a`` and ``b``, multiplies and reduces over the feature axis, tile after tile (a
``tl.static_range`` over ceil(d / BLOCK_D) tiles, unrolled at compile time: no run-time loop
bound). Every program does the same work whatever the degrees (no hub row stalls one), and
consecutive entries mostly share a row, so the ``a`` rows are re-read from cache.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from .spmm_triton import kernel_for
from .tensor_cache import TensorCache


@triton.jit
def _sddmm_kernel(row_ptr, col_ptr, a_ptr, b_ptr, out_ptr, nnz, d, stride_a, stride_b,
                  N_DT: tl.constexpr, BLOCK_E: tl.constexpr, BLOCK_D: tl.constexpr):
    offs_e = tl.program_id(0).to(tl.int64) * BLOCK_E + tl.arange(0, BLOCK_E)
    mask_e = offs_e < nnz
    r = tl.load(row_ptr + offs_e, mask=mask_e, other=0).to(tl.int64)
    c = tl.load(col_ptr + offs_e, mask=mask_e, other=0).to(tl.int64)
    acc = tl.zeros([BLOCK_E], dtype=tl.float32)
    for t in tl.static_range(N_DT):
        offs_d = t * BLOCK_D + tl.arange(0, BLOCK_D)
        mask = mask_e[:, None] & (offs_d < d)[None, :]
        at = tl.load(a_ptr + r[:, None] * stride_a + offs_d[None, :], mask=mask, other=0.0)
        bt = tl.load(b_ptr + c[:, None] * stride_b + offs_d[None, :], mask=mask, other=0.0)
        acc += tl.sum(at.to(tl.float32) * bt.to(tl.float32), axis=1)
    tl.store(out_ptr + offs_e, acc, mask=mask_e)


_ENTRY_ROWS = TensorCache()


def entry_rows(rowptr: torch.Tensor, nnz: int) -> torch.Tensor:
    """The row of each of the ``nnz`` entries (int32), built once per rowptr (object and
    version), without a host read (``nnz`` is known from col's length)."""
    hit = _ENTRY_ROWS.get((rowptr,), (nnz,))
    if hit is None:
        counts = torch.diff(rowptr).to(torch.int64)
        hit = torch.repeat_interleave(
            torch.arange(rowptr.shape[0] - 1, device=rowptr.device, dtype=torch.int32), counts,
            output_size=nnz)
        _ENTRY_ROWS.put((rowptr,), hit, (nnz,))
    return hit


def sddmm_config(d: int):
    """(BLOCK_E, BLOCK_D, N_DT, num_warps) for feature size d."""
    block_d = min(triton.next_power_of_2(max(d, 1)), 128)
    block_e = max(16, min(128, 4096 // block_d))
    return block_e, block_d, triton.cdiv(max(d, 1), block_d), 4


def sddmm_triton(rowptr, col, a, b, out=None):
    """``out[k] = ⟨a[row(k)], b[col[k]]⟩`` in float32 (nnz,); inputs already checked."""
    nnz, d = col.shape[0], a.shape[1]
    out = torch.empty(nnz, dtype=torch.float32, device=a.device) if out is None else out
    if nnz == 0:
        return out
    if d == 0:
        return out.zero_()
    block_e, block_d, n_dt, warps = sddmm_config(d)
    kernel_for(_sddmm_kernel, a.device)[(triton.cdiv(nnz, block_e),)](
        entry_rows(rowptr, nnz), col, a, b, out, nnz, d, a.stride(0), b.stride(0),
        N_DT=n_dt, BLOCK_E=block_e, BLOCK_D=block_d, num_warps=warps)
    return out
