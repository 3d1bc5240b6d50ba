"""The byte model of the step profile: what each profiled operation must move, and its floor.

Every ``torch.profiler`` event is costed from its recorded input shapes and dtypes as
``Cost(stream, gather, flops)``: bytes read or written in order (``stream``), bytes of rows
read at random positions (``gather``), and floating-point operations of dense products. Its
*floor* is the time the machine's measured ceilings allow for that cost (bench/ceilings.py)::

    floor = stream / copy_bw + gather / gather_bw          (memory-bound ops; an SpMM's
                                                            gather against gather-reduce)
    floor = max(stream / copy_bw, flops / gemm_rate)       (dense matrix products)

Rules (``N`` rows, ``d`` columns, ``b`` bytes per element):

* ``gnn::csr_spmm``, ``embedding_bag`` and a CSR ``matmul`` (its operand built by
  ``sparse_compressed_tensor``):
  stream ``rowptr + col + val + N d b`` (the indices once, the output written), gather
  ``nnz d b`` (one row of x per entry), ``2 nnz d`` flops (docs/DESIGN.md §4);
* dense ``mm`` / ``addmm`` / ``matmul``: both operands and the output (and the added input),
  ``2 m k n`` flops;
* ``index_select``: stream the indices and the output; gather the selected rows;
* ``index_add_`` / ``scatter_add_``: stream the indices and the source; gather read-modify-write
  of the touched rows (twice the source);
* ``cat``: read and write the output's size (the bytes it allocated: the profiler keeps no
  shapes of a tensor list); ``fill_`` / ``zero_`` / ``random_``: write;
  ``copy_``: read the source, write the destination; reductions: read the input;
* element-wise (anything else with tensor inputs): read every input of the largest size, write
  one (in place: the first input); broadcast scalars are free;
* views, allocations and host reads cost nothing; other events (autograd nodes, ``to``,
  ``clone``, ``new_zeros``, ...) cost what their children cost;
* a fused Adam step (``_fused_adam_``, whose inputs the profiler does not record): read the
  parameter, its gradient and both moments, write the parameter and both moments (7 passes);
  ``adam_floor`` states that minimum for any Adam implementation.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

ELEMENT_BYTES = {"float": 4, "double": 8, "long int": 8, "int": 4, "short int": 2,
                 "signed char": 1, "unsigned char": 1, "bool": 1, "c10::BFloat16": 2,
                 "c10::Half": 2}

FREE = {"as_strided", "view", "_unsafe_view", "reshape", "narrow", "slice", "select", "expand",
        "expand_as", "unsqueeze", "squeeze", "detach", "t", "transpose", "permute", "split",
        "split_with_sizes", "chunk", "unbind", "alias", "empty", "empty_like", "empty_strided",
        "new_empty", "new_empty_strided", "result_type", "item", "_local_scalar_dense",
        "resize_", "lift_fresh", "sparse_compressed_tensor", "_sparse_compressed_tensor_unsafe",
        "sparse_csr_tensor", "view_as", "_reshape_alias", "set_", "record_stream"}
WRITE_ONLY = {"fill_", "zero_", "random_", "uniform_", "normal_", "bernoulli_"}
REDUCTIONS = {"sum", "mean", "linalg_vector_norm", "norm", "amax", "amin", "max", "min",
              "aminmax", "any", "all", "prod"}
RECURSE = {"to", "_to_copy", "clone", "contiguous", "new_zeros", "zeros", "zeros_like",
           "index_select_backward", "embedding_dense_backward", "ones_like", "full"}
GEMM = {"mm", "addmm", "matmul", "bmm", "linear"}


@dataclass
class Cost:
    stream: float = 0.0
    gather: float = 0.0
    flops: float = 0.0
    floor: float = 0.0  # seconds

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.stream + other.stream, self.gather + other.gather,
                    self.flops + other.flops, self.floor + other.floor)

    @property
    def bytes(self) -> float:
        return self.stream + self.gather


def _tensors(event):
    """``(numel, element bytes)`` of each tensor input, None for non-tensor arguments."""
    out = []
    for shape, dtype in zip(event.input_shapes, event.input_dtypes):
        if dtype in ELEMENT_BYTES and isinstance(shape, list):
            numel = 1
            for s in shape:
                numel *= s
            out.append((numel, ELEMENT_BYTES[dtype]))
        else:
            out.append(None)
    return out


def _short(name: str) -> str:
    return name.split("::", 1)[1] if name.startswith("aten::") else name


class ByteModel:
    """Costs of profiler events against measured ceilings (``bench.ceilings.measure``)."""

    def __init__(self, ceilings: Dict[str, float], param_bytes: int):
        self.copy_bw = ceilings["copy_nd"] * 1e9
        self.gather_bw = ceilings["gather_nd"] * 1e9
        self.reduce_bw = ceilings["gather_reduce_nd"] * 1e9
        self.gemm_rate = ceilings["gemm"] * 1e9
        self.param_bytes = param_bytes

    # -- floors ----------------------------------------------------------------------------
    def memory(self, stream: float, gather: float = 0.0, flops: float = 0.0) -> Cost:
        return Cost(stream, gather, flops, stream / self.copy_bw + gather / self.gather_bw)

    def gemm(self, stream: float, flops: float) -> Cost:
        return Cost(stream, 0.0, flops, max(stream / self.copy_bw, flops / self.gemm_rate))

    def adam_floor(self) -> Cost:
        """Any Adam step over dense gradients: read p, g, m, v; write p, m, v."""
        return self.memory(7 * self.param_bytes)

    def spmm(self, n_rows: int, nnz: int, index_bytes: float, dim: int, elem: int) -> Cost:
        """Rows of x read (not written) at random: against the gather-reduce ceiling."""
        stream, gather = index_bytes + n_rows * dim * elem, nnz * dim * elem
        return Cost(stream, gather, 2.0 * nnz * dim,
                    stream / self.copy_bw + gather / self.reduce_bw)

    # -- events ----------------------------------------------------------------------------
    def cost(self, event) -> Cost:
        name = event.name
        if name == "gnn::csr_spmm":
            t = _tensors(event)
            (n1, b1), (nnz, bc), (_, bv), (_, bx) = t[0], t[1], t[2], t[3]
            dim = event.input_shapes[3][1] if len(event.input_shapes[3]) == 2 else 1
            return self.spmm(n1 - 1, nnz, n1 * b1 + nnz * (bc + bv), dim, bx)
        if name.startswith("Optimizer.step#"):
            inner = self._children(event)
            return inner if inner.bytes else self.adam_floor()
        if name == "aten::_fused_adam_":
            return self.adam_floor()
        if not name.startswith("aten::"):
            return self._children(event)
        return self._aten(event, None)

    def _children(self, event) -> Cost:
        total, sparse = Cost(), None
        for child in event.cpu_children:
            if child.name == "aten::sparse_compressed_tensor":
                t = _tensors(child)
                if all(x is not None for x in t[:3]):
                    (n1, b1), (nnz, bc), (_, bv) = t[:3]
                    sparse = (n1 - 1, nnz, n1 * b1 + nnz * (bc + bv))
                continue
            if child.name.startswith("aten::"):
                total = total + self._aten(child, sparse)
                if _short(child.name) in GEMM:
                    sparse = None  # the CSR operand belongs to the first product after it
            else:
                total = total + self.cost(child)
        return total

    def _aten(self, event, sparse: Optional[tuple]) -> Cost:
        op = _short(event.name)
        t = _tensors(event)
        shapes = event.input_shapes
        if op in FREE:
            return Cost()
        if op == "_fused_adam_":
            return self.adam_floor()
        if op in GEMM:
            return self._gemm(event, t, shapes, sparse)
        if op in ("embedding_bag", "_embedding_bag", "_embedding_bag_forward_only") \
                and len(t) >= 3 and t[0] and t[1] and t[2]:
            (_, bw), (nnz, bi), (n_off, bo) = t[0], t[1], t[2]
            dim = shapes[0][1] if len(shapes[0]) == 2 else 1
            return self.spmm(n_off - 1, nnz, nnz * bi + n_off * bo + nnz * 4, dim, bw)
        if op == "index_select" and len(t) >= 3 and t[0] and t[2]:
            (n_idx, bi), row = t[2], (t[0][0] // max(shapes[0][0], 1)) * t[0][1]
            return self.memory(n_idx * bi + n_idx * row, n_idx * row)
        if op in ("index_add_", "index_add", "scatter_add_", "scatter_add") and len(t) >= 4 \
                and t[2] and t[3]:
            (n_idx, bi), (n_src, bs) = t[2], t[3]
            index_bytes = n_idx * bi if op.startswith("index") else n_src * bi
            return self.memory(index_bytes + n_src * bs, 2 * n_src * bs)
        if op == "cat":  # the inputs are a TensorList, whose shapes the profiler does not keep
            return self.memory(2 * max(getattr(event, "cpu_memory_usage", 0), 0))
        if op in RECURSE or not any(t):
            return self._children(event)
        if op in WRITE_ONLY:
            return self.memory(t[0][0] * t[0][1]) if t[0] else Cost()
        if op == "copy_":
            if len(t) >= 2 and t[0] and t[1]:
                return self.memory(t[1][0] * t[1][1] + t[0][0] * t[0][1])
            return Cost()
        if op in REDUCTIONS:
            return self.memory(t[0][0] * t[0][1]) if t[0] else Cost()
        sized = [x for x in t if x]
        largest = max(n for n, _ in sized)
        reads = sum(n * b for n, b in sized if n == largest)
        if op.endswith("_") and t[0]:
            write = t[0][0] * t[0][1]
        else:
            write = largest * next(b for n, b in sized if n == largest)
        return self.memory(reads + write)

    def _gemm(self, event, t, shapes, sparse) -> Cost:
        mats = [(i, s) for i, s in enumerate(shapes) if isinstance(s, list) and len(s) == 2]
        if sparse is not None:
            n_rows, nnz, index_bytes = sparse
            for k, (i, s) in enumerate(mats[:-1]):
                if s[0] == n_rows and mats[k + 1][1][0] == s[1]:  # A (sparse) @ x
                    x_shape = mats[k + 1][1]
                    added = sum(x[0] * x[1] for j, x in enumerate(t) if x and j < i)
                    cost = self.spmm(n_rows, nnz, index_bytes, x_shape[1], t[mats[k + 1][0]][1])
                    return cost + self.memory(added)  # addmm's added input, read once
        if len(mats) < 2:
            return self._children(event)
        (ia, a), (_, b) = mats[-2], mats[-1]
        m, k, n = a[0], a[1], b[1]
        elem = t[ia][1]
        added = sum(x[0] * x[1] for j, x in enumerate(t) if x and j < ia)
        return self.gemm(elem * (m * k + k * n + m * n) + added, 2.0 * m * k * n)
