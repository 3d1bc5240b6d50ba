"""The step profile's byte model: what each profiled op must move, and the machine's ceilings.

Ceilings, measured in the same run, float32, median of timed calls after a warm-up: copy
(``dst.copy_(src)``, read + write), gather (``index_select`` of random rows, d columns: rows
read + written + int64 indices), gather-reduce (the same rows summed in bags of 16 by
``embedding_bag``: read, not written, as an SpMM reads x) and GEMM ((4096 × 256) @ (256 × 256),
the NGCF layer's thin shape); the memory ones at two working sets, the graph's own N × d table
and one of at least 4 × the last-level cache (DRAM).

Each ``torch.profiler`` event costs ``Cost(stream, gather, flops)`` from its input shapes and
dtypes, and its floor is the time the N × d ceilings allow::

    floor = stream / copy + gather / gather_bw     (an SpMM's gathered rows: / gather-reduce)
    floor = max(stream / copy, flops / gemm)       (dense products)

SpMM (``gnn::csr_spmm``, ``embedding_bag``, a CSR matmul): stream the indices and the output,
gather nnz rows of x, 2·nnz·d flops; dense products: both operands, the output (and an added
input); ``index_select``: indices and output, gather the rows; ``index_add_`` / ``scatter_add_``:
indices and source, read-modify-write of the touched rows; ``cat``: the bytes it allocated, read
and written; writes, copies and reductions by their sizes; anything else element-wise: every
input of the largest size read, one written; views and allocations are free; other events cost
what their children cost; a fused Adam step reads p, g, m, v and writes p, m, v.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ELEMENT_BYTES = {"float": 4, "double": 8, "long int": 8, "int": 4, "short int": 2, "signed char": 1,
                 "unsigned char": 1, "bool": 1, "c10::BFloat16": 2, "c10::Half": 2}
FREE = {"as_strided", "view", "_unsafe_view", "reshape", "narrow", "slice", "select", "expand",
        "expand_as", "unsqueeze", "squeeze", "detach", "t", "transpose", "permute", "split",
        "split_with_sizes", "chunk", "unbind", "alias", "empty", "empty_like", "empty_strided",
        "new_empty", "new_empty_strided", "result_type", "item", "_local_scalar_dense", "resize_",
        "lift_fresh", "sparse_compressed_tensor", "_sparse_compressed_tensor_unsafe",
        "sparse_csr_tensor", "view_as", "_reshape_alias", "set_", "record_stream"}
WRITE_ONLY = {"fill_", "zero_", "random_", "uniform_", "normal_", "bernoulli_"}
REDUCTIONS = {"sum", "mean", "linalg_vector_norm", "norm", "amax", "amin", "max", "min", "aminmax",
              "any", "all", "prod"}
RECURSE = {"to", "_to_copy", "clone", "contiguous", "new_zeros", "zeros", "zeros_like",
           "index_select_backward", "embedding_dense_backward", "ones_like", "full"}
GEMM = {"mm", "addmm", "matmul", "bmm", "linear"}
SPMM_LIKE = {"embedding_bag", "_embedding_bag", "_embedding_bag_forward_only"}


def last_level_cache_bytes() -> int:
    """The largest CPU cache (sysfs), or 32 MiB when unknown."""
    best = 0
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip().upper()
        best = max(best, int(text.rstrip("KMG") or 0) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1))
    return best or 32 * 2**20


def _median_seconds(fn, repeats: int) -> float:
    for _ in range(2):  # warm-up
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure_ceilings(n_nodes: int, dim: int, repeats: int = 15) -> dict:
    """GB/s of copy, gather and gather-reduce at N × d and DRAM sizes; GEMM GFLOP/s."""
    llc = last_level_cache_bytes()
    big_rows, gen = max(4 * llc, 256 * 2**20) // (dim * 4), torch.Generator().manual_seed(0)
    n_gather = max(1 << 20, 4 * n_nodes)
    out = {"llc_bytes": llc, "table_nd_bytes": n_nodes * dim * 4, "table_dram_bytes": big_rows * dim * 4}
    for suffix, rows, reps in (("nd", n_nodes, repeats * 4), ("dram", big_rows, repeats)):
        src, dst = torch.randn(rows * dim), torch.empty(rows * dim)
        out[f"copy_{suffix}"] = 2 * src.numel() * 4 / _median_seconds(lambda: dst.copy_(src), reps) / 1e9
        table, idx = torch.randn(rows, dim, generator=gen), torch.randint(rows, (n_gather,), generator=gen)
        rows_out, offsets = torch.empty(n_gather, dim), torch.arange(0, n_gather, 16)
        sec = _median_seconds(lambda: torch.index_select(table, 0, idx, out=rows_out), repeats)
        out[f"gather_{suffix}"] = (2 * n_gather * dim * 4 + n_gather * 8) / sec / 1e9
        sec = _median_seconds(lambda: torch.nn.functional.embedding_bag(idx, table, offsets, mode="sum"), repeats)
        out[f"gather_reduce_{suffix}"] = (n_gather * dim * 4 + n_gather * 8 + offsets.numel() * dim * 4) / sec / 1e9
    a, b, c = torch.randn(4096, 256), torch.randn(256, 256), torch.empty(4096, 256)
    out["gemm"] = 2 * 4096 * 256 * 256 / _median_seconds(lambda: torch.mm(a, b, out=c), repeats) / 1e9
    return out


@dataclass
class Cost:
    stream: float = 0.0
    gather: float = 0.0
    flops: float = 0.0
    floor: float = 0.0  # seconds

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.stream + other.stream, self.gather + other.gather, self.flops + other.flops,
                    self.floor + other.floor)

    @property
    def bytes(self) -> float:
        return self.stream + self.gather


def _tensors(event):
    """``(numel, element bytes)`` of each tensor input; None for other arguments."""
    out = []
    for shape, dtype in zip(event.input_shapes, event.input_dtypes):
        ok = dtype in ELEMENT_BYTES and isinstance(shape, list)
        out.append((int(torch.Size(shape).numel()), ELEMENT_BYTES[dtype]) if ok else None)
    return out


class ByteModel:
    """Costs of profiler events against the ceilings of :func:`measure_ceilings`."""

    def __init__(self, ceilings: dict, param_bytes: int):
        self.copy_bw, self.gather_bw = ceilings["copy_nd"] * 1e9, ceilings["gather_nd"] * 1e9
        self.reduce_bw, self.gemm_rate = ceilings["gather_reduce_nd"] * 1e9, ceilings["gemm"] * 1e9
        self.adam = self.memory(7 * param_bytes)  # any Adam step: read p, g, m, v; write p, m, v

    def memory(self, stream: float, gather: float = 0.0) -> Cost:
        return Cost(stream, gather, 0.0, stream / self.copy_bw + gather / self.gather_bw)

    def spmm(self, n_rows: int, nnz: int, index_bytes: float, dim: int, elem: int) -> Cost:
        stream, gather = index_bytes + n_rows * dim * elem, nnz * dim * elem
        return Cost(stream, gather, 2.0 * nnz * dim, stream / self.copy_bw + gather / self.reduce_bw)

    def cost(self, event) -> Cost:
        name = event.name
        if name == "gnn::csr_spmm":
            (n1, b1), (nnz, bc), (_, bv), (_, bx) = _tensors(event)[:4]
            shape = event.input_shapes[3]
            return self.spmm(n1 - 1, nnz, n1 * b1 + nnz * (bc + bv), shape[1] if len(shape) == 2 else 1, bx)
        if name.startswith("Optimizer.step#"):
            inner = self._children(event)
            return inner if inner.bytes else self.adam
        return self._aten(event, None) if name.startswith("aten::") else self._children(event)

    def _children(self, event) -> Cost:
        total, sparse = Cost(), None
        for child in event.cpu_children:
            if child.name == "aten::sparse_compressed_tensor":  # the CSR operand of the next product
                t = _tensors(child)
                if all(t[:3]):
                    (n1, b1), (nnz, bc), (_, bv) = t[:3]
                    sparse = (n1 - 1, nnz, n1 * b1 + nnz * (bc + bv))
            elif child.name.startswith("aten::"):
                total = total + self._aten(child, sparse)
                sparse = None if child.name[6:] in GEMM else sparse
            else:
                total = total + self.cost(child)
        return total

    def _aten(self, event, sparse) -> Cost:
        op, t, shapes = event.name[6:], _tensors(event), event.input_shapes
        if op in FREE:
            return Cost()
        if op == "_fused_adam_":
            return self.adam
        if op in GEMM:
            return self._gemm(event, t, shapes, sparse)
        if op in SPMM_LIKE and len(t) >= 3 and all(t[:3]):
            (_, bw), (nnz, bi), (n_off, bo) = t[:3]
            return self.spmm(n_off - 1, nnz, nnz * bi + n_off * bo + nnz * 4,
                             shapes[0][1] if len(shapes[0]) == 2 else 1, bw)
        if op == "index_select" and len(t) >= 3 and t[0] and t[2]:
            (n_idx, bi), row = t[2], (t[0][0] // max(shapes[0][0], 1)) * t[0][1]
            return self.memory(n_idx * bi + n_idx * row, n_idx * row)
        if op in ("index_add_", "index_add", "scatter_add_", "scatter_add") and len(t) >= 4 and t[2] and t[3]:
            (n_idx, bi), (n_src, bs) = t[2], t[3]
            return self.memory((n_idx if op.startswith("index") else n_src) * bi + n_src * bs, 2 * n_src * bs)
        if op == "cat":  # a TensorList, whose shapes the profiler does not keep: its allocation
            return self.memory(2 * max(getattr(event, "cpu_memory_usage", 0), 0))
        if op in RECURSE or not any(t):
            return self._children(event)
        if op in WRITE_ONLY or op in REDUCTIONS:
            return self.memory(t[0][0] * t[0][1]) if t[0] else Cost()
        if op == "copy_":
            return self.memory(t[1][0] * t[1][1] + t[0][0] * t[0][1]) if len(t) >= 2 and t[0] and t[1] else Cost()
        sized = [x for x in t if x]
        largest = max(n for n, _ in sized)
        write = t[0][0] * t[0][1] if op.endswith("_") and t[0] else \
            largest * next(b for n, b in sized if n == largest)
        return self.memory(sum(n * b for n, b in sized if n == largest) + write)

    def _gemm(self, event, t, shapes, sparse) -> Cost:
        mats = [(i, s) for i, s in enumerate(shapes) if isinstance(s, list) and len(s) == 2]
        if sparse is not None:
            n_rows, nnz, index_bytes = sparse
            for k, (i, s) in enumerate(mats[:-1]):
                if s[0] == n_rows and mats[k + 1][1][0] == s[1]:  # A (sparse) @ x
                    added = sum(x[0] * x[1] for j, x in enumerate(t) if x and j < i)
                    x_index, x_shape = mats[k + 1]
                    return self.spmm(n_rows, nnz, index_bytes, x_shape[1], t[x_index][1]) + self.memory(added)
        if len(mats) < 2:
            return self._children(event)
        (ia, a), (_, b) = mats[-2], mats[-1]
        m, k, n, elem = a[0], a[1], b[1], t[ia][1]
        stream = elem * (m * k + k * n + m * n) + sum(x[0] * x[1] for j, x in enumerate(t) if x and j < ia)
        return Cost(stream, 0.0, 2.0 * m * k * n, max(stream / self.copy_bw, 2.0 * m * k * n / self.gemm_rate))
