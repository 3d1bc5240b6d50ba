"""The machine's own memory ceilings, measured in the same run as the profile they judge.

* **copy**: ``dst.copy_(src)`` of a float32 buffer; bytes = read + write = ``2 · size``;
* **gather**: ``torch.index_select(table, 0, idx, out=...)`` of uniformly random rows of a
  float32 table with ``d`` columns; bytes = gathered rows + written rows + the int64 indices;
* **gather-reduce**: the same random rows read and summed in bags of 16 (``embedding_bag``),
  the access pattern of an SpMM (rows read, never written); bytes = gathered rows + indices +
  the sums written;
* **GEMM**: a ``(4096 x 256) @ (256 x 256)`` float32 matrix product, ``2 m k n`` flops (the
  compute ceiling of the NGCF layer's dense products, which have this thin shape).

Each at two working-set sizes: a table of the graph's own ``N x d`` (what the training step's
gathers and element-wise passes really touch; it may fit in the last-level cache) and one of at
least four times the last-level cache (``DRAM``). Median of ``repeats`` timed calls after a
warm-up, with torch's current thread count.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable, Dict

import torch

DEFAULT_LLC = 32 * 2**20


def last_level_cache_bytes() -> int:
    """Size of the largest CPU cache (sysfs), or 32 MiB when unknown."""
    best = 0
    for size in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = size.read_text().strip().upper()
        scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
        try:
            best = max(best, int(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return best or DEFAULT_LLC


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def copy_gbs(nbytes: int, repeats: int) -> float:
    n = max(1, nbytes // 4)
    src, dst = torch.randn(n), torch.empty(n)
    return 2 * n * 4 / median_seconds(lambda: dst.copy_(src), repeats) / 1e9


def gather_gbs(table_rows: int, dim: int, n_gather: int, repeats: int, seed: int = 0) -> float:
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(table_rows, dim, generator=gen)
    idx = torch.randint(table_rows, (n_gather,), generator=gen)
    out = torch.empty(n_gather, dim)
    seconds = median_seconds(lambda: torch.index_select(table, 0, idx, out=out), repeats)
    return (2 * n_gather * dim * 4 + n_gather * 8) / seconds / 1e9


def gather_reduce_gbs(table_rows: int, dim: int, n_gather: int, repeats: int, bag: int = 16,
                      seed: int = 0) -> float:
    """Random rows read and summed in bags of ``bag`` (``embedding_bag``): rows are read, not
    written, as an SpMM reads x. Bytes: gathered rows + int64 indices + the sums written."""
    gen = torch.Generator().manual_seed(seed)
    table = torch.randn(table_rows, dim, generator=gen)
    idx = torch.randint(table_rows, (n_gather,), generator=gen)
    offsets = torch.arange(0, n_gather, bag)
    seconds = median_seconds(
        lambda: torch.nn.functional.embedding_bag(idx, table, offsets, mode="sum"), repeats)
    return (n_gather * dim * 4 + n_gather * 8 + len(offsets) * dim * 4) / seconds / 1e9


def gemm_gflops(repeats: int, m: int = 4096, k: int = 256, n: int = 256) -> float:
    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    return 2 * m * k * n / median_seconds(lambda: torch.mm(a, b, out=out), repeats) / 1e9


def measure(n_nodes: int, dim: int, repeats: int = 15) -> Dict[str, float]:
    """GB/s (GFLOP/s for GEMM) of the ceilings above for a graph of ``n_nodes`` x ``dim``."""
    llc = last_level_cache_bytes()
    big_rows = max(4 * llc, 256 * 2**20) // (dim * 4)
    small_bytes = n_nodes * dim * 4
    n_gather = max(1 << 20, 4 * n_nodes)
    return {
        "llc_bytes": llc,
        "copy_nd": copy_gbs(small_bytes, repeats * 4),
        "copy_dram": copy_gbs(big_rows * dim * 4, repeats),
        "gather_nd": gather_gbs(n_nodes, dim, n_gather, repeats),
        "gather_dram": gather_gbs(big_rows, dim, n_gather, repeats),
        "gather_reduce_nd": gather_reduce_gbs(n_nodes, dim, n_gather, repeats),
        "gather_reduce_dram": gather_reduce_gbs(big_rows, dim, n_gather, repeats),
        "gemm": gemm_gflops(repeats),
        "table_nd_bytes": small_bytes,
        "table_dram_bytes": big_rows * dim * 4,
    }
